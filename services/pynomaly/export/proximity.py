"""Proximity detectors as float64 graphs over their k nearest training rows: PyOD ABOD, Sampling, HDBSCAN and COF
(frozen in the training batch, pynomaly.algorithms.proximity.TrainingBatchCOF).

ABOD, Sampling and HDBSCAN start from the neighbors family's search (pynomaly.export.neighbors: MatMul distances,
group minima, TopK, the chosen distances recomputed exactly) over the training rows held as constants, COF from a
pool of its own (below); all in Loop blocks of rows, computing the rest from the row's own neighbours only: batch
invariant.

- ABOD: offsets a - x of the k neighbours, their Gram matrix by one batched MatMul, weighted cosines
  <a - x, b - x> / |a - x|^2 / |b - x|^2 over the pairs i < j, pairs with a neighbour equal to the row left out
  (PyOD's array_equal), variance (two passes, as np.var), negated.
- Sampling: the nearest row of the subset (k = 1), its exact distance.
- HDBSCAN: weights 1 / (d + 1e-10), normalised, times the neighbours' training scores, summed; sums in numpy's
  order (numpy_sum), so bit for bit PyOD's where its search finds the same neighbours.
- COF, the row as the last row of vstack([X_train, row]), equal distances in index order (the row last; see
  pynomaly.algorithms.proximity): its path is itself then its k nearest training rows q_h, cost_h =
  min(d(q_h, x), d(q_h, q_m) for m < h), acd = sum of 2 (k - h) / ((k + 1) k) cost_h. Each neighbour o keeps its
  training path (constants: its k neighbours n_j, d(o, n_j), costs c_j) except where the row joins it: at
  r = #{j: d(o, n_j) <= d(o, x)} < k the row takes place r with cost min(d(x, o), d(x, n_j) for j < r), the later
  n_j move one place down with cost min(c_j, d(n_j, x)), the last drops out. COF = acd(x) k / sum of acd(o), with
  PyOD's nan_to_num. Distances that decide an order are computed as PyOD's (numpy's order of summation), and so
  are the sums over the path: equal distances stay equal, and the score is PyOD's to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from pynomaly.algorithms.proximity import within_kth

from .neighbors import _check_euclidean, _check_width, _Graph, _nearest, _wrap

_CHUNK = 64  # training rows at a time while the COF constants are computed


def _rows_of(det: Any, attr: str, n_features: int, name: str) -> np.ndarray:
    rows = np.asarray(getattr(det, attr), np.float64)
    _check_width(rows.shape[1], n_features, name)
    return rows


def _distance(b: _Graph, a: str, c: str) -> str:
    """Euclidean distances sqrt(sum((a - c)^2)) over the last axis, a and c broadcast."""
    return b.op("Sqrt", [b.op("ReduceSumSquare", [b.op("Sub", [a, c]), b.axes(-1)], keepdims=0)])


def numpy_sum(b: _Graph, t: str, n: int, axis: int = 1) -> str:
    """The sum of t's n entries along `axis` (kept, size 1) in numpy's order (pairwise_sum, as np.sum over a
    contiguous axis: one accumulator below 8 terms, 8 of them up to 128, halves above): bit for bit numpy's.
    ReduceSum adds in another order: equal terms (HDBSCAN's noise scores) then sum to results an ulp apart, and
    rows PyOD ties are ranked apart; COF's ties between distances would be decided otherwise."""
    parts = list(b.op("Split", [t], n_out=n, axis=axis, num_outputs=n)) if n > 1 else [t]

    def add(u: str, v: str) -> str:
        return b.op("Add", [u, v])

    def pairwise(cols: list[str]) -> str:
        if len(cols) < 8:
            total = cols[0]
            for c in cols[1:]:
                total = add(total, c)
            return total
        if len(cols) <= 128:
            r = cols[:8]
            i = 8
            while i < len(cols) - len(cols) % 8:
                r = [add(r[j], cols[i + j]) for j in range(8)]
                i += 8
            total = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])))
            for c in cols[i:]:
                total = add(total, c)
            return total
        half = len(cols) // 2
        half -= half % 8
        return add(pairwise(cols[:half]), pairwise(cols[half:]))

    return pairwise(parts)


