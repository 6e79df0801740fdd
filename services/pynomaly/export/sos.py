"""PyOD SOS, frozen: each row scored as PyOD scores it within the training batch (pynomaly.algorithms.in_batch).

PyOD (pyod 3.6.7 models/sos.py) scores a batch from the batch alone: distances among its rows (the GEMM
expansion), per row a bisection for the Gaussian precision beta whose affinities reach the target perplexity,
binding probabilities, and a row's outlier probability = the product over the other rows of 1 - their binding
probability to it. Within the training batch, that is for a row x: every training row i searches its beta_i again
over its distances to the other training rows (constants, [n, n - 1]) and to x; then
prod_i (1 - exp(-d_ix beta_i) / sum_j exp(-d_ij beta_i)).

The graph does that per row (a Loop, one row at a time): d_ix as PyOD computes it, sqrt(|(-2 x.t_i + |t_i|^2) +
|x|^2|) (the same MatMul and numpy's order for |x|^2); the bisection as a Loop over PyOD's steps (beta / 10 on
NaN, doubling / halving until bounded, then halving the interval; at most 5000), each training row leaving the loop
when PyOD's would (|H - log perplexity| <= eps); only the rows still searching are computed (Gather /
ScatterElements). A training row's sums over the other training rows depend on beta alone: while its search takes
the steps of its search without x (sos_paths, constants: the same beta at the same step), they are looked up and
x's term added; only the training rows whose steps x changes (near x, or near convergence) sum their n - 1
exponentials (n = 300: ~2 per training row and scored row, ~15 ms a row). The steps' decisions are PyOD's unless H
lands within rounding (~1e-16) of the tolerance; scores agree to ~1e-15.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pynomaly.algorithms.in_batch import SOS_MAX_TRIES, FrozenSOS

from ._ops import Builder, training_rows


def _h_diff(b: Builder, s: str, w: str, d_x: str, beta: str, log_u: str) -> str:
    """H(beta) - log(perplexity), as pyod.models.sos._get_perplexity computes H, from the sums over the other
    training rows (s of affinities, w of distance x affinity) and the scored row's distance d_x."""
    a_x = b.op("Exp", [b.op("Neg", [b.op("Mul", [d_x, beta])])])
    sum_a = b.op("Add", [s, a_x])
    weighted = b.op("Add", [w, b.op("Mul", [d_x, a_x])])
    h = b.op("Add", [b.op("Log", [sum_a]), b.op("Div", [b.op("Mul", [beta, weighted]), sum_a])])
    return b.op("Sub", [h, log_u])


def _sums(b: Builder, off: str, neg_off: str, rows: str, beta: str) -> tuple[str, str]:
    """The sums over the other training rows for training rows `rows` at their betas: n - 1 exponentials each
    (exp(-D beta) as exp((-D) beta): the same product)."""
    a = b.op("Exp", [b.op("Mul", [b.op("Gather", [neg_off, rows]), b.op("Unsqueeze", [beta, b.ints(1)])])])
    axis = b.ints(1)
    return (b.op("ReduceSum", [a, axis], keepdims=0),
            b.op("ReduceSum", [b.op("Mul", [b.op("Gather", [off, rows]), a]), axis], keepdims=0))


def _searching(b: Builder, diff: str, eps: str) -> str:
    return b.op("Or", [b.op("IsNaN", [diff]), b.op("Greater", [b.op("Abs", [diff]), eps])])


def _refuse_unsettled(off: np.ndarray, perplexity: float, eps: float) -> None:
    """A training row with k other rows at its nearest distance has H(beta) > log(k) for every beta (the Gaussian
    affinities tend to k equal ones): where log(k) - log(perplexity) > eps its search never settles. PyOD then
    takes all its 5000 steps (beta doubling to inf, then NaN), and so would the graph for every scored row
    (~1 s a row). Tied distances come with integer-valued or repeated data (ADBench wbc: 28 of 223 rows)."""
    ties = np.sum(off == off.min(axis=1, keepdims=True), axis=1)
    stuck = np.log(ties) - np.log(perplexity) > eps
    if np.any(stuck):
        raise ValueError(
            f"{int(stuck.sum())} of {len(off)} training rows have more rows at their nearest distance (up to "
            f"{int(ties.max())}) than perplexity={perplexity:g}: PyOD's precision search for them never settles and "
            f"runs all {SOS_MAX_TRIES} steps for every row scored (tied distances: integer-valued or repeated "
            f"data). Set perplexity to at least {int(ties.max())}, or add noise to the data")


