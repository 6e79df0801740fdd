"""PyOD LOCI, frozen: each row scored as PyOD scores it within the training batch (pynomaly.algorithms.in_batch).

PyOD (pyod 3.6.7 models/loci.py) scores a batch from its own distance matrix alone: for each row, over its
critical radii r (its distances to the others and those over alpha, in increasing order), the rows within r of it
(the sampling neighbourhood), each one's count of rows closer than alpha r, their mean n_hat and deviation sigma,
and MDEF = 1 - own count / n_hat; the score is MDEF / sigma_MDEF where n_hat >= 20 and MDEF > k sigma_MDEF first
(the loop breaks), else at the last radius with n_hat >= 20, else 0. Within the training batch, the counts of a
training row j are its count among the training rows (a step function of the radius: its sorted distances, [n, n]
constants) plus one if x is closer.

The graph, per row (a Loop, one row at a time): x's distances d to the training rows as scipy's pdist computes them
(a sequential sum of squares, so that ties between equal distances on integer data are PyOD's), the 2n radii,
the training rows' counts below each radius by one sort per training row of its sorted distances merged with the
radii (TopK; ties put radii first, so only strictly closer rows count), then every radius at once and the pick of
PyOD's loop. Cost per scored row: n sorts of 3n values (n = 300: ~3M comparisons). Counts are exact; n_hat and
sigma agree to rounding (numpy sums in another order), so do the scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pynomaly.algorithms.in_batch import FrozenLOCI

from ._ops import Builder, training_rows


def _count_below(b: Builder, sorted_rows: str, n: int, t: str) -> str:
    """int64[n, Q]: per training row j, how many of its n sorted distances are < t[q] (numpy's searchsorted,
    side="left"), by a branch-free binary search over all (j, q) at once: log2(n) GatherElements."""
    width = b.op("Shape", [t])
    pos = b.op("Expand", [b.const(0, np.int64), b.op("Concat", [b.ints(n), width], axis=0)])
    step = 1 << max(0, (n - 1).bit_length())
    while step:
        probe = b.op("GatherElements", [sorted_rows, b.op("Add", [pos, b.const(step - 1, np.int64)])], axis=1)
        # pos += step where the probe is below t (arithmetic: onnxruntime's Where is slow on [n, Q])
        pos = b.op("Add", [pos, b.op("Mul", [b.op("Cast", [b.op("Less", [probe, t])], to=TensorProto.INT64),
                                            b.const(step, np.int64)])])
        step >>= 1
    return pos


def loci_to_onnx(det: FrozenLOCI, n_features: int) -> onnx.ModelProto:
    train = training_rows(det, n_features, "LOCI")
    loci = det.detector_
    alpha, k = float(loci.alpha), float(loci.k)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha={alpha}: only 0 < alpha <= 1 is exported")
    distances = det.training_distances()
    n = len(train)
    g = Builder()
    x = g.rows()
    points = g.const(train)
    steps = 1 << max(0, (n - 1).bit_length())  # a power of two >= n
    # Each training row's distances in increasing order, padded with inf to the binary search's reach.
    sorted_train = g.const(np.hstack([np.sort(distances, axis=1), np.full((n, steps), np.inf)]))
    train_max = g.const(float(distances.max()))
    alpha_c = g.const(alpha)

    def score_row(b: Builder, row: str) -> str:
        diff = b.op("Sub", [row, points])  # [n, F]
        d = b.op("Squeeze", [b.op("Sqrt", [b.numpy_sum(b.op("Mul", [diff, diff]), n_features, sequential=True)]),
                             b.ints(1)])  # [n]
        r_max = b.op("Div", [b.op("Max", [train_max, b.op("ReduceMax", [d], keepdims=0)]), alpha_c])
        near = b.op("And", [b.op("Greater", [d, b.const(0.0)]), b.op("LessOrEqual", [d, r_max])])
        radii = b.op("Concat", [d, b.op("Div", [d, alpha_c])], axis=0)  # [2n]
        usable = b.op("Concat", [near, near], axis=0)
        t = b.op("Mul", [radii, alpha_c])
        column = b.op("Unsqueeze", [t, b.ints(1)])  # [2n, 1]
        closer = b.op("Less", [d, column])  # [2n, n]: training row j closer to x than alpha r
        below = b.op("Transpose", [_count_below(b, sorted_train, n, t)], perm=[1, 0])  # [2n, n]
        double = TensorProto.DOUBLE
        counts = b.op("Add", [b.op("Cast", [below], to=double), b.op("Cast", [closer], to=double)])  # [2n, n]
        axis1 = b.ints(1)
        own = b.op("Add", [b.op("ReduceSum", [b.op("Cast", [closer], to=double), axis1], keepdims=0),
                           b.const(1.0)])
        sampled = b.op("LessOrEqual", [d, b.op("Unsqueeze", [radii, b.ints(1)])])
        size = b.op("Add", [b.op("ReduceSum", [b.op("Cast", [sampled], to=double), axis1], keepdims=0),
                            b.const(1.0)])
        in_sample = b.op("Cast", [sampled], to=double)
        n_hat = b.op("Div", [b.op("Add", [b.op("ReduceSum", [b.op("Mul", [counts, in_sample]), axis1], keepdims=0),
                                          own]), size])
        dev = b.op("Sub", [counts, b.op("Unsqueeze", [n_hat, b.ints(1)])])
        own_dev = b.op("Sub", [own, n_hat])
        squares = b.op("Add", [b.op("ReduceSum", [b.op("Mul", [b.op("Mul", [dev, dev]), in_sample]), axis1],
                                    keepdims=0), b.op("Mul", [own_dev, own_dev])])
        mdef = b.op("Sub", [b.const(1.0), b.op("Div", [own, n_hat])])
        sigma = b.op("Div", [b.op("Sqrt", [b.op("Div", [squares, size])]), n_hat])
        value = b.op("Div", [mdef, sigma])
        counted = b.op("And", [usable, b.op("GreaterOrEqual", [n_hat, b.const(20.0)])])
        stop = b.op("And", [counted, b.op("Greater", [mdef, b.op("Mul", [sigma, b.const(k)])])])
        inf = b.const(np.inf)
        first_stop = b.op("ArgMin", [b.where(stop, radii, inf)], axis=0, keepdims=1)
        last_counted = b.op("ArgMax", [b.where(counted, radii, b.op("Neg", [inf]))], axis=0, keepdims=1)

        def anywhere(flags: str) -> str:
            return b.op("Cast", [b.op("ReduceMax", [b.op("Cast", [flags], to=TensorProto.INT64)], keepdims=1)],
                        to=TensorProto.BOOL)

        picked = b.where(anywhere(stop), b.op("Gather", [value, first_stop]), b.op("Gather", [value, last_counted]))
        return b.where(anywhere(counted), picked, b.const([0.0]))

    return g.model(g.one_row_at_a_time(x, score_row), n_features, "loci")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch.FrozenLOCI": loci_to_onnx}
