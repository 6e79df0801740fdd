"""The floors `make bench` holds each exported detector's 1-row onnxruntime time to (benchmarks.bench.bench_export).

A served graph cannot run faster than onnxruntime's fixed cost of a run, nor than touching once the points it
scores a row against. So the floor of a row is:

- for a detector without a reference set: an Identity graph's run (X double[1, F] -> the same) on the same
  1-row input, with the same session options, in the same onnxruntime session type. (An Identity returns [N, F]
  where the served graphs return anomaly_score double[N]; a Gather or a ReduceSum to double[N], the served
  signature, measured the same within noise here: 8.1 and 8.3 vs 7.9 µs.)
- for a neighbour or kernel detector (one whose graph holds a reference set: training rows, support vectors,
  centres): a plain numpy product of the row with that set, `row @ ref.T`, ref float64 [n_ref, F], BLAS on one
  thread as the sessions are; or the Identity run where that is slower (a graph never beats onnxruntime's
  fixed cost of a run, and a small set costs less than it).

Which detectors hold a reference set is read from the exported graph, not declared: the floating-point matrix
constants (initializers and Constant nodes, also through a Cast: DIF's float32 weights; Loop bodies included)
with a side of REFERENCE_ROWS or more that the graph reads whole for every row: by a MatMul or Gemm (KNN's
points, an OCSVM's support vectors), elementwise (QMCD's training rows), or by a Gather of fixed columns (LSCP's
feature subsets). A copy of the points that the graph only Gathers a few rows from, at indices the row decides
(the k nearest points' exact distances), is not read whole and not counted. n_ref is the rows of F values these
matrices hold together: an OCSVM's [F + 2, n_SV] RBF weights and [n_SV, 1] dual coefficients count a little
over n_SV, a FeatureBagging of 10 LOFs all its members' points (on their feature subsets). Below REFERENCE_ROWS
the product costs less than an onnxruntime run (measured: 2.2 µs for 256 rows × 20, 3.9 µs for 1,000, 28 µs
for 10,000, against 5-8 µs for the Identity run) and the matrices are a model's weights (PCA's [F, F], LODA's
projections, the small networks' layers) or a small sample (Sampling's 20 rows, LMDD's 100). A network with
layers of 256 units or more (DevNet; LUNAR; DIF's 50 networks of 500) thus counts as holding a reference set:
it multiplies every row with them as a neighbour detector does with its points; its floor is the larger of the
two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

REFERENCE_ROWS = 256
WITHIN = 2.0  # 1 row: at most this many times the floor
FASTER = 2.0  # 10,000 rows: at least this many times faster than native
_FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


def identity_graph(n_features: int) -> bytes:
    """X double[N, F] -> anomaly_score double[N, F]: one Identity node, the served graphs' opset and IR."""
    x = helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["N", n_features])
    y = helper.make_tensor_value_info("anomaly_score", TensorProto.DOUBLE, ["N", n_features])
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["anomaly_score"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _walk(graph: onnx.GraphProto) -> Iterable[onnx.GraphProto]:
    """A graph and its subgraphs (Loop, If, Scan bodies), at any depth."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                yield from _walk(sub)


_ALIASES = ("Cast", "Identity", "Transpose")  # a constant through these is the same constant (DIF: float32 weights)
_PICKS = ("Gather", "GatherElements", "GatherND")  # with indices computed per row: a few of the points, not all


def _read_whole(model: onnx.ModelProto) -> list[tuple[int, int]]:
    """Shapes of the 2-D floating-point constants (initializers, Constant nodes) that some node reads whole for
    every row, at any depth (a Loop body reads its outer graph's constants by name): any reader but a Gather
    whose indices the row decides (the k nearest points' exact distances) and Shape."""
    shapes: dict[str, tuple[int, int]] = {}
    root: dict[str, str] = {}  # a constant's name, or an alias's, -> the constant
    whole: set[str] = set()
    graphs = list(_walk(model.graph))
    for g in graphs:
        tensors = [(t.name, t) for t in g.initializer]
        tensors += [(n.output[0], a.t) for n in g.node if n.op_type == "Constant" for a in n.attribute
                    if a.type == onnx.AttributeProto.TENSOR]
        for name, t in tensors:
            root[name] = name
            if len(t.dims) == 2 and t.data_type in _FLOATS:
                shapes[name] = (t.dims[0], t.dims[1])
    for g in graphs:
        for n in g.node:  # in topological order: a chain of aliases resolves
            if n.op_type in _ALIASES and n.input[0] in root:
                root[n.output[0]] = root[n.input[0]]
                continue
            if n.op_type == "Shape" or (n.op_type in _PICKS and n.input[1] not in root):
                continue
            whole.update(root[i] for i in n.input if i in root)
    return [shape for name, shape in shapes.items() if name in whole]


@dataclass(frozen=True)
class Floor:
    """How a detector's 1-row time is judged: the reference set its graph multiplies every row with, if any."""

    n_ref: int  # rows of F values the reference matrices hold together (0: none)
    matrices: int  # how many
    reference: bool

    @property
    def label(self) -> str:
        if not self.reference:
            return "none"
        return f"{self.n_ref:,} rows" + (f" in {self.matrices}" if self.matrices > 1 else "")


def classify(model: onnx.ModelProto, n_features: int) -> Floor:
    """The matrices the graph reads whole for every row of which one side is at least REFERENCE_ROWS long (a set
    of points: training rows, support vectors, centres; or a network layer as wide), counted as rows of F values."""
    held = [s for s in _read_whole(model) if max(s) >= REFERENCE_ROWS]
    n_ref = sum(a * b for a, b in held) // max(n_features, 1)
    return Floor(n_ref, len(held), bool(held))


def interleaved(fns: dict[str, Callable[[], object]], repeat: int, budget_s: float = 3.0, block: int = 1,
                min_rounds: int = 3) -> dict[str, float]:
    """Median seconds of each function's calls, timed in rounds that call each `block` times in a row (the order
    rotated every round, so drift and other processes hit all alike; blocks, so that each runs with its own data
    in cache as in a loop of its own, not with what the other left there, nor after the other's worker threads
    when they still spin): `repeat` rounds, or fewer once `budget_s` has passed and there are at least `min_rounds`
    (where a function's warm-up call alone took longer than the budget: one round, that function called once)."""
    names = list(fns)
    slow = set()
    for name, f in fns.items():
        t = time.perf_counter()
        f()  # warm-up
        if time.perf_counter() - t > budget_s:
            slow.add(name)
    blocks = {n: 1 if n in slow else block for n in names}
    if slow:
        min_rounds = 1
    times: dict[str, list[float]] = {n: [] for n in names}
    deadline = time.perf_counter() + budget_s
    for i in range(repeat):
        if i >= min_rounds and time.perf_counter() > deadline:
            break
        for name in names[i % len(names):] + names[: i % len(names)]:
            fn, took = fns[name], times[name]
            for _ in range(blocks[name]):
                t = time.perf_counter()
                fn()
                took.append(time.perf_counter() - t)
    return {n: statistics.median(v) for n, v in times.items()}


@dataclass
class Result:
    name: str
    floor: Floor
    onnx_1: float
    identity_1: float
    matmul_1: float  # nan without a reference set
    native_1: float
    native_n: float
    onnx_n: float
    rel_error: float
    rows_timed: int  # the batch times: measured on this many rows, scaled to the batch's

    @property
    def floor_1(self) -> float:
        return max(self.matmul_1, self.identity_1) if self.floor.reference else self.identity_1

    @property
    def near_floor(self) -> bool:
        return self.onnx_1 <= WITHIN * self.floor_1

    @property
    def speedup(self) -> float:
        return self.native_n / self.onnx_n

    @property
    def fast(self) -> bool:
        return self.speedup >= FASTER


def one_row(session: object, identity: object, one: np.ndarray, floor: Floor) -> tuple[float, float, float]:
    """(onnx, identity, matmul) median seconds for one row, interleaved in blocks of 10 calls. The product runs
    on one BLAS thread (as the single-threaded sessions do) over a random ref of the detector's n_ref rows × F."""
    from threadpoolctl import threadpool_limits

    fns: dict[str, Callable[[], object]] = {
        "onnx": lambda: session.run(None, {"X": one}),  # type: ignore[attr-defined]
        "identity": lambda: identity.run(None, {"X": one}),  # type: ignore[attr-defined]
    }
    if floor.reference:
        ref = np.random.default_rng(0).normal(size=(floor.n_ref, one.shape[1]))
        fns["matmul"] = lambda: one @ ref.T
    with threadpool_limits(1, user_api="blas"):
        t = interleaved(fns, 300, block=10)
    return t["onnx"], t["identity"], t.get("matmul", float("nan"))


def fmt(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def times(ratio: float) -> str:
    return "-" if ratio != ratio else f"{ratio:.0f}×"  # nan: not measured


HEADER = (f"{'detector':26} {'reference set':24} {'onnx 1 row':>11} {'identity':>9} {'matmul':>9} "
          f"{'vs floor':>8} {'≤2×':>3}   {'native 1 row':>12} {'×':>6}   {'native 10k':>10} {'onnx 10k':>9} "
          f"{'speed-up':>8} {'≥2×':>3}  max rel err")


def line(r: Result, rows: int = 10_000) -> str:
    """The table's line for r; `rows`: the rows its batch times stand for (marked * where timed on fewer)."""
    timed = f"  * timed on {r.rows_timed:,} rows" if r.rows_timed < rows else ""
    return (f"{r.name:26} {r.floor.label:24} {fmt(r.onnx_1):>11} {fmt(r.identity_1):>9} {fmt(r.matmul_1):>9} "
            f"{r.onnx_1 / r.floor_1:>7.2f}× {'yes' if r.near_floor else 'NO':>3}   {fmt(r.native_1):>12} "
            f"{times(r.native_1 / r.onnx_1):>6}   {fmt(r.native_n):>10} {fmt(r.onnx_n):>9} {r.speedup:>7.2f}× "
            f"{'yes' if r.fast else 'NO':>3}  {r.rel_error:.1e}{timed}")


@dataclass
class Summary:
    results: list[Result] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "name: why" of detectors that could not be fitted/exported

    def lines(self) -> list[str]:
        rs = self.results
        ref = [r for r in rs if r.floor.reference]
        plain = [r for r in rs if not r.floor.reference]

        def met(group: list[Result]) -> int:
            return sum(r.near_floor for r in group)

        far = [f"{r.name} {r.onnx_1 / r.floor_1:.1f}×" for r in rs if not r.near_floor]
        slow = [f"{r.name} {r.speedup:.2f}×" for r in rs if not r.fast]
        out = [
            f"1 row within {WITHIN:g}× of the floor: {met(rs)} of {len(rs)} (identity floor {met(plain)} of "
            f"{len(plain)}, reference-set floor {met(ref)} of {len(ref)}); misses: {', '.join(far) or 'none'}",
            f"10,000 rows at least {FASTER:g}× faster than native: {sum(r.fast for r in rs)} of {len(rs)}; "
            f"misses: {', '.join(slow) or 'none'}",
        ]
        if self.failed:
            out.append(f"not measured ({len(self.failed)}): {'; '.join(self.failed)}")
        return out


def profile(graph: bytes, x: np.ndarray, runs: int = 200, top: int = 6) -> str:
    """The node types that take the most kernel time in a run of the score-only graph on x, over `runs` runs
    (onnxruntime's profiler, one thread): the profiled run's time (the profiler adds to it, most for small
    inputs), the kernels run (a Loop's body counted in each iteration) and "Op time" per type (a Loop's time
    includes its body's nodes, which are listed on their own too)."""
    import json
    import os

    import onnxruntime as ort

    from pynomaly.runtime import score_only_session, session_options

    options = session_options(1)
    options.enable_profiling = True
    full = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    session = score_only_session(graph, full, options)
    if session is not full:
        os.remove(full.end_profiling())
    for _ in range(runs):
        session.run(None, {"X": x})
    path = session.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        os.remove(path)
    by_op: dict[str, float] = {}
    total, kernels = 0.0, 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] = by_op.get(e["args"]["op_name"], 0.0) + e["dur"]
            kernels += 1
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            total += e["dur"]
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
    spent = ", ".join(f"{op} {fmt(us / runs * 1e-6)}" for op, us in ranked)
    return f"{fmt(total / runs * 1e-6)} a run profiled, {kernels / runs:.0f} kernels: {spent}"
