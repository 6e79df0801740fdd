"""The load `make bench-oip` puts on a server: one client's 1-row latency, 8 threads' 1-row calls/s, and one client's
1,000-row rows/s. The measuring functions take a factory of "score these rows" callables, so the same code times
Pynomaly's own Detect (benchmarks/oip_bench.py) and tritonclient: run as a script, in the tritonclient environment
(benchmarks/tritonclient_env.py), it times tritonclient and prints JSON. It imports nothing of Pynomaly's.

    python benchmarks/oip_load.py grpc|http HOST:PORT MODEL ROWS.npy [--seconds 5]
        [--output NAME] [--calls N --batch-calls N [--threads 8]] [--scores OUT.npy]

--output names the score tensor of another server (MLServer's sklearn runtime: "decision_function"); --calls and
--batch-calls switch to a fixed count of sequential calls (`make bench-peers`, benchmarks/peers.py); --scores times
nothing: it writes the scores of the first 1,000 rows (one call) for the caller to check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Scorer = Callable[[np.ndarray], Any]  # scores rows with one call; one per thread (clients need not be thread-safe)


def latency(score: Scorer, row: np.ndarray, seconds: float, max_calls: int = 5000) -> dict[str, float]:
    """p50 / p99 of sequential 1-row calls, in seconds."""
    for _ in range(50):
        score(row)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_calls and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        score(row)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"p50_s": statistics.median(times), "p99_s": times[int(len(times) * 0.99)], "calls": len(times)}


def throughput(make: Callable[[], Scorer], row: np.ndarray, seconds: float, threads: int = 8) -> dict[str, float]:
    """Calls/s of `threads` threads each calling in a loop with a client of its own, for `seconds`."""
    counts = [0] * threads
    start, stop = threading.Barrier(threads + 1), threading.Event()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            score = make()
            for _ in range(20):
                score(row)
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)
        start.wait()
        while not stop.is_set() and not errors:
            score(row)
            counts[i] += 1

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return {"calls_per_s": sum(counts) / (time.perf_counter() - t0), "threads": threads}


def batch(score: Scorer, rows: np.ndarray, seconds: float, count: int | None = None) -> dict[str, float]:
    """Rows/s of sequential calls with `rows` rows each: for `seconds` (at least 10 calls), or with `count`, that
    many calls (fewer if `seconds` pass first)."""
    for _ in range(5):
        score(rows)
    calls, t0 = 0, time.perf_counter()
    while (calls < count and time.perf_counter() - t0 < seconds) if count else \
            (calls < 10 or time.perf_counter() - t0 < seconds):
        score(rows)
        calls += 1
    return {"rows_per_s": calls * len(rows) / (time.perf_counter() - t0), "calls": calls}


def measure(make: Callable[[], Scorer], X: np.ndarray, seconds: float) -> dict[str, dict[str, float]]:
    score = make()
    return {"latency": latency(score, X[:1], seconds * 2), "throughput": throughput(make, X[:1], seconds),
            "batch": batch(score, X[:1000], seconds)}


def counted(make: Callable[[], Scorer], X: np.ndarray, calls: int, batch_calls: int, seconds: float,
            threads: int = 8, limit_s: float = 300.0) -> dict[str, dict[str, float]]:
    """A fixed pattern: `calls` sequential 1-row calls, `batch_calls` sequential 1,000-row calls, then `threads`
    threads of 1-row calls for `seconds`. Each sequential part ends after `limit_s` at most (its "calls" says)."""
    score = make()
    return {"latency": latency(score, X[:1], limit_s, max_calls=calls),
            "batch": batch(score, X[:1000], limit_s, count=batch_calls),
            "throughput": throughput(make, X[:1], seconds, threads)}


def tritonclient_scorer(protocol: str, url: str, model: str, output: str = "anomaly_score") -> Callable[[], Scorer]:
    """A factory of tritonclient scorers (FP32 rows; HTTP with its default binary tensor data extension), reading the
    scores from the `output` tensor (no output is requested: each server sends its default ones)."""
    if protocol == "grpc":
        import tritonclient.grpc as tc
    else:
        import tritonclient.http as tc

    def make() -> Scorer:
        client = tc.InferenceServerClient(url)

        def score(X: np.ndarray) -> np.ndarray:
            rows = tc.InferInput("rows", list(X.shape), "FP32")
            rows.set_data_from_numpy(X)
            scores = client.infer(model, [rows]).as_numpy(output)
            assert scores is not None and len(scores) == len(X)
            return scores

        return score

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", choices=["grpc", "http"])
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("rows", help=".npy file of float32 rows (at least 1,000)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--output", default="anomaly_score", help="the score tensor's name (default anomaly_score)")
    parser.add_argument("--calls", type=int, help="sequential 1-row calls (with --batch-calls: the fixed pattern)")
    parser.add_argument("--batch-calls", type=int, default=200, help="sequential 1,000-row calls (default 200)")
    parser.add_argument("--threads", type=int, default=8, help="client threads of 1-row calls (default 8)")
    parser.add_argument("--scores", help="time nothing: write the scores of the first 1,000 rows here (.npy)")
    args = parser.parse_args()
    X = np.load(args.rows).astype(np.float32)
    make = tritonclient_scorer(args.protocol, args.url, args.model, args.output)
    if args.scores:
        np.save(args.scores, np.asarray(make()(X[:1000])).reshape(-1))
    elif args.calls:
        print(json.dumps(counted(make, X, args.calls, args.batch_calls, args.seconds, args.threads)))
    else:
        print(json.dumps(measure(make, X, args.seconds)))


if __name__ == "__main__":
    main()
