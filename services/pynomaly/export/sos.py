"""PyOD SOS, frozen: each row scored as PyOD scores it within the training batch (pynomaly.algorithms.in_batch).

PyOD (pyod 3.6.7 models/sos.py) scores a batch from the batch alone: distances among its rows (the GEMM
expansion), per row a bisection for the Gaussian precision beta whose affinities reach the target perplexity,
binding probabilities, and a row's outlier probability = the product over the other rows of 1 - their binding
probability to it. Within the training batch, that is for a row x: every training row i searches its beta_i again
over its distances to the other training rows (constants, [n, n - 1]) and to x; then
prod_i (1 - exp(-d_ix beta_i) / sum_j exp(-d_ij beta_i)).

The graph does that per row (a Loop, one row at a time): d_ix as PyOD computes it, sqrt(|(-2 x.t_i + |t_i|^2) +
|x|^2|); the bisection as a Loop over PyOD's steps (beta / 10 on NaN, doubling / halving until bounded, then
halving the interval; at most 5000), each training row leaving the loop when PyOD's would (|H - log perplexity| <=
eps); only the rows still searching are computed (Gather / ScatterElements). Cost per scored row: the training
rows times their bisection steps times n exponentials (n = 300: ~3M). The steps' decisions are PyOD's unless H
lands within rounding (~1e-16) of the tolerance; scores agree to ~1e-15.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pynomaly.algorithms.in_batch import SOS_MAX_TRIES, FrozenSOS

from ._ops import Builder, training_rows


def _h_diff(b: Builder, off: str, to_x: str, at: str, beta: str, log_u: str) -> str:
    """H(beta) - log(perplexity) of training rows `at`, as pyod.models.sos._get_perplexity computes H."""
    d_off, d_x = b.op("Gather", [off, at]), b.op("Gather", [to_x, at])
    a_off = b.op("Exp", [b.op("Neg", [b.op("Mul", [d_off, b.op("Unsqueeze", [beta, b.ints(1)])])])])
    a_x = b.op("Exp", [b.op("Neg", [b.op("Mul", [d_x, beta])])])
    axis = b.ints(1)
    sum_a = b.op("Add", [b.op("ReduceSum", [a_off, axis], keepdims=0), a_x])
    weighted = b.op("Add", [b.op("ReduceSum", [b.op("Mul", [d_off, a_off]), axis], keepdims=0),
                            b.op("Mul", [d_x, a_x])])
    h = b.op("Add", [b.op("Log", [sum_a]), b.op("Div", [b.op("Mul", [beta, weighted]), sum_a])])
    return b.op("Sub", [h, log_u])


def _searching(b: Builder, diff: str, eps: str) -> str:
    return b.op("Or", [b.op("IsNaN", [diff]), b.op("Greater", [b.op("Abs", [diff]), eps])])


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
    off = g.const(det.off_diagonal())
    n = len(train)
    log_u, eps = g.const(np.log(sos.perplexity)), g.const(float(sos.eps))

    def score_row(r: Builder, row: str) -> str:
        dots = r.op("MatMul", [row, train_t])
        sq = r.numpy_sum(r.op("Mul", [row, row]), n_features)
        to_x = r.op("Squeeze", [r.op("Sqrt", [r.op("Abs", [r.op("Add", [
            r.op("Add", [r.op("Mul", [dots, r.const(-2.0)]), sum_t]), sq])])]), r.ints(0)])
        everyone = r.const(np.arange(n), np.int64)
        beta = r.const(np.ones(n))
        diff = _h_diff(r, off, to_x, everyone, beta, log_u)
        go = r.op("Cast", [r.op("ReduceMax", [r.op("Cast", [_searching(r, diff, eps)], to=TensorProto.INT64)],
                                keepdims=0)], to=TensorProto.BOOL)

        def step(b: Builder, state: list[str]) -> tuple[str, list[str]]:
            beta, lo, hi, diff = state
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
            d = _h_diff(b, off, to_x, at, be, log_u)
            new = [b.op("ScatterElements", [v, at, u], axis=0) for v, u in ((beta, be), (lo, lo_at), (hi, hi_at),
                                                                             (diff, d))]
            more = b.op("Cast", [b.op("ReduceMax", [b.op("Cast", [_searching(b, new[3], eps)],
                                                              to=TensorProto.INT64)], keepdims=0)],
                        to=TensorProto.BOOL)
            return more, new

        double = TensorProto.DOUBLE
        state = [(beta, double), (r.const(np.full(n, -np.inf)), double), (r.const(np.full(n, np.inf)), double),
                 (diff, double)]
        beta = r.loop(r.const(SOS_MAX_TRIES, np.int64), go, state, step)[0]
        a_x = r.op("Exp", [r.op("Neg", [r.op("Mul", [to_x, beta])])])
        a_off = r.op("Exp", [r.op("Neg", [r.op("Mul", [off, r.op("Unsqueeze", [beta, r.ints(1)])])])])
        binding = r.op("Div", [a_x, r.op("Add", [r.op("ReduceSum", [a_off, r.ints(1)], keepdims=0), a_x])])
        return r.op("ReduceProd", [r.op("Sub", [r.const(1.0), binding]), r.ints(0)], keepdims=1)

    return g.model(g.one_row_at_a_time(x, score_row), n_features, "sos")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch.FrozenSOS": sos_to_onnx}