def numpy_distance(b: _Graph, diff: str, n: int, axis: int = -1) -> str:
    """Euclidean norms of `diff` along `axis` (n entries, dropped) as numpy computes sqrt(np.sum(d ** 2, axis)): as
    scipy's distance_matrix, which PyOD's COF measures with."""
    return b.op("Sqrt", [b.op("Squeeze", [numpy_sum(b, b.op("Mul", [diff, diff]), n, axis), b.axes(axis)])])


# --- ABOD ---


def abod_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD ABOD (method "fast"): minus the variance of the weighted cosines over pairs of the k nearest rows."""
    check_is_fitted(det, ["X_train_", "decision_scores_"])
    if det.method != "fast":
        raise ValueError(f"ABOD method={det.method!r}: only 'fast' is exported")
    _check_euclidean(det.neigh_)
    train = _rows_of(det, "X_train_", n_features, "ABOD")
    k = det.n_neighbors
    if np.isnan(det.decision_scores_).any():
        raise ValueError(f"n_neighbors={k}: training rows present {k - 1} times or more leave no pair of other "
                         "neighbours, PyOD's scores of them are non-finite (NaN); choose a larger n_neighbors")
    g = _Graph()
    raw = g.const(train, hint="points")
    nearest = _nearest(g, train, k, raw)
    upper = g.const(np.triu(np.ones((k, k), bool), 1), np.bool_, "pairs")
    zero = g.const(0.0)

    def score(b: _Graph, x: str) -> str:
        idx, sq = nearest(b, x)
        offsets = b.op("Sub", [b.op("Gather", [raw, idx]), b.op("Unsqueeze", [x, b.axes(1)])])  # [b, k, F]
        gram = b.op("MatMul", [offsets, b.op("Transpose", [offsets], perm=[0, 2, 1])])
        wcos = b.op("Div", [b.op("Div", [gram, b.op("Unsqueeze", [sq, b.axes(2)])]),
                            b.op("Unsqueeze", [sq, b.axes(1)])])
        equal = b.op("Equal", [b.op("ReduceMax", [b.op("Abs", [offsets]), b.axes(2)], keepdims=0), zero])
        other = b.op("Not", [equal])
        pairs = b.op("And", [b.op("And", [b.op("Unsqueeze", [other, b.axes(2)]),
                                           b.op("Unsqueeze", [other, b.axes(1)])]), upper])
        count = b.op("ReduceSum", [b.op("Cast", [pairs], to=TensorProto.DOUBLE), b.axes(1, 2)], keepdims=1)
        kept = b.op("Where", [pairs, wcos, zero])  # 0/0 where a neighbour is the row: left out
        mean = b.op("Div", [b.op("ReduceSum", [kept, b.axes(1, 2)], keepdims=1), count])
        dev = b.op("Where", [pairs, b.op("Sub", [wcos, mean]), zero])
        var = b.op("Div", [b.op("ReduceSum", [b.op("Mul", [dev, dev]), b.axes(1, 2)], keepdims=0),
                           b.op("Reshape", [count, b.const([-1], np.int64)])])
        return b.op("Neg", [var])

    return _wrap(score, g, n_features, "abod")


# --- Sampling ---


def sampling_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD Sampling: the distance to the nearest row of the subset drawn at fit."""
    check_is_fitted(det, ["threshold_"])
    if "Euclidean" not in type(det.dist).__name__:
        raise ValueError(f"only the Euclidean metric is exported, not {type(det.dist).__name__}")
    subset = _rows_of(det, "subset", n_features, "Sampling")
    g = _Graph()
    nearest = _nearest(g, subset, 1)

    def score(b: _Graph, x: str) -> str:
        _, sq = nearest(b, x)
        return b.op("Sqrt", [b.op("ReduceMax", [sq, b.axes(1)], keepdims=0)])

    return _wrap(score, g, n_features, "sampling")


# --- HDBSCAN ---


