"""PyOD ROD, frozen: each row scored as PyOD scores it within the training batch (pynomaly.algorithms.in_batch).

PyOD (pyod 3.6.7 models/rod.py) scores a batch with what fit froze (per 3-D subspace: the geometric median, the
median of the training costs, the two angle MinMaxScalers; the RobustScaler over all features) except one thing:
the MAD's denominator, np.median(|cost - median|) over the batch. Within the training batch, that is the median of
the n training diffs plus the row's own diff r, which is the j-th smallest of them plus r = clip(r, t[j-1], t[j])
for the sorted training diffs t: so per subspace the graph holds the two or three training diffs around the middle
(RODSubspaces.mad_bounds), and nothing of the training rows else.

Per row and subspace, as rod_3D computes it: x - gm, its norm v, the angle arccos(clip(x.gm / (v |gm|), -1, 1))
(arccos in float64 through float32 Asin and Newton steps: onnxruntime has no double Acos), scaled by scaler 1 for
angles <= pi/2, else scaler 2, the cost v^3 cos(g) sin(g)^2 (0 where v |gm| = 0; angle pi/2 throughout where
gm = 0), then 0.6745 |cost - median| / merged median. Three features or fewer (padded with zeros): that score;
more: the RobustScaler first, the sigmoid of each subspace's score (NaN -> 0) and their mean. Every subspace at
once ([N, C(F, 3), 3]: 7140 subspaces for 36 features). Exact up to float64 rounding (~1e-15), except where at
least half the training rows share the median cost (duplicated rows): the MAD within the training batch is then 0
for a row of that cost, and whether a row's cost is bitwise the median decides 0 / 0 against x / 0; the graph
decides it by the row's coordinates (_zero_mad_diffs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pynomaly.algorithms.in_batch import HALF_PI, MAD_FACTOR, FrozenROD, RODSubspaces

from ._ops import Builder, training_rows


def _last_cosine_at_half_pi() -> float:
    """The largest negative cosine whose float64 arccos is still pi/2 (numpy's, correctly rounded): below it the
    angle falls in scale_angles' second group (> pi/2)."""
    lo, hi = -1e-15, -0.0
    while (mid := (lo + hi) / 2) not in (lo, hi):
        lo, hi = (mid, hi) if np.arccos(np.array([mid]))[0] > HALF_PI else (lo, mid)
    return hi


_LAST_COSINE_AT_HALF_PI = _last_cosine_at_half_pi()
BLOCK_VALUES = 1 << 20  # values of a block of rows' subspace coordinates: memory per node output, ~8 MB


def _zero_mad_diffs(g: Builder, xs: str, diff: str, sub: RODSubspaces, train: np.ndarray, costs: np.ndarray,
                    flagged: np.ndarray) -> str:
    """Where at least half the training rows have the median cost (duplicates), the MAD within the training batch
    is 0 for a row of that cost: PyOD scores 0 / 0 there (NaN, then sigmoid(0) = 0.5), 0.6745 or more for any
    other cost. Which side a row is on is bitwise equality with PyOD's cost, which the graph's float64 arithmetic
    (arccos near +-1 above all) cannot promise; so in those subspaces a row whose coordinates equal those of a
    training row of the median cost has diff 0 (PyOD's arithmetic on equal values), any other row at least 1e-300
    (not 0, as PyOD's cost of other values is not the median's)."""
    coords = sub.coordinates(train)
    at, triples = [], []
    for s in np.flatnonzero(flagged):
        for triple in np.unique(coords[costs[:, s] == sub.median[s], s], axis=0):
            at.append(s)
            triples.append(triple)
    floor = g.const(np.where(flagged, 1e-300, 0.0))
    diff = g.op("Max", [diff, floor])
    if not at:
        return diff
    picked = g.op("Gather", [xs, g.const(at, np.int64)], axis=1)  # [N, P, 3]
    same = g.op("ReduceMin", [g.op("Cast", [g.op("Equal", [picked, g.const(triples)])], to=TensorProto.DOUBLE),
                              g.ints(2)], keepdims=0)  # [N, P]: 1 where all three coordinates are equal
    onehot = np.zeros((len(at), len(sub.columns)))
    onehot[np.arange(len(at)), at] = 1.0
    at_median = g.op("Greater", [g.op("MatMul", [same, g.const(onehot)]), g.const(0.0)])  # [N, S]
    return g.where(at_median, g.const(0.0), diff)


def rod_to_onnx(det: FrozenROD, n_features: int) -> onnx.ModelProto:
    train = training_rows(det, n_features, "ROD")
    sub = RODSubspaces(det.detector_, n_features)
    n = len(train)
    costs = sub.costs(train)
    below, mid, above = sub.mad_bounds(costs)
    lowest = (below + mid) / 2 if n % 2 else mid  # the merged median when the row's diff is 0
    if not sub.nd and lowest[0] == 0:
        raise ValueError("at least half the training rows have the median rotation cost: the MAD is 0 and PyOD "
                         "scores a row of that cost NaN (0 / 0)")
    n_sub = len(sub.columns)
    norms = np.linalg.norm(sub.gm, axis=1)
    block = max(1, BLOCK_VALUES // (3 * n_sub))  # rows per block: [block, subspaces, 3] values at a time

    def score_block(g: Builder, x: str) -> str:
        if n_features < 3:
            x = g.op("Pad", [x, g.ints(0, 0, 0, 3 - n_features)])
        if sub.scaler is not None:
            x = g.op("Div", [g.op("Sub", [x, g.const(sub.scaler.center_)]), g.const(sub.scaler.scale_)])
        picked = g.op("Gather", [x, g.const(sub.columns.ravel(), np.int64)], axis=1)
        xs = g.op("Reshape", [picked, g.ints(0, n_sub, 3)])
        gm = g.const(sub.gm)
        d = g.op("Sub", [xs, gm])
        last = g.ints(2)
        v = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [d, d]), last], keepdims=0)])
        dot = g.op("ReduceSum", [g.op("Mul", [d, gm]), last], keepdims=0)
        denominator = g.op("Mul", [v, g.const(norms)])
        no_angle = g.const(norms == 0, np.bool_)
        cosine = g.op("Div", [dot, denominator])  # NaN where the denominator is 0: those rows are masked below
        theta = g.arccos(g.clip(cosine, g.const(-1.0), g.const(1.0)))
        theta = g.where(no_angle, g.const(HALF_PI), theta)
        valid = g.op("Or", [g.op("Greater", [denominator, g.const(0.0)]), no_angle])

        def scaled(i: int) -> str:
            return g.op("Add", [g.op("Mul", [theta, g.const(sub.scale[:, i])]), g.const(sub.offset[:, i])])

        # scale_angles' groups: angles above pi/2 (as numpy rounds arccos), decided on the cosine, not on theta
        # (whose last bit the graph's arccos may not share with numpy's)
        beyond = g.op("And", [g.op("Less", [cosine, g.const(_LAST_COSINE_AT_HALF_PI)]), g.op("Not", [no_angle])])
        gamma = g.where(beyond, scaled(1), scaled(0))
        sin = g.op("Sin", [gamma])
        cubed = g.op("Pow", [v, g.const(3.0)])
        cost = g.op("Mul", [g.op("Mul", [cubed, g.op("Cos", [gamma])]), g.op("Mul", [sin, sin])])
        cost = g.where(valid, cost, g.const(0.0))
        diff = g.op("Abs", [g.op("Sub", [cost, g.const(sub.median)])])
        if np.any(lowest == 0):
            diff = _zero_mad_diffs(g, xs, diff, sub, train, costs, lowest == 0)
        merged = g.clip(diff, g.const(mid), g.const(above))
        if n % 2:
            merged = g.op("Div", [g.op("Add", [g.clip(diff, g.const(below), g.const(mid)), merged]), g.const(2.0)])
        mad = g.op("Div", [g.op("Mul", [g.const(MAD_FACTOR), diff]), merged])
        if not sub.nd:
            return g.op("Squeeze", [mad, g.ints(1)])
        finite = g.where(g.op("IsNaN", [mad]), g.const(0.0), mad)
        sigmoid = g.op("Div", [g.const(1.0), g.op("Add", [g.const(1.0), g.op("Exp", [g.op("Neg", [finite])])])])
        return g.op("ReduceMean", [sigmoid, g.ints(1)], keepdims=0)

    outer = Builder()
    return outer.model(outer.in_blocks(outer.rows(), block, score_block), n_features, "rod")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch.FrozenROD": rod_to_onnx}
