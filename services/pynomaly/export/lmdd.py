"""PyOD LMDD, frozen: each row scored as PyOD scores it within the training batch (algorithms.in_batch_lmdd).

PyOD (pyod 3.6.7 models/lmdd.py) scores a batch from the batch alone. Per iteration (n_iter of them) it visits the
batch in a seeded random order and takes the dissimilarity D (the mean absolute deviation of all values, 'aad') of
each prefix; j = the first prefix whose row raised D most (by var_max); the row at j gets var_max, each later row k
gets var_max + D(first j rows + k) - D(first j + 1 rows + k) where that is >= 0, the others 0. A row's score is its
largest result over the iterations (the first time reached) times that iteration's cardinality, the rows with no
positive result. The orders depend on the seed and the batch size only: within the training batch (n + 1 rows,
the scored row last) they are constants (lmdd_permutations).

The graph, per row (a Loop) and per iteration (a Loop): the batch in that iteration's order, every prefix's D as
numba computes it (sequential sums: one CumSum for the prefixes' means, one per prefix for their deviations; the
prefixes before the row's place hold training rows only: constants, lmdd_training_prefixes), j and var_max, the
later rows' differences, the row's result and the cardinality. Bit for bit PyOD's arithmetic except
onnxruntime's division and subtraction, which are IEEE's too: ties between prefixes (integer data) fall as in PyOD.
Cost per scored row: what PyOD's scoring of the whole training batch costs, n_iter * ~5 (n + 1)^2 F values (100
rows, 6 features, 50 iterations: ~15M, ~0.1 s): training is limited to few rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pynomaly.algorithms.in_batch_lmdd import FrozenLMDD, lmdd_permutations, lmdd_training_prefixes

from ._ops import Builder, training_rows


def _aad_with(b: Builder, head: str, head_sum: str, rows: str, count: str, width: int) -> str:
    """[K]: numba's _aad of `head` (flat, the first values of the order) followed by each row of `rows` [K, F]:
    its mean (head_sum, the head's sequential sum, continued over the row), then the sequential sum of the
    absolute deviations, each over count values."""
    k = b.op("Shape", [rows], start=0, end=1)
    ones = b.op("Concat", [k, b.ints(1)], axis=0)
    sums = b.op("CumSum", [b.op("Concat", [b.op("Expand", [head_sum, ones]), rows], axis=1), b.ints(1)])
    last = b.op("Gather", [sums, b.const(width, np.int64)], axis=1)  # [K]
    mean = b.op("Div", [last, count])
    head_len = b.op("Shape", [head])
    values = b.op("Concat", [b.op("Expand", [b.op("Unsqueeze", [head, b.ints(0)]),
                                               b.op("Concat", [k, head_len], axis=0)]), rows], axis=1)
    deviations = b.op("Abs", [b.op("Sub", [values, b.op("Unsqueeze", [mean, b.ints(1)])])])
    total = b.op("Gather", [b.op("CumSum", [deviations, b.ints(1)]), b.op("Sub", [b.op("Shape", [values],
                                                                                            start=1, end=2),
                                                                                   b.ints(1)])], axis=1)
    return b.op("Div", [b.op("Squeeze", [total, b.ints(1)]), count])


def lmdd_to_onnx(det: FrozenLMDD, n_features: int) -> onnx.ModelProto:
    train = training_rows(det, n_features, "LMDD")
    lmdd = det.detector_
    if lmdd.dis_measure != "aad":
        raise ValueError(f"dis_measure={lmdd.dis_measure!r}: only 'aad' is exported")
    if lmdd.random_state is None:
        raise ValueError("random_state=None: PyOD draws the permutations from numpy's global random state at each "
                         "call; a seed is needed")
    n, width = len(train), n_features
    size = n + 1  # the training batch plus the scored row, last
    orders = lmdd_permutations(lmdd, size)
    g = Builder()
    x = g.rows()
    points = g.const(train)
    orders_c = g.const(orders, np.int64)
    where_x = g.const(np.argmax(orders == n, axis=1), np.int64)  # the scored row's place in each order
    before_c = g.const(np.nan_to_num(lmdd_training_prefixes(train, orders)))
    ends = g.const(np.arange(1, size + 1) * width - 1, np.int64)
    counts = g.const(np.arange(1, size + 1) * width, np.float64)
    double = TensorProto.DOUBLE

    def score_row(r: Builder, row: str) -> str:
        batch = r.op("Concat", [points, row], axis=0)  # [n + 1, F]

        def iteration(b: Builder, it: str, state: list[str]) -> tuple[str, list[str]]:
            dis, card = state
            seq = b.op("Gather", [batch, b.op("Gather", [orders_c, it])], axis=0)  # [n + 1, F]
            flat = b.op("Reshape", [seq, b.ints(-1)])
            prefix = b.op("CumSum", [flat, b.ints(0)])
            place = b.op("Unsqueeze", [b.op("Gather", [where_x, it]), b.ints(0)])  # [1]: the row's place
            # D of the prefixes before the row: constants; from the row's place on: computed
            ends_after = b.op("Slice", [ends, place, b.ints(size)])
            counts_after = b.op("Slice", [counts, place, b.ints(size)])
            mean = b.op("Div", [b.op("Gather", [prefix, ends_after]), counts_after])
            dev = b.op("Abs", [b.op("Sub", [b.op("Unsqueeze", [flat, b.ints(0)]), b.op("Unsqueeze", [mean,
                                                                                                     b.ints(1)])])])
            per_prefix = b.op("GatherElements", [b.op("CumSum", [dev, b.ints(1)]),
                                                 b.op("Unsqueeze", [ends_after, b.ints(1)])], axis=1)
            d = b.op("Concat", [b.op("Slice", [b.op("Gather", [before_c, it]), b.ints(0), place]),
                                b.op("Div", [b.op("Squeeze", [per_prefix, b.ints(1)]), counts_after])], axis=0)
            rise = b.op("Sub", [b.op("Slice", [d, b.ints(1), b.ints(size)]), b.op("Slice", [d, b.ints(0),
                                                                                            b.ints(size - 1)])])
            j = b.op("Add", [b.op("ArgMax", [rise], axis=0, keepdims=1), b.ints(1)])  # first largest rise
            var_max = b.op("ReduceMax", [rise], keepdims=1)
            later = b.op("Slice", [seq, b.op("Add", [j, b.ints(1)]), b.ints(size), b.ints(0)])  # rows k > j

            def without_and_with(rows_before: str) -> str:
                head_len = b.op("Mul", [rows_before, b.ints(width)])
                head = b.op("Slice", [flat, b.ints(0), head_len, b.ints(0)])
                head_sum = b.op("Gather", [prefix, b.op("Sub", [head_len, b.ints(1)])])
                count = b.op("Cast", [b.op("Add", [head_len, b.ints(width)]), ], to=double)
                return _aad_with(b, head, head_sum, later, count, width)

            diffs = b.op("Sub", [without_and_with(j), without_and_with(b.op("Add", [j, b.ints(1)]))])  # [n - j]
            kept = b.op("GreaterOrEqual", [diffs, b.const(0.0)])
            positive = b.op("Greater", [var_max, b.const(0.0)])
            raised = b.op("Add", [b.op("ReduceSum", [b.op("Cast", [kept], to=double)], keepdims=1), b.const([1.0])])
            raised = b.where(positive, raised, b.const([0.0]))
            card_t = b.op("Sub", [b.const([float(size)]), raised])
            padded = b.op("Concat", [diffs, b.const([-1.0])], axis=0)  # an index for k = place when place <= j
            own = b.op("Gather", [padded, b.op("Max", [b.op("Sub", [place, b.op("Add", [j, b.ints(1)])]),
                                                       b.ints(0)])])
            after = b.op("And", [b.op("Greater", [place, j]), b.op("GreaterOrEqual", [own, b.const(0.0)])])
            result = b.where(b.op("Equal", [place, j]), var_max,
                             b.where(after, b.op("Add", [own, var_max]), b.const([0.0])))
            result = b.where(positive, result, b.const([0.0]))
            better = b.op("Greater", [result, dis])
            return b.op("Identity", [b.const(True, np.bool_)]), [b.where(better, result, dis),
                                                                  b.where(better, card_t, card)]

        zero = r.const([0.0])
        dis, card = r.loop(r.const(orders.shape[0], np.int64), r.const(True, np.bool_),
                           [(zero, double), (zero, double)], iteration)
        return r.op("Mul", [dis, card])

    return g.model(g.one_row_at_a_time(x, score_row), n_features, "lmdd")


CONVERTERS: dict[str, Any] = {"pynomaly.algorithms.in_batch_lmdd.FrozenLMDD": lmdd_to_onnx}
