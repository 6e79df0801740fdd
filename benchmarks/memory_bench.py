"""`make bench-memory` (also in `make bench`): what the embedded server holds in memory, as RSS of its whole process
tree (the server, its training worker, multiprocessing's resource tracker), read from /proc (Linux).

1. Started, with the training worker warmed (it holds PyOD, scikit-learn and torch).
2. At rest: the worker exits after --train-idle-s without a job (here --idle-s, default 5 s, so that the run is
   short; the server's default is 60 s).
3. Serving --models IForest models (100 trees, 20 features, 10,000 training rows), each loaded by one 1,000-row
   Detect, the worker retired again. Target: ≤ 300 MB with 20 models.

Everything on 127.0.0.1; a few minutes on 2 cores (training the models).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench import data
from pynomaly.client import Client

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 300


def tree(root: int) -> list[int]:
    """root and every process below it now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mb(pid: int) -> float:
    """Resident memory in MB; 0 for a process gone or exiting."""
    try:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


def tree_mb(root: int) -> float:
    return sum(rss_mb(pid) for pid in tree(root))


def wait_tree(root: int, processes: int, seconds: float) -> float:
    """Until the tree has `processes` processes with memory (the worker started, or gone); the tree's largest RSS
    seen meanwhile."""
    deadline = time.monotonic() + seconds
    peak = 0.0
    while sum(rss_mb(p) > 0 for p in tree(root)) != processes:
        peak = max(peak, tree_mb(root))
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server's process tree did not reach {processes} processes in {seconds} s")
        time.sleep(0.2)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20, help="models to load (default 20)")
    parser.add_argument("--idle-s", type=float, default=5.0, help="the server's --train-idle-s (default 5)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the figures as a Markdown table here")
    args = parser.parse_args()
    train, score = data()
    with tempfile.TemporaryDirectory() as store:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--store", store,
             "--log-level", "warning", "--train-idle-s", str(args.idle_s), "--shutdown-delay-s", "0"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            address = re.search(r"serving on (127\.0\.0\.1:\d+)", line)
            if address is None:
                raise RuntimeError(f"the server did not start: {line!r}")
            wait_tree(proc.pid, 3, 60)  # server, resource tracker, worker
            warmed = wait_tree(proc.pid, 2, args.idle_s + 60)  # the peak until the worker retires
            rest, rest_server = tree_mb(proc.pid), rss_mb(proc.pid)
            with Client(address.group(1), timeout=600) as client:
                for i in range(args.models):
                    client.train(f"m{i}", train, algorithm="iforest",
                                 params={"n_estimators": 100, "random_state": i})
                    print(f"\rtraining model {i + 1}/{args.models}", end="", file=sys.stderr, flush=True)
                print(file=sys.stderr)
                for i in range(args.models):
                    client.detect(f"m{i}", score[:1000])
            wait_tree(proc.pid, 2, args.idle_s + 60)
            loaded, loaded_server = tree_mb(proc.pid), rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    verdict = "met" if loaded <= TARGET_MB else "NOT met"
    if args.markdown:
        Path(args.markdown).write_text(
            "| the embedded server's memory (RSS, whole process tree) | tree | server alone |\n|---|---:|---:|\n"
            f"| started, the training worker warmed (peak) | {warmed:.0f} MB | |\n"
            f"| at rest: the worker exited after --train-idle-s | {rest:.0f} MB | {rest_server:.0f} MB |\n"
            f"| {args.models} IForest models loaded (100 trees × 20 features), worker exited | {loaded:.0f} MB | "
            f"{loaded_server:.0f} MB |\n\n"
            f"`make bench-memory`, {os.cpu_count()} cores; target ≤ {TARGET_MB} MB with 20 models: {verdict}.\n")
    print(f"\nServer memory (RSS of the whole process tree; server alone in brackets), --train-idle-s {args.idle_s:g}:")
    print(f"  started, training worker warmed (peak)           {warmed:6.0f} MB")
    print(f"  at rest, the worker retired                      {rest:6.0f} MB  ({rest_server:.0f} MB)")
    print(f"  {args.models} IForest models loaded (100 trees × 20 features) {loaded:6.0f} MB  ({loaded_server:.0f} MB)"
          f"  target ≤ {TARGET_MB} MB with 20: {verdict}")


if __name__ == "__main__":
    main()
