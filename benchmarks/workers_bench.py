"""`make bench-workers`: Detect calls/s of `pynomaly serve --workers 1` vs `--workers 2`, the same load, in one run.

The load: --clients client processes (default 4), each on a connection of its own (so that SO_REUSEPORT spreads
them over the serving processes), making sequential 1-row Detect calls for --seconds seconds; the servers take
turns for --rounds rounds and each figure is the median of its rounds. The model: IForest, 100 trees, 10,000 rows ×
20 features (benchmarks.bench.data). On a machine of C cores the clients share the cores with the server: the
figure is what the server reaches while the clients run beside it, the same for both settings.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _client(address: str, seconds: float, start: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import grpc

    from benchmarks.bench import data
    from pynomaly.client import to_matrix
    from pynomaly.v1 import detect_pb2, detect_pb2_grpc

    _, score = data()
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    stub = detect_pb2_grpc.DetectServiceStub(channel)
    request = detect_pb2.DetectRequest(model="bench@1", rows=to_matrix(score[:1])[0])
    stub.Detect(request, timeout=30)  # connected and the model loaded before the clock starts
    while time.time() < start:
        time.sleep(0.001)
    calls, end = 0, start + seconds
    while time.time() < end:
        stub.Detect(request, timeout=30)
        calls += 1
    out.put(calls)
    channel.close()


def start_server(store: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--store", store,
         "--log-level", "warning", "--workers", str(workers), "--shutdown-delay-s", "0", "--train-idle-s", "5"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    address = re.search(r"serving on (127\.0\.0\.1:\d+)", line)
    if address is None:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, address.group(1)


def load(address: str, clients: int, seconds: float) -> float:
    """Calls/s of `clients` processes calling Detect for `seconds`."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 3.0  # the clients import, connect and call once before
    procs = [ctx.Process(target=_client, args=(address, seconds, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join(10)
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load a round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the servers taking turns (default 3)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the figures as a Markdown table here")
    args = parser.parse_args()
    from benchmarks.bench import data
    from pynomaly.client import Client

    train, _ = data()
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        try:
            for workers in results:
                servers[workers] = start_server(os.path.join(tmp, f"store{workers}"), workers)
                with Client(servers[workers][1], timeout=600) as client:
                    client.train("bench", train, algorithm="iforest", params={"n_estimators": 100, "random_state": 0})
            time.sleep(3)  # the serving processes are up
            for r in range(args.rounds):
                for workers in (results if r % 2 == 0 else reversed(results)):
                    results[workers].append(load(servers[workers][1], args.clients, args.seconds))
                    print(f"\rround {r + 1}/{args.rounds}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"\n--workers 1 vs 2: 1-row Detect calls/s, {args.clients} client processes for {args.seconds:g} s, median "
          f"of {args.rounds} rounds ({os.cpu_count()} cores, clients included)")
    print(f"  --workers 1   {one:8,.0f} calls/s   (rounds: {', '.join(f'{v:,.0f}' for v in results[1])})")
    print(f"  --workers 2   {two:8,.0f} calls/s   (rounds: {', '.join(f'{v:,.0f}' for v in results[2])})   "
          f"{two / one:.2f}×")
    if args.markdown:
        Path(args.markdown).write_text(
            f"| `pynomaly serve` | 1-row Detect calls/s ({args.clients} client processes, {os.cpu_count()} cores "
            "shared with them) | ratio |\n|---|---:|---:|\n"
            f"| `--workers 1` | {one:,.0f} | 1× |\n| `--workers 2` | {two:,.0f} | {two / one:.2f}× |\n\n"
            f"`make bench-workers`: median of {args.rounds} rounds of {args.seconds:g} s, the servers taking turns.\n")


if __name__ == "__main__":
    main()