def hdbscan_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD HDBSCAN: the inverse-distance weighted mean of the k nearest training rows' scores."""
    check_is_fitted(det, ["tree_", "decision_scores_"])
    _check_euclidean(det.tree_)
    train = _rows_of(det, "X_train_", n_features, "HDBSCAN")
    k = det.tree_.n_neighbors
    g = _Graph()
    nearest = _nearest(g, train, k)
    training_scores = g.const(det.decision_scores_, hint="training_scores")
    kk = g.const([k], np.int64, "k")

    def score(b: _Graph, x: str) -> str:
        found, sq = nearest(b, x)
        sq, pos = b.op("TopK", [sq, kk], n_out=2, largest=0, sorted=1)  # in order of distance, as sklearn's
        idx = b.op("GatherElements", [found, pos], axis=1)
        weights = b.op("Div", [b.const(1.0), b.op("Add", [b.op("Sqrt", [sq]), b.const(1e-10)])])
        weights = b.op("Div", [weights, numpy_sum(b, weights, k)])
        terms = b.op("Mul", [weights, b.op("Gather", [training_scores, idx])])
        return b.op("Squeeze", [numpy_sum(b, terms, k), b.axes(1)])

    return _wrap(score, g, n_features, "hdbscan")


# --- COF ---


def cof_weights(k: int) -> np.ndarray:
    """PyOD's weights of the chaining costs, expression for expression."""
    return np.array([(2.0 * ((k + 1) - (h + 1))) / ((k + 1) * k) for h in range(k)])


