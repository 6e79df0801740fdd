"""`make bench-oip`: the Open Inference Protocol through tritonclient, over gRPC and over REST, side by side with
Pynomaly's own Detect RPC, on one embedded server in one run (this machine is shared and noisy: compare ratios).

The model: IForest, 100 trees, trained on 10,000 rows × 20 features (benchmarks.bench.data). Each client measures
the 1-row p50, the calls/s of 8 threads making 1-row calls, and the rows/s of 1,000-row calls (benchmarks/oip_load.py);
tritonclient runs in its own environment (benchmarks/tritonclient_env.py), Detect through the Python SDK here.
The three clients take turns for --rounds rounds (the order rotating), and each figure is the median of its rounds,
so that a burst of load from elsewhere on the machine does not land on one client only. Everything is on 127.0.0.1
and bounded in time (about --seconds × 4 per client and round).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import oip_load, tritonclient_env
from benchmarks.bench import data
from pynomaly.client import Client

ROOT = Path(__file__).resolve().parents[1]


def start_server(store: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--store", store, "--log-level", "warning"], stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    grpc_address = http_address = ""
    for line in proc.stdout:
        if m := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
            grpc_address = m.group(1)
        if m := re.search(r"REST: .*http://(127\.0\.0\.1:\d+)/", line):
            http_address = m.group(1)
        if grpc_address and http_address:
            return proc, grpc_address, http_address
    proc.kill()
    raise RuntimeError("the server did not start")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def median_of_rounds(rounds: list[dict]) -> dict:
    """The per-metric median of several measure() results."""
    return {part: {k: statistics.median(r[part][k] for r in rounds) for k in rounds[0][part]} for part in rounds[0]}


def report(results: dict[str, dict]) -> None:
    native = results["Detect (pynomaly SDK)"]
    rows = [("1-row p50", lambda r: r["latency"]["p50_s"], _fmt, True),
            ("1-row p99", lambda r: r["latency"]["p99_s"], _fmt, True),
            ("8-thread calls/s", lambda r: r["throughput"]["calls_per_s"], lambda v: f"{v:,.0f}", False),
            ("1,000-row rows/s", lambda r: r["batch"]["rows_per_s"], lambda v: f"{v:,.0f}", False)]
    names = list(results)
    print(f"{'':18}" + "".join(f"{n:>24}" for n in names))
    for label, get, fmt, lower_is_better in rows:
        base = get(native)
        cells = []
        for name in names:
            value = get(results[name])
            # The ratio says how far each client is from native Detect, > 1 = slower.
            ratio = value / base if lower_is_better else base / value
            cells.append(f"{fmt(value)}" + (f" ({ratio:.2f}×)" if name != names[0] else ""))
        print(f"{label:18}" + "".join(f"{c:>24}" for c in cells))
    print("(×: how many times slower than native Detect on the same server: latency ÷ Detect's, Detect's "
          "throughput ÷ this one's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="turns each client takes (default 3)")
    args = parser.parse_args()
    triton_python = tritonclient_env.python()
    train, score = data()
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.npy"
        np.save(rows_file, score.astype(np.float32))
        proc, grpc_address, http_address = start_server(str(Path(tmp) / "store"))
        try:
            with Client(grpc_address, timeout=600) as client:
                card = client.train("bench", train, algorithm="iforest",
                                    params={"n_estimators": 100, "random_state": 0})
            model = f"{card.name}@{card.version}"
            print(f"OIP v2 vs native Detect: IForest (100 trees) on {len(train):,} rows × {train.shape[1]} features; "
                  f"embedded server on 127.0.0.1; tritonclient {tritonclient_env.TRITONCLIENT.split('==')[1]}")

            def native() -> oip_load.Scorer:
                c = Client(grpc_address, timeout=60)
                return lambda X: c.detect(model, X).anomaly_scores

            def tritonclient(protocol: str, url: str) -> dict:
                done = subprocess.run(
                    [str(triton_python), str(ROOT / "benchmarks" / "oip_load.py"), protocol, url, card.name,
                     str(rows_file), "--seconds", str(args.seconds)],
                    capture_output=True, text=True, timeout=120 + 10 * args.seconds, check=False,
                )
                if done.returncode:
                    raise RuntimeError(f"tritonclient ({protocol}) failed:\n{done.stderr}")
                return json.loads(done.stdout)

            clients = {
                "Detect (pynomaly SDK)": lambda: oip_load.measure(native, score.astype(np.float32), args.seconds),
                "OIP gRPC (tritonclient)": lambda: tritonclient("grpc", grpc_address),
                "OIP REST (tritonclient)": lambda: tritonclient("http", http_address),
            }
            rounds: dict[str, list[dict]] = {name: [] for name in clients}
            names = list(clients)
            for i in range(args.rounds):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    rounds[name].append(clients[name]())
            print(f"(median of {args.rounds} rounds per client, taken in turn)")
            report({name: median_of_rounds(r) for name, r in rounds.items()})
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
