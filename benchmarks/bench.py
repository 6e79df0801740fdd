"""`make bench`: ratios measured side by side in one run (this machine is shared and noisy; compare only ratios).

1. ONNX (onnxruntime) for every exportable detector: 1 row against its floor (benchmarks/floor.py: an Identity
   graph's run, or a numpy product of the row with the detector's reference set), and vs native PyOD /
   scikit-learn scoring at 1 row and 10,000 rows × 20 features; then how many meet the targets (1 row within
   2× of the floor, 10,000 rows at least 2× faster than native) and which miss, by how much.
2. Detect over gRPC vs a bare echo RPC with the same request payload on the same server (p50 / p99).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import functools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from pynomaly.client import Client

ROOT = Path(__file__).resolve().parents[1]  # the echo server runs as `python -m benchmarks.bench` from here
N_TRAIN, N_SCORE, N_FEATURES = 10_000, 10_000, 20
ECHO_METHOD = "/pynomaly.bench.EchoService/Echo"
BATCH_BUDGET_S = 60.0  # the 10k-row timing: at most this many seconds of onnxruntime a call, by its 1-row time


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10k training rows N(0,1); 10k scoring rows, 95 % N(0,1) and 5 % U(−6, 6) (as in shared/ONNX_NOTES.md)."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(N_TRAIN, N_FEATURES))
    n_out = N_SCORE // 20
    score = np.vstack([rng.normal(size=(N_SCORE - n_out, N_FEATURES)), rng.uniform(-6, 6, (n_out, N_FEATURES))])
    return train, score


def median_time(fn: Callable[[], object], repeat: int, budget_s: float = 3.0) -> float:
    fn()  # warm-up
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def _quiet() -> contextlib.ExitStack:
    """Python-level stdout, stderr and warnings of the libraries, discarded."""
    stack = contextlib.ExitStack()
    sink = stack.enter_context(open(os.devnull, "w"))  # closed with the stack
    stack.enter_context(contextlib.redirect_stdout(sink))
    stack.enter_context(contextlib.redirect_stderr(sink))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _native_one(native: Callable[[np.ndarray], object], one: np.ndarray) -> float:
    """Median seconds of the native scoring of one row (timed apart: its threads and memory would slow the
    others); NaN where the library cannot score one row (PyOD 3.6.7's AE1SVM fails on a batch of one)."""
    try:
        native(one)
    except ValueError:
        return float("nan")
    return median_time(lambda: native(one), 200)


def _reference(algo: Any, det: Any, rows: np.ndarray, budget_s: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """The rows the served scores are compared on, and their native scores: every row; for a reference that scores
    one row at a time, every 20th (500 rows), in steps of 20 rows while `budget_s` lasts (CD with 10k training
    rows takes seconds a row)."""
    if not algo.slow_reference:
        return rows, algo.score(det, rows)
    sample, scores = rows[::20], []
    deadline = time.perf_counter() + budget_s
    for start in range(0, len(sample), 20):
        scores.append(algo.score(det, sample[start : start + 20]))
        if time.perf_counter() > deadline:
            break
    reference = np.concatenate(scores)
    return sample[: len(reference)], reference


def _params(algo: Any) -> dict[str, Any]:
    """The library's defaults, seeded, with the networks trained for the test suites' epochs (parity.QUICK): the
    graph does the same work however long a network trained, and AnoGAN's 500 default epochs on 10k rows take
    hours. DIF's n_ensemble in QUICK is the ensemble's size, which the graph's work depends on: the default."""
    from benchmarks.parity import QUICK, parity_params

    return parity_params(algo) | {k: v for k, v in QUICK.get(algo.name, {}).items() if k != "n_ensemble"}


def _fit_data(algo: Any, train: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The rows a detector is fitted on and scores, and its labels: as training takes them. Over an algorithm's
    max_training_rows (COF, KPCA, SOS, LOCI, LMDD: quadratic fits) a seeded sample of that many rows, as
    benchmarks.parity and users must; a fixed width (MAD: one feature) the first column(s); labels (XGBOD,
    DevNet) 1 for the 5 % of training rows farthest from the mean (the graph's work does not depend on them)."""
    if algo.n_features:
        train, score = train[:, : algo.n_features], score[:, : algo.n_features]
    if algo.max_training_rows and len(train) > algo.max_training_rows:
        pick = np.random.default_rng(0).choice(len(train), size=algo.max_training_rows, replace=False)
        train = train[np.sort(pick)]
    labels = None
    if algo.needs_labels:
        norms = np.linalg.norm(train - train.mean(axis=0), axis=1)
        labels = (norms > np.quantile(norms, 0.95)).astype(int)
    return train, score, labels


def bench_export(names: list[str] | None = None, profile: bool = False) -> tuple[Any, list[str]]:
    """Print the table; return its summary (floor.Summary) and its lines, for --markdown."""
    import onnxruntime as ort

    from benchmarks import floor
    from pynomaly import algorithms, export
    from pynomaly.runtime import score_only_session, session_options

    all_train, all_score = data()
    # As the server scores: single-threaded sessions; a large batch split in 2 chunks run on 2 threads.
    pool = ThreadPoolExecutor(2)

    def onnx_batch(session: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
        return np.concatenate(list(pool.map(lambda c: session.run(None, {"X": c})[0], np.array_split(X, 2))))

    print(f"ONNX vs its floor and vs native scoring ({N_TRAIN:,} training rows × {N_FEATURES} features; onnxruntime "
          f"{ort.__version__}: 1 row on 1 thread, 10k rows in 2 chunks on 2 threads, as the server does; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print(floor.HEADER)
    from benchmarks.parity import exportable

    lines = [floor.HEADER]

    summary = floor.Summary()
    for name in names or exportable():
        algo = algorithms.get(name)
        train, score, labels = _fit_data(algo, all_train, all_score)
        one = score[:1]  # float64 rows, as served
        try:
            with _quiet():
                det = algo.build(_params(algo), 0.1)
                det = det.fit(train) if labels is None else det.fit(train, labels)
                model = export.to_onnx(det, train.shape[1])
        except Exception as e:  # one detector that cannot fit or export here must not end the table
            lines.append(f"{name:26} fit/export failed: {type(e).__name__}: {e}")
            print(lines[-1])
            summary.failed.append(f"{name}: {type(e).__name__}")
            continue
        graph = model.SerializeToString()
        full = ort.InferenceSession(graph, session_options(1), providers=["CPUExecutionProvider"])
        session = score_only_session(graph, full, session_options(1))  # what Detect runs
        identity = ort.InferenceSession(floor.identity_graph(train.shape[1]), session_options(1),
                                        providers=["CPUExecutionProvider"])
        if algo.slow_reference:
            # The reference scores one row at a time (batch-invariant); users call PyOD's batch decision_function,
            # which scores the batch together with the training data: time that one.
            native = copy.deepcopy(det).decision_function
        else:
            native = functools.partial(algo.score, det)
        kind = floor.classify(model, train.shape[1])
        try:
            onnx_1, identity_1, matmul_1 = floor.one_row(session, identity, one, kind)
            with _quiet():  # the libraries' progress output (epochs, joblib) would break up the table
                native_1 = _native_one(native, one)
                # Graphs that take long per row (LMDD, LOCI, SOS: seconds to hours for 10k rows, and their references as
                # long) are timed on fewer rows, scaled to 10k: they score row by row, at a cost per row.
                timed = score[: max(100, min(N_SCORE, int(BATCH_BUDGET_S / onnx_1)))]
                batch = floor.interleaved({"native": lambda f=native, X=timed: f(X),
                                           "onnx": lambda s=session, X=timed: onnx_batch(s, X)}, 10, block=3)
                checked, reference = _reference(algo, det, score)
                served = onnx_batch(session, checked)
        except Exception as e:  # nor one whose scoring fails
            lines.append(f"{name:26} measurement failed: {type(e).__name__}: {e}")
            print(lines[-1])
            summary.failed.append(f"{name}: {type(e).__name__}")
            continue
        rel = np.max(np.abs(served - reference) / np.maximum(np.abs(reference), 1e-6 * np.abs(reference).max()))
        scale = N_SCORE / len(timed)
        result = floor.Result(name, kind, onnx_1, identity_1, matmul_1, native_1, batch["native"] * scale,
                              batch["onnx"] * scale, rel, len(timed))
        summary.results.append(result)
        lines.append(floor.line(result, N_SCORE))
        print(lines[-1], flush=True)
        if profile and not (result.near_floor and result.fast):
            print(f"{'':26} profile, 1 row: {floor.profile(graph, one)}")
            part = timed[: max(1, min(len(timed) // 2, int(5.0 / onnx_1)))]  # one thread's chunk, at most ~5 s
            print(f"{'':26} profile, {len(part):,} rows: {floor.profile(graph, part, 3)}", flush=True)
    print("native: the library's scoring as the export check calls it; ECOD/COPOD: PyOD's own batch "
          "decision_function (it rescores the training data with the batch); onnx: the score-only graph Detect runs; "
          "max rel err over the 10k rows (one-row-at-a-time references: up to 500 of them, 30 s' worth); *: timed on "
          f"fewer rows (onnx: over {BATCH_BUDGET_S:.0f} s for 10k), scaled to 10k")
    print("floor (benchmarks/floor.py): an Identity graph's run; for a graph holding a reference set (the matrices "
          f"with a side ≥ {floor.REFERENCE_ROWS} that it reads whole for every row: n_ref rows of F values together) "
          "the numpy product row @ ref.T, ref [n_ref, F], on one BLAS thread, where that is slower")
    for text in summary.lines():
        print(text)
    print(f"(load average at the end: {os.getloadavg()[0]:.1f})")
    return summary, lines


# --- gRPC: Detect vs echo on one server ---


def _echo_handler() -> grpc.GenericRpcHandler:
    from pynomaly.v1 import detect_pb2

    async def echo(request: detect_pb2.DetectRequest, context: grpc.aio.ServicerContext) -> detect_pb2.DetectResponse:
        # Same payload in and a same-shaped response out (scores in the rows' precision); no model work.
        n = request.rows.rows
        double = bool(request.rows.double_values or request.rows.raw_double_values)
        scores = {"double_anomaly_scores" if double else "anomaly_scores": [0.0] * n}
        return detect_pb2.DetectResponse(**scores, is_anomaly=[False] * n, threshold=0.0, model_name=request.model,
                                         model_version=1)

    return grpc.method_handlers_generic_handler("pynomaly.bench.EchoService", {
        "Echo": grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=detect_pb2.DetectRequest.FromString,
            response_serializer=detect_pb2.DetectResponse.SerializeToString),
    })


async def _serve_with_echo(store: str) -> None:
    from pynomaly.server.app import ServerConfig, start

    running = await start(ServerConfig(listen="127.0.0.1:0", store=Path(store)), extra_handlers=[_echo_handler()])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"serving on 127.0.0.1:{running.port}", flush=True)
    await stop.wait()
    await running.stop(grace=0)  # also stops the training pool: no orphaned worker


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]


def bench_grpc(calls: int = 3000) -> list[str]:
    """Print Detect vs echo; return the same as Markdown table rows, for --markdown."""
    from pynomaly.client import to_matrix
    from pynomaly.v1 import detect_pb2

    train, score = data()
    with tempfile.TemporaryDirectory() as store:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench", "--serve-echo", store], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            address = re.search(r"127\.0\.0\.1:\d+", line)
            if address is None:
                raise RuntimeError(f"bench server did not start: {line!r}")
            with Client(address.group(0), timeout=600) as client:
                client.train("bench", train, algorithm="iforest", params={"n_estimators": 100, "random_state": 0})
                channel = grpc.insecure_channel(address.group(0))
                echo = channel.unary_unary(ECHO_METHOD, request_serializer=detect_pb2.DetectRequest.SerializeToString,
                                           response_deserializer=detect_pb2.DetectResponse.FromString)
                detect = client.detect_stub.Detect
                print(f"\nDetect vs a bare echo RPC (same request, same server; {calls} calls each, interleaved)")
                print(f"{'rows':>6} {'echo p50':>10} {'detect p50':>11} {'ratio':>6}   {'echo p99':>10} "
                      f"{'detect p99':>11} {'ratio':>6}")
                table = ["| rows | echo p50 | Detect p50 | ratio | echo p99 | Detect p99 | ratio |",
                         "|---:|---:|---:|---:|---:|---:|---:|"]
                for rows in (1, 1000):
                    request = detect_pb2.DetectRequest(model="bench@1", rows=to_matrix(score[:rows])[0])
                    n = calls if rows == 1 else calls // 10
                    t_echo, t_detect = [], []
                    for _ in range(50):
                        echo(request)
                        detect(request)
                    for _ in range(n):  # interleave so drift hits both equally
                        t0 = time.perf_counter()
                        echo(request)
                        t1 = time.perf_counter()
                        detect(request)
                        t2 = time.perf_counter()
                        t_echo.append(t1 - t0)
                        t_detect.append(t2 - t1)
                    (e50, e99), (d50, d99) = _percentiles(t_echo), _percentiles(t_detect)
                    print(f"{rows:>6} {_fmt(e50):>10} {_fmt(d50):>11} {d50 / e50:>5.2f}×   {_fmt(e99):>10} "
                          f"{_fmt(d99):>11} {d99 / e99:>5.2f}×")
                    table.append(f"| {rows:,} | {_fmt(e50)} | {_fmt(d50)} | {d50 / e50:.2f}× | {_fmt(e99)} | "
                                 f"{_fmt(d99)} | {d99 / e99:.2f}× |")
                bench_explain(client, train, score)
                channel.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return table


def bench_explain(client: Client, train: np.ndarray, score: np.ndarray) -> None:
    """Explain latency per method, as a ratio to Detect on the same model and rows (client-side wall time)."""
    client.train("bench-hbos", train, algorithm="hbos")
    print("\nExplain vs Detect on the same model (median wall time per call over gRPC, 20 features)")
    print(f"{'model':10} {'method':12} {'rows':>5} {'detect':>10} {'explain':>10} {'ratio':>7}  evaluations/row")
    for model, methods in (("bench@1", ("tree_shap", "kernel_shap")), ("bench-hbos@1", ("exact", "kernel_shap"))):
        for method in methods:
            for rows in (1, 1000):
                X = score[:rows]
                slow = method != "exact" and rows > 1
                repeat = 1 if slow else 200
                detect = median_time(lambda X=X, m=model: client.detect(m, X), repeat)
                took = median_time(lambda X=X, m=model, k=method: client.explain(m, X, method=k), repeat,
                                   budget_s=120.0 if slow else 10.0)
                evals = client.explain(model, X[:1], method=method).evaluations_per_row
                print(f"{model.split('@')[0]:10} {method:12} {rows:>5} {_fmt(detect):>10} {_fmt(took):>10} "
                      f"{took / detect:>6.1f}×  {evals}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-echo", metavar="STORE", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=3000, help="Detect/echo calls per payload (default 3000)")
    parser.add_argument("--detector", action="append", help="only these detectors in the ONNX table (repeatable)")
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC and Explain parts")
    parser.add_argument("--profile", action="store_true",
                        help="after each detector that misses a target, the node types onnxruntime spends its time in")
    parser.add_argument("--markdown", metavar="PATH", help="also write the Detect-vs-echo table and the floor's "
                        "summary here (the README's block), and the per-detector table beside it in floor.md")
    args = parser.parse_args()
    if args.serve_echo:
        asyncio.run(_serve_with_echo(args.serve_echo))
        return
    summary, lines = bench_export(args.detector, args.profile)
    echo = [] if args.no_grpc else bench_grpc(args.calls)
    if args.markdown:
        write_markdown(Path(args.markdown), summary, lines, echo, args.calls)


def write_markdown(path: Path, summary: Any, lines: list[str], echo: list[str], calls: int) -> None:
    """The README's block (Detect vs echo, the floor's summary) at `path`; the per-detector table beside it in
    floor.md."""
    machine = f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    floor_md = path.with_name("floor.md")
    floor_md.write_text(f"# `make bench`: each detector's ONNX graph against its floor and against native\n\n"
                        f"{N_TRAIN:,} training rows × {N_FEATURES} features; {machine}. Written by "
                        "`python -m benchmarks.bench --markdown …`: edit the benchmark, not this.\n\n```text\n"
                        + "\n".join([*lines, *summary.lines()]) + "\n```\n")
    text = []
    if echo:
        text += [*echo, "", f"Detect over gRPC against a bare echo RPC (same request, same server), {calls:,} calls "
                 f"each (1,000 rows: {calls // 10:,}), interleaved; {machine}.", ""]
    # Linked from the README (the repository's root) when written inside the repository.
    link = floor_md.resolve().relative_to(ROOT) if floor_md.resolve().is_relative_to(ROOT) else floor_md.name
    text += [f"Per detector ([{link}]({link})): " + "; ".join(summary.lines()) + "."]
    path.write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