def sos_to_onnx(det: FrozenSOS, n_features: int) -> onnx.ModelProto:
    train = training_rows(det, n_features, "SOS")
    sos = det.detector_
    if str(sos.metric).lower() != "euclidean":
        raise ValueError(f"only the Euclidean metric is exported, not {sos.metric!r}")
    if len(train) < 2:
        raise ValueError(f"SOS needs at least 2 training rows, got {len(train)}")
    g = Builder()
    x = g.rows()
    train_t = g.const(train.T)
    sum_t = g.const(np.sum(np.square(train), 1))
    distances = det.off_diagonal()
    _refuse_unsettled(distances, float(sos.perplexity), float(sos.eps))
    off, neg_off = g.const(distances), g.const(-distances)
    n = len(train)
    log_u, eps = g.const(np.log(sos.perplexity)), g.const(float(sos.eps))
    betas, sums, weighted = det.paths()
    steps = betas.shape[1]
    path_beta, path_sum, path_weighted = (g.const(v.ravel()) for v in (betas, sums, weighted))
    path_sum0, path_weighted0 = g.const(sums[:, 0]), g.const(weighted[:, 0])

    def score_row(r: Builder, row: str) -> str:
        dots = r.op("MatMul", [row, train_t])
        sq = r.numpy_sum(r.op("Mul", [row, row]), n_features)
        to_x = r.op("Squeeze", [r.op("Sqrt", [r.op("Abs", [r.op("Add", [
            r.op("Add", [r.op("Mul", [dots, r.const(-2.0)]), sum_t]), sq])])]), r.ints(0)])
        beta = r.const(np.ones(n))
        diff = _h_diff(r, path_sum0, path_weighted0, to_x, beta, log_u)  # beta = 1: every path's first step
        go = r.op("Cast", [r.op("ReduceMax", [r.op("Cast", [_searching(r, diff, eps)], to=TensorProto.INT64)],
                                keepdims=0)], to=TensorProto.BOOL)

        def step(b: Builder, it: str, state: list[str]) -> tuple[str, list[str]]:
            beta, lo, hi, diff, sums = state
            at = b.op("Squeeze", [b.op("NonZero", [_searching(b, diff, eps)]), b.ints(0)])
            be, lo_at, hi_at, d = (b.op("Gather", [v, at]) for v in (beta, lo, hi, diff))
            nan, up = b.op("IsNaN", [d]), b.op("Greater", [d, b.const(0.0)])
            valid = b.op("Not", [nan])
            lo_at = b.where(b.op("And", [valid, up]), be, lo_at)
            hi_at = b.where(b.op("And", [valid, b.op("Not", [up])]), be, hi_at)
            two = b.const(2.0)
            higher = b.where(b.op("IsInf", [hi_at]), b.op("Mul", [be, two]),
                             b.op("Div", [b.op("Add", [be, hi_at]), two]))
            lower = b.where(b.op("IsInf", [lo_at]), b.op("Div", [be, two]),
                            b.op("Div", [b.op("Add", [be, lo_at]), two]))
            be = b.where(nan, b.op("Div", [be, b.const(10.0)]), b.where(up, higher, lower))
            # Sums from the training rows' own searches where this one is on them (same beta, same step).
            taken = b.op("Add", [it, b.const(1, np.int64)])
            cell = b.op("Add", [b.op("Mul", [at, b.const(steps, np.int64)]),
                                b.op("Min", [taken, b.const(steps - 1, np.int64)])])
            on = b.op("And", [b.op("Less", [taken, b.const(steps, np.int64)]),
                              b.op("Equal", [be, b.op("Gather", [path_beta, cell])])])
            away = b.op("Squeeze", [b.op("NonZero", [b.op("Not", [on])]), b.ints(0)])
            s_away, w_away = _sums(b, off, neg_off, b.op("Gather", [at, away]), b.op("Gather", [be, away]))
            s = b.op("ScatterElements", [b.op("Gather", [path_sum, cell]), away, s_away], axis=0)
            w = b.op("ScatterElements", [b.op("Gather", [path_weighted, cell]), away, w_away], axis=0)
            d = _h_diff(b, s, w, b.op("Gather", [to_x, at]), be, log_u)
            new = [b.op("ScatterElements", [v, at, u], axis=0)
                   for v, u in ((beta, be), (lo, lo_at), (hi, hi_at), (diff, d), (sums, s))]
            more = b.op("Cast", [b.op("ReduceMax", [b.op("Cast", [_searching(b, new[3], eps)],
                                                              to=TensorProto.INT64)], keepdims=0)],
                        to=TensorProto.BOOL)
            return more, new

        double = TensorProto.DOUBLE
        state = [(beta, double), (r.const(np.full(n, -np.inf)), double), (r.const(np.full(n, np.inf)), double),
                 (diff, double), (path_sum0, double)]
        beta, _, _, _, sum_off = r.loop(r.const(SOS_MAX_TRIES, np.int64), go, state, step)
        a_x = r.op("Exp", [r.op("Neg", [r.op("Mul", [to_x, beta])])])
        binding = r.op("Div", [a_x, r.op("Add", [sum_off, a_x])])
        return r.op("ReduceProd", [r.op("Sub", [r.const(1.0), binding]), r.ints(0)], keepdims=1)

    return g.model(g.one_row_at_a_time(x, score_row), n_features, "sos")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch.FrozenSOS": sos_to_onnx}
