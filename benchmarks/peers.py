"""`make bench-peers`: Pynomaly side by side with MLServer 1.7.1 (Seldon's model server, its scikit-learn runtime),
the same model, the same client, the same calls, on this machine (shared and noisy: read the ranges and ratios).

The model: one scikit-learn IsolationForest, 100 trees, random_state=0, contamination 0.1, fitted on the same
10,000 rows × 20 features (benchmarks.bench.data). MLServer loads the fitted estimator from a joblib file with
mlserver-sklearn, its settings the defaults except that every listener is on 127.0.0.1 and the model settings'
parameters.extra.predict_fn names decision_function (without it the runtime serves predict(), ±1 labels; a
request naming an output other than predict, predict_proba or transform is refused, so the client asks for none).
Pynomaly trains it over its own API (algorithm sklearn.isolation_forest, the same parameters and rows): that is how
Pynomaly gets its models (fitted in its worker, exported to ONNX, verified, served by onnxruntime), and the score
check below shows it is the same forest. Importing it would need an ONNX converter that is no dependency.

Scores: MLServer serves decision_function (higher = more normal); Pynomaly's anomaly_score is −decision_function
(higher = more anomalous). Both are checked on 1,000 rows (50 of them outliers) against the estimator's own
decision_function before any timing, and the run fails (exit 1) when either differs beyond float32 rounding.

The client: tritonclient over OIP v2 gRPC, in its own environment (benchmarks/peer_envs.py), running
benchmarks/oip_load.py: --calls sequential 1-row calls (the 1-row p50), --batch-calls sequential 1,000-row calls
(rows/s), then --threads threads of 1-row calls for --seconds (calls/s); each sequential part stops after 300 s at
most. The servers take turns, the order alternating, for --passes passes; the table gives each figure's range over
the passes. After the passes both servers idle --idle-wait-s seconds (and Pynomaly until its training worker has
retired, where `pynomaly serve` has --train-idle-s: that worker starts again with the next training job); then the
RSS of each one's whole process tree (the server and all its descendants, from /proc) is read. Every server and
process started here is stopped on exit, on Ctrl-C, on SIGTERM and on error (each server runs in a process group of
its own; the table is printed after they have stopped).

The ceiling: a third server takes its turns too, a bare OIP echo (benchmarks/oip_echo.py; --no-echo leaves it out):
grpc.aio in one Python process, as Pynomaly serves, answering ModelInfer with zeros shaped like Pynomaly's response.
MLServer's figures against the echo's are the most any server on this gRPC stack could show on this machine; the
table prints them beside Pynomaly's ratios.

    python -m benchmarks.peers [--passes 2] [--calls 2000] [--batch-calls 200] [--seconds 20] [--markdown F]
        [--json F] [--env-dir DIR] [--no-echo]
    smoke run: --passes 1 --calls 200 --batch-calls 20 --seconds 2 --idle-wait-s 3 --train-idle-s 5
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest

from benchmarks import peer_envs
from benchmarks.bench import data
from benchmarks.peer_envs import (
    ECHO,
    Server,
    idle_tree,
    loopback_only,
    start_echo,
    start_mlserver,
    start_pynomaly,
    stop,
)
from pynomaly.client import Client

ROOT = Path(__file__).resolve().parents[1]
MODEL, PARAMS, CONTAMINATION = "iforest", {"n_estimators": 100, "random_state": 0}, 0.1
TOLERANCE = 1e-6  # |served − sklearn|: float32 rounding of scores of magnitude < 1 (2⁻²³ ≈ 1.2e-7 relative)
ML, PY = f"MLServer {peer_envs.MLSERVER}", "Pynomaly"
WORKER_WAIT_S = 120  # the longest wait for Pynomaly's training worker to retire, after --idle-wait-s


class Failed(Exception):
    """The run cannot go on: a server did not start, a score differs, a client failed."""


def client(python: Path, server: Server, rows: Path, *args: str, timeout: float = 120) -> dict:
    """benchmarks/oip_load.py in the client environment against `server` (its JSON, or {} with --scores)."""
    done = subprocess.run([str(python), str(ROOT / "benchmarks" / "oip_load.py"), "grpc", server.grpc, MODEL,
                           str(rows), "--output", server.output, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode:
        raise Failed(f"the client failed against {server.name}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def check_scores(python: Path, servers: list[Server], rows: Path, estimator: IsolationForest, work: Path) -> dict:
    reference = estimator.decision_function(np.load(rows)[:1000])
    result = {}
    for server in servers:
        out = work / f"scores-{server.output}.npy"
        client(python, server, rows, "--scores", str(out))
        served = np.load(out).astype(np.float64) * server.sign  # as decision_function: higher = more normal
        error = float(np.max(np.abs(served - reference))) if served.shape == reference.shape else float("inf")
        result[server.name] = {"rows": len(reference), "max_abs_diff": error, "served": server.output,
                               "sign": "decision_function" if server.sign > 0 else "-decision_function"}
        print(f"scores: {server.name} serves {result[server.name]['sign']} ({server.output!r}); "
              f"max |Δ| vs sklearn on {len(reference):,} rows = {error:.2e}")
        if not error <= TOLERANCE:
            raise Failed(f"{server.name}'s scores differ from the estimator's decision_function by {error:.3g} "
                         f"(> {TOLERANCE:g}, float32 rounding): not the same model")
    return result


def _range(values: list[float], unit: str) -> str:
    def one(v: float) -> str:
        return (f"{v:.2f}" if v < 10 else f"{v:.1f}") if unit == "ms" else f"{v:,.0f}"

    lo, hi = one(min(values)), one(max(values))
    return f"{lo} {unit}" if lo == hi else f"{lo}–{hi} {unit}"


def _ratio(lo: float, hi: float) -> str:
    def one(v: float) -> str:
        return f"{v:.0f}" if v >= 10 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"

    return one(lo) + "×" if one(lo) == one(hi) else f"{one(lo)}–{one(hi)}×"


FIGURES = [  # label, unit, lower is better, the figure from one pass's client JSON
    ("1-row p50", "ms", True, lambda r: r["latency"]["p50_s"] * 1e3),
    ("1,000-row calls", "rows/s", False, lambda r: r["batch"]["rows_per_s"]),
    ("{threads} threads, 1-row calls", "calls/s", False, lambda r: r["throughput"]["calls_per_s"]),
]


def _ratios(ml: list[float], other: list[float], lower: bool) -> str:
    """How many times `other` is better than MLServer: its latency or memory ÷ other's, other's throughput ÷ its."""
    lo, hi = (min(ml) / max(other), max(ml) / min(other)) if lower else (min(other) / max(ml), max(other) / min(ml))
    return _ratio(lo, hi)


def table(passes: dict[str, list[dict]], rss: dict[str, float], threads: int) -> list[str]:
    """The Markdown table: each figure's range over the passes, how many times Pynomaly is better, and (with the
    echo run) the same for the bare OIP echo: the ceiling of that ratio on this gRPC stack and machine."""
    echo = bool(passes.get(ECHO))
    lines = [f"| | {ML} | {PY} | ratio |" + (f" {ECHO} | ceiling ratio |" if echo else ""),
             "|---|---:|---:|---:|" + ("---:|---:|" if echo else "")]
    for label, unit, lower, get in FIGURES:
        ml, py = [get(r) for r in passes[ML]], [get(r) for r in passes[PY]]
        line = f"| {label.format(threads=threads)} | {_range(ml, unit)} | {_range(py, unit)} | "
        line += f"{_ratios(ml, py, lower)} |"
        if echo:
            bare = [get(r) for r in passes[ECHO]]
            line += f" {_range(bare, unit)} | {_ratios(ml, bare, lower)} |"
        lines.append(line)
    lines.append(f"| idle RSS, whole process tree | {_range([rss[ML]], 'MB')} | {_range([rss[PY]], 'MB')} | "
                 f"{_ratios([rss[ML]], [rss[PY]], True)} |" + (" – | – |" if echo else ""))
    return lines


def machine() -> dict[str, object]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": platform.python_version()}


def _git_commit() -> str:
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def _train_idle_supported() -> bool:
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--help"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    return "--train-idle-s" in done.stdout


def _worker_retired(server: Server, timeout: float) -> float | None:
    """Seconds until no training worker (a multiprocessing spawn child) is left in the server's tree; None: still
    one after `timeout`."""
    t0 = time.monotonic()
    while any(p["name"] == "multiprocessing spawn child" for p in idle_tree(server)):
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(1)
    return time.monotonic() - t0


def _one_pass(label: str, result: dict, threads: int) -> str:
    return (f"  {label}: 1-row p50 {result['latency']['p50_s'] * 1e3:.2f} ms ({result['latency']['calls']:,} calls), "
            f"1,000-row {result['batch']['rows_per_s']:,.0f} rows/s ({result['batch']['calls']:,} calls), "
            f"{threads} threads {result['throughput']['calls_per_s']:,.0f} calls/s")


def run(args: argparse.Namespace) -> int:
    directory = peer_envs.env_dir(args.env_dir)
    t0 = time.perf_counter()
    ml_python = peer_envs.mlserver_python(directory, args.python)
    client_python = peer_envs.client_python(directory)
    print(f"environments: {directory} ({time.perf_counter() - t0:.0f} s to check or build)")
    train, score = data()
    estimator = IsolationForest(contamination=CONTAMINATION, n_jobs=1, **PARAMS).fit(train)
    train_idle = _train_idle_supported()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="pynomaly-bench-peers-") as tmp:
        work = Path(tmp)
        rows = work / "rows.npy"
        np.save(rows, score[::10].astype(np.float32))  # 1,000 rows, 50 of them outliers
        joblib.dump(estimator, work / "model.joblib")
        try:
            servers.append(start_mlserver(ml_python, work / "mlserver", work / "model.joblib", MODEL))
            extra = ["--train-idle-s", f"{args.train_idle_s:g}"] if train_idle and args.train_idle_s else []
            servers.append(start_pynomaly(work / "pynomaly", extra))
            if args.echo:
                servers.append(start_echo(work / "echo"))
            with Client(servers[1].grpc, timeout=600) as sdk:
                card = sdk.train(MODEL, train, algorithm="sklearn.isolation_forest", params=PARAMS,
                                 contamination=CONTAMINATION, wait_timeout=600)
            print(f"{PY}: trained {card.name}@{card.version} ({card.algorithm}) over its API")
            listening = {s.name: loopback_only(s) for s in servers}
            for name, addresses in listening.items():
                print(f"{name} listens on {', '.join(addresses)} only")
            checks = check_scores(client_python, servers[:2], rows, estimator, work)  # the echo serves no model
            passes: dict[str, list[dict]] = {s.name: [] for s in servers}
            pattern = ["--calls", str(args.calls), "--batch-calls", str(args.batch_calls), "--seconds",
                       str(args.seconds), "--threads", str(args.threads)]
            for i in range(args.passes):
                print(f"pass {i + 1}/{args.passes}:", flush=True)
                for server in servers if i % 2 == 0 else servers[::-1]:
                    result = client(client_python, server, rows, *pattern, timeout=720 + args.seconds)
                    passes[server.name].append(result)
                    print(_one_pass(server.name, result, args.threads), flush=True)
            print(f"idle {args.idle_wait_s:g} s ...", flush=True)
            time.sleep(args.idle_wait_s)
            if train_idle:  # its training worker retires after --train-idle-s without a job: wait for that
                waited = _worker_retired(servers[1], WORKER_WAIT_S)
                how = f"--train-idle-s {args.train_idle_s:g}" if args.train_idle_s else "default --train-idle-s"
                worker = (f"{PY}'s training worker retired (pynomaly serve's {how})" if waited is not None else
                          f"{PY}'s training worker still up {WORKER_WAIT_S} s later: measured with it")
            else:
                worker = f"{PY}'s training worker up (this pynomaly serve has no --train-idle-s)"
            print(worker + (f", {waited:.0f} s more" if train_idle and waited and waited >= 1 else ""))
            trees = {s.name: idle_tree(s) for s in servers[:2]}
        finally:
            for server in servers:
                stop(server)
    rss = {name: sum(p["rss_mb"] for p in tree) for name, tree in trees.items()}
    for name, tree in trees.items():
        print(f"{name} idle process tree: {rss[name]:,.0f} MB RSS, "
              f"{sum(p['pss_mb'] for p in tree):,.0f} MB PSS (shared pages split)")
        for p in tree:
            print(f"  {p['pid']:>8} {p['name']:<40} {p['rss_mb']:>7,.0f} MB RSS {p['pss_mb']:>7,.0f} MB PSS")
    ml_versions = peer_envs.versions(ml_python, ["mlserver", "mlserver-sklearn", "scikit-learn", "uvloop"])
    tc_versions = peer_envs.versions(client_python, ["tritonclient"])
    py_versions = {"pynomaly": f"{importlib.metadata.version('pynomaly')} ({_git_commit()})",
                   **{p: importlib.metadata.version(p) for p in ("onnxruntime", "scikit-learn")}}
    box = machine()
    notes = [
        f"Machine: {box['cores']} cores, {box['cpu']}, Linux {box['kernel']}, Python {box['python']}. "
        f"{args.passes} pass{'es' if args.passes > 1 else ''}, the servers taking turns (the order alternating); "
        "each cell: the range over the passes.",
        "Versions: " + "; ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in versions.items()) for side, versions
                                 in ((ML, ml_versions), (PY, py_versions), ("client", tc_versions))) + ".",
        f"Model: scikit-learn IsolationForest, 100 trees, 20 features, fitted on 10,000 rows (random_state 0); "
        f"client: tritonclient over OIP v2 gRPC, {args.calls:,} sequential 1-row calls, {args.batch_calls:,} "
        f"sequential 1,000-row calls, {args.threads} threads of 1-row calls for {args.seconds:g} s; idle RSS: the "
        f"server and all its descendants after {args.idle_wait_s:g} s idle; {worker}. Ratio > 1×: Pynomaly "
        "better (lower latency or memory, higher throughput).",
    ]
    if args.echo:
        notes.append(f"{ECHO}: benchmarks/oip_echo.py, a grpc.aio server in one Python process (as Pynomaly serves) "
                     "answering ModelInfer with zeros shaped like Pynomaly's response: no model, no checks. Its "
                     "ceiling ratio (MLServer's figure against the echo's) bounds what any server on this gRPC stack "
                     "could show against MLServer on this machine; it takes its turn in each pass like the others.")
    lines = table(passes, rss, args.threads)
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(notes))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n")
    if args.json:
        settings = {k: getattr(args, k) for k in ("passes", "calls", "batch_calls", "seconds", "threads",
                                                  "idle_wait_s")}
        Path(args.json).write_text(json.dumps({
            "machine": box, "versions": {ML: ml_versions, PY: py_versions, "client": tc_versions},
            "settings": {**settings, "train_idle_s": (args.train_idle_s or "server default") if train_idle else None},
            "score_check": checks, "listeners": listening, "passes": passes,
            "idle_rss_mb": rss, "idle_processes": trees}, indent=1) + "\n")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=2, help="turns each server takes (default 2)")
    parser.add_argument("--calls", type=int, default=2000, help="sequential 1-row calls per pass (default 2000)")
    parser.add_argument("--batch-calls", type=int, default=200, help="sequential 1,000-row calls per pass (200)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of the threads' 1-row calls (default 20)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--idle-wait-s", type=float, default=15, help="idle seconds before the RSS (default 15)")
    parser.add_argument("--train-idle-s", type=float, help="pynomaly serve --train-idle-s: its training worker "
                        "retires after this long without a job (default: the server's own, 60 s; a smoke run: 5)")
    parser.add_argument("--env-dir", help="the environments' directory (default "
                        "${XDG_CACHE_HOME:-~/.cache}/pynomaly/bench-peers)")
    parser.add_argument("--python", default=sys.executable, help="Python 3.9-3.12 for MLServer's environment "
                        "(default this one)")
    parser.add_argument("--no-echo", dest="echo", action="store_false", help="leave out the bare OIP echo server "
                        "(benchmarks/oip_echo.py) whose figures give the ceiling ratio")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table (and notes) as Markdown here")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON here")
    args = parser.parse_args()
    if min(args.passes, args.calls, args.batch_calls, args.threads) < 1 or args.seconds <= 0:
        parser.error("--passes, --calls, --batch-calls, --threads and --seconds must be positive")
    # SIGTERM and SIGHUP unwind like Ctrl-C, through the finally that stops the servers.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    try:
        sys.exit(run(args))
    except (Failed, RuntimeError) as e:
        print(f"bench-peers FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench-peers: interrupted (the servers it started are stopped)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
