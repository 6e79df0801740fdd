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
once ([N, C(F, 3), 3]: 7140 subspaces for 36 features), each row alone. Exact up to float64 rounding (~1e-15).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from pynomaly.algorithms.in_batch import HALF_PI, MAD_FACTOR, FrozenROD, RODSubspaces

from ._ops import Builder, training_rows


def rod_to_onnx(det: FrozenROD, n_features: int) -> onnx.ModelProto:
    train = training_rows(det, n_features, "ROD")
    sub = RODSubspaces(det.detector_, n_features)
    n = len(train)
    below, mid, above = sub.mad_bounds(sub.costs(train))
    lowest = (below + mid) / 2 if n % 2 else mid  # the merged median when the row's diff is 0
    if not sub.nd and lowest[0] == 0:
        raise ValueError("at least half the training rows have the median rotation cost: the MAD is 0 and PyOD "
                         "scores a row of that cost NaN (0 / 0)")
    g = Builder()
    x = g.rows()
    if n_features < 3:
        x = g.op("Pad", [x, g.ints(0, 0, 0, 3 - n_features)])
    if sub.scaler is not None:
        x = g.op("Div", [g.op("Sub", [x, g.const(sub.scaler.center_)]), g.const(sub.scaler.scale_)])
    n_sub = len(sub.columns)
    xs = g.op("Reshape", [g.op("Gather", [x, g.const(sub.columns.ravel(), np.int64)], axis=1), g.ints(0, n_sub, 3)])
    gm = g.const(sub.gm)
    d = g.op("Sub", [xs, gm])
    last = g.ints(2)
    v = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [d, d]), last], keepdims=0)])
    dot = g.op("ReduceSum", [g.op("Mul", [d, gm]), last], keepdims=0)
    norms = np.linalg.norm(sub.gm, axis=1)
    denominator = g.op("Mul", [v, g.const(norms)])
    no_angle = g.const(norms == 0, np.bool_)
    cosine = g.op("Div", [dot, denominator])  # NaN where the denominator is 0: those rows are masked below
    theta = g.arccos(g.clip(cosine, g.const(-1.0), g.const(1.0)))
    theta = g.where(no_angle, g.const(HALF_PI), theta)
    valid = g.op("Or", [g.op("Greater", [denominator, g.const(0.0)]), no_angle])

    def scaled(i: int) -> str:
        return g.op("Add", [g.op("Mul", [theta, g.const(sub.scale[:, i])]), g.const(sub.offset[:, i])])

    gamma = g.where(g.op("Greater", [theta, g.const(HALF_PI)]), scaled(1), scaled(0))
    sin = g.op("Sin", [gamma])
    cubed = g.op("Pow", [v, g.const(3.0)])
    cost = g.op("Mul", [g.op("Mul", [cubed, g.op("Cos", [gamma])]), g.op("Mul", [sin, sin])])
    cost = g.where(valid, cost, g.const(0.0))
    diff = g.op("Abs", [g.op("Sub", [cost, g.const(sub.median)])])
    merged = g.clip(diff, g.const(mid), g.const(above))
    if n % 2:
        merged = g.op("Div", [g.op("Add", [g.clip(diff, g.const(below), g.const(mid)), merged]), g.const(2.0)])
    mad = g.op("Div", [g.op("Mul", [g.const(MAD_FACTOR), diff]), merged])
    if not sub.nd:
        return g.model(g.op("Squeeze", [mad, g.ints(1)]), n_features, "rod")
    finite = g.where(g.op("IsNaN", [mad]), g.const(0.0), mad)
    sigmoid = g.op("Div", [g.const(1.0), g.op("Add", [g.const(1.0), g.op("Exp", [g.op("Neg", [finite])])])])
    return g.model(g.op("ReduceMean", [sigmoid, g.ints(1)], keepdims=0), n_features, "rod")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch.FrozenROD": rod_to_onnx}