def cof_paths(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each training row's path within the training rows as PyOD's COF walks it (distances as scipy's
    distance_matrix computes them, equal ones in index order): (its k neighbours [n, k] after its own place, their
    distances [n, k], their chaining costs [n, k])."""
    n = len(train)
    path, path_dist = np.empty((n, k + 1), np.int64), np.empty((n, k + 1))
    for start in range(0, n, _CHUNK):
        near = within_kth(train[start : start + _CHUNK], train, k + 1)
        for i, row in enumerate(near, start):
            candidates = np.nonzero(row)[0]
            exact = np.sqrt(np.sum((train[candidates] - train[i]) ** 2, axis=-1))
            order = np.lexsort((candidates, exact))[: k + 1]
            path[i], path_dist[i] = candidates[order], exact[order]
    costs = np.empty((n, k))
    before = np.tril(np.ones((k + 1, k + 1), bool), -1)
    for start in range(0, n, _CHUNK):
        points = train[path[start : start + _CHUNK]]
        within = np.sqrt(np.sum((points[:, None, :, :] - points[:, :, None, :]) ** 2, axis=-1))
        costs[start : start + _CHUNK] = np.where(before, within, np.inf).min(axis=2)[:, 1:]
    return path[:, 1:], path_dist[:, 1:], costs


def cof_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """TrainingBatchCOF: PyOD's COF score of the row as the last row of vstack([X_train, row]), equal distances
    taken in index order (pynomaly.algorithms.proximity.score_in_training_batch)."""
    if not hasattr(det, "X_train_"):
        raise NotFittedError("this TrainingBatchCOF is not fitted yet")
    train = _rows_of(det, "X_train_", n_features, "COF")
    k = det.detector_.n_neighbors_
    if not 1 <= k < len(train):
        raise ValueError(f"n_neighbors={k} must be in [1, {len(train) - 1}] (training rows - 1)")
    neighbours, distances, costs = cof_paths(train, k)
    g = _Graph()
    raw = g.const(train, hint="points")
    # The pool of nearest rows re-measured exactly: a row whose distance the expansion's rounding (or the order of
    # summation) moves across the k-th would be missed only past k such rows.
    pool_k = g.const([min(len(train), 2 * k)], np.int64, "pool")
    centre = np.round(train.mean(axis=0))
    centred = train - centre
    mu, w = g.const(centre, hint="mu"), g.const(-2.0 * centred.T, hint="w")
    norms = g.const(np.einsum("ij,ij->i", centred, centred), hint="norms")
    nbr_c, dist_c, cost_c = g.const(neighbours, np.int64), g.const(distances), g.const(costs)
    weights, kk = g.const(cof_weights(k), hint="weights"), g.const([k], np.int64, "k")
    before = g.const(np.tril(np.ones((k, k), bool), -1), np.bool_, "before")
    places = g.const(np.arange(k, dtype=np.float64), hint="places")
    inf, zero = g.const(np.inf), g.const(0.0)
    shift = g.const([0, 0, 1, 0, 0, 0], np.int64, "pads")  # one place down along the path (axis 2)
    drop_last = (g.const([0], np.int64), g.const([k - 1], np.int64), g.axes(2))

    def acd(b: _Graph, cost: str, axis: int) -> str:
        return b.op("Squeeze", [numpy_sum(b, b.op("Mul", [cost, weights]), k, axis), b.axes(axis)])

    def rows_of(b: _Graph, idx: str) -> str:
        """The training rows at idx [b, pool], feature first: [F, b, pool]."""
        return b.op("Transpose", [b.op("Gather", [raw, idx])], perm=[2, 0, 1])

    def down(b: _Graph, v: str) -> str:
        return b.op("Pad", [b.op("Slice", [v, *drop_last]), shift, zero])

    def score(b: _Graph, x: str) -> str:
        # The row's k nearest training rows in order, equal distances by index (TopK's rule): a pool of the nearest
        # by the MatMul expansion of the squared distances (centred on a whole-number mean: exact on integer data,
        # ties and all), then PyOD's distances (numpy's order) on the pool, re-sorted from index order. Differences
        # are laid out feature first, [F, ...], so that numpy's order of summation splits them cheaply.
        ranks = b.op("Add", [b.op("MatMul", [b.op("Sub", [x, mu]), w]), norms])
        _, pool = b.op("TopK", [ranks, pool_k], n_out=2, largest=0, sorted=0)
        _, order = b.op("TopK", [b.op("Cast", [pool], to=TensorProto.DOUBLE), pool_k], n_out=2, largest=0, sorted=1)
        pool = b.op("GatherElements", [pool, order], axis=1)
        x_t = b.op("Transpose", [x], perm=[1, 0])  # [F, b]
        exact = numpy_distance(b, b.op("Sub", [rows_of(b, pool), b.op("Unsqueeze", [x_t, b.axes(2)])]), n_features, 0)
        to_x, pos = b.op("TopK", [exact, kk], n_out=2, largest=0, sorted=1)
        idx = b.op("GatherElements", [pool, pos], axis=1)  # [b, k]: the row's path after itself
        # Distances that only enter minima (no order is decided on them): one ReduceSumSquare, equal to numpy's
        # below 8 features, ulps apart above.
        q = b.op("Gather", [raw, idx])  # [b, k, F]
        within = _distance(b, b.op("Unsqueeze", [q, b.axes(2)]), b.op("Unsqueeze", [q, b.axes(1)]))  # d(q_h, q_m)
        earlier = b.op("ReduceMin", [b.op("Where", [before, within, inf]), b.axes(2)], keepdims=0)
        acd_x = acd(b, b.op("Min", [to_x, earlier]), 1)
        # Each neighbour o's path with the row inserted after the rows as near to o as it (r = k: not inserted).
        x_o = b.op("Unsqueeze", [to_x, b.axes(2)])  # [b, k, 1]
        to_n = _distance(b, b.op("Gather", [raw, b.op("Gather", [nbr_c, idx])]),
                         b.op("Unsqueeze", [x, b.axes(1, 2)]))  # [b, k, k]: d(n_j(o), x)
        nearer = b.op("LessOrEqual", [b.op("Gather", [dist_c, idx]), x_o])
        r = b.op("ReduceSum", [b.op("Cast", [nearer], to=TensorProto.DOUBLE), b.axes(2)], keepdims=1)
        x_cost = b.op("Min", [x_o, b.op("ReduceMin", [b.op("Where", [nearer, to_n, inf]), b.axes(2)], keepdims=1)])
        c_o = b.op("Gather", [cost_c, idx])
        moved = b.op("Min", [down(b, c_o), down(b, to_n)])
        cost = b.op("Where", [b.op("Less", [places, r]), c_o,
                              b.op("Where", [b.op("Equal", [places, r]), x_cost, moved])])
        total = b.op("Squeeze", [numpy_sum(b, acd(b, cost, 2), k, 1), b.axes(1)])
        cof = b.op("Div", [b.op("Mul", [acd_x, b.const(float(k))]), total])
        # np.nan_to_num: 0/0 -> 0, x/0 -> the largest double (scores are never negative)
        cof = b.op("Where", [b.op("IsNaN", [cof]), zero, cof])
        return b.op("Where", [b.op("IsInf", [cof]), b.const(np.finfo(np.float64).max), cof])

    return _wrap(score, g, n_features, "cof")


CONVERTERS = {
    "pyod.models.abod.ABOD": abod_to_onnx,
    "pyod.models.sampling.Sampling": sampling_to_onnx,
    "pyod.models.hdbscan.HDBSCAN": hdbscan_to_onnx,
    "pynomaly.algorithms.proximity.TrainingBatchCOF": cof_to_onnx,
}
