"""`make bench-first`: time to first detection, as a new user meets it: `pynomaly serve` on an empty store, then
`pynomaly train` (IForest, 1,000 rows × 8 features, CSV) and `pynomaly detect` on 10 rows, each a fresh CLI
process. Prints the seconds from starting the server to each milestone; the last is the figure in the README.

The first job is what is slow: it runs in a worker process that must start and import the training stack (PyOD,
scikit-learn, the ONNX converters). The server starts that worker and the imports before it binds its ports
(ProcessPool.warm_up), so a first job sent the moment the server listens waits only for what is left of them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "pynomaly.cli", *argv], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"pynomaly {' '.join(argv)} failed:\n{out.stderr}")


def once(folder: Path, train_after: float) -> dict[str, float]:
    rng = np.random.default_rng(0)
    columns = [f"sensor_{i}" for i in range(8)]
    pd.DataFrame(rng.normal(size=(1000, 8)), columns=columns).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(rng.normal(size=(10, 8)), columns=columns).to_csv(folder / "new.csv", index=False)
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0",
                               "--store", str(folder / "store"), "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        address = None
        for line in server.stdout:
            if m := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
                address = m.group(1)
                break
        if address is None:
            raise RuntimeError("the server exited during start-up")
        times = {"serving": time.monotonic() - started}
        time.sleep(max(0.0, train_after - times["serving"]))  # a user typing the next command
        run(["train", "--server", address, "--name", "first", "--data", str(folder / "train.csv")])
        times["trained"] = time.monotonic() - started
        run(["detect", "--server", address, "--model", "first", "--data", str(folder / "new.csv")])
        times["first detection"] = time.monotonic() - started
        return times
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold starts, each on a new store (default 3)")
    parser.add_argument("--train-after", type=float, default=0.0,
                        help="seconds after the start before `pynomaly train` (default 0: at once)")
    args = parser.parse_args()
    results = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            times = once(Path(d), args.train_after)
        results.append(times)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)
    median = sorted(r["first detection"] for r in results)[len(results) // 2]
    print(f"time to first detection (serve → train → detect, median of {len(results)}): {median:.1f} s")


if __name__ == "__main__":
    main()
