"""Proximity detectors as float64 graphs over their k nearest training rows: PyOD ABOD, Sampling, HDBSCAN and COF
(frozen in the training batch, pynomaly.algorithms.proximity.TrainingBatchCOF).

All of them start from the neighbors family's search (pynomaly.export.neighbors: MatMul distances, group minima,
TopK, the chosen distances recomputed exactly) over the training rows held as constants, in Loop blocks of rows,
and compute the rest from the row's own neighbours only: batch invariant.

- ABOD: offsets a - x of the k neighbours, their Gram matrix by one batched MatMul, weighted cosines
  <a - x, b - x> / |a - x|^2 / |b - x|^2 over the pairs i < j, pairs with a neighbour equal to the row left out
  (PyOD's array_equal), variance (two passes, as np.var), negated.
- Sampling: the nearest row of the subset (k = 1), its exact distance.
- HDBSCAN: weights 1 / (d + 1e-10), normalised, times the neighbours' training scores, summed.
- COF, the row as the last row of vstack([X_train, row]): its path is itself then its k nearest training rows q_h
  in order of distance, cost_h = min(d(q_h, x), d(q_h, q_m) for m < h), acd = sum of 2 (k - h) / ((k + 1) k) cost_h.
  Each neighbour o keeps its training path (constants: its k neighbours n_j, d(o, n_j), costs c_j) except where
  the row joins it: at r = #{j: d(o, n_j) < d(o, x)} < k the row takes place r with cost min(d(x, o), d(x, n_j) for
  j < r), the later n_j move one place down with cost min(c_j, d(n_j, x)), the last drops out. COF =
  acd(x) k / sum of acd(o), with PyOD's nan_to_num. Identical rows are interchangeable in all of this, so a row
  equal to a training row (or training rows repeated) needs no tie rule; distinct rows at equal distance do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .neighbors import _check_euclidean, _check_width, _Graph, _nearest, _wrap

_CHUNK = 256  # training rows per block when the COF constants are computed


def _rows_of(det: Any, attr: str, n_features: int, name: str) -> np.ndarray:
    rows = np.asarray(getattr(det, attr), np.float64)
    _check_width(rows.shape[1], n_features, name)
    return rows


def _pairwise(b: _Graph, a: str, c: str, axis: int) -> str:
    """Exact Euclidean distances sqrt(sum((a - c)^2)) over the last axis (`axis`), a and c broadcast."""
    return b.op("Sqrt", [b.op("ReduceSumSquare", [b.op("Sub", [a, c]), b.axes(axis)], keepdims=0)])


def numpy_sum(b: _Graph, t: str, n: int) -> str:
    """double[b, 1]: the sum of the n columns of t double[b, n] in numpy's order (pairwise_sum, as np.sum over a
    contiguous axis: one accumulator below 8 terms, 8 of them up to 128, halves above), so bit for bit numpy's.
    (ReduceSum adds in another order: rows whose terms are all equal, e.g. HDBSCAN's noise, then differ by ulps
    and their order, which ranks rows by score, with them.)"""
    columns = list(b.op("Split", [t], n_out=n, axis=1, num_outputs=n)) if n > 1 else [t]

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

    return pairwise(columns)


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
    """Each training row's path within the training rows, as PyOD's COF walks it: (its k neighbours [n, k] after
    itself in order of distance, their distances [n, k], their chaining costs [n, k])."""
    from scipy.spatial.distance import cdist

    n = len(train)
    neighbours, distances, costs = (np.empty((n, k), np.int64), np.empty((n, k)), np.empty((n, k)))
    before = np.tril(np.ones((k + 1, k + 1), bool), -1)
    for start in range(0, n, _CHUNK):
        dist = cdist(train[start : start + _CHUNK], train)
        near = np.argpartition(dist, k, axis=1)[:, : k + 1] if k + 1 < n else np.tile(np.arange(n), (len(dist), 1))
        near_dist = np.take_along_axis(dist, near, axis=1)
        order = np.lexsort((near, near_dist), axis=1)  # by distance, then index (a stable argsort)
        path, path_dist = np.take_along_axis(near, order, axis=1), np.take_along_axis(near_dist, order, axis=1)
        points = train[path]
        within = np.sqrt(((points[:, :, None, :] - points[:, None, :, :]) ** 2).sum(axis=3))
        rows = slice(start, start + len(dist))
        neighbours[rows], distances[rows] = path[:, 1:], path_dist[:, 1:]
        costs[rows] = np.where(before, within, np.inf).min(axis=2)[:, 1:]
    return neighbours, distances, costs


def cof_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """TrainingBatchCOF: PyOD's COF score of the row as the last row of vstack([X_train, row])."""
    if not hasattr(det, "X_train_"):
        raise NotFittedError("this TrainingBatchCOF is not fitted yet")
    train = _rows_of(det, "X_train_", n_features, "COF")
    k = det.detector_.n_neighbors_
    neighbours, distances, costs = cof_paths(train, k)
    g = _Graph()
    raw = g.const(train, hint="points")
    nearest = _nearest(g, train, k, raw)
    nbr_c, dist_c, cost_c = g.const(neighbours, np.int64), g.const(distances), g.const(costs)
    weights, kk = g.const(cof_weights(k), hint="weights"), g.const([k], np.int64, "k")
    before = g.const(np.tril(np.ones((k, k), bool), -1), np.bool_, "before")
    places = g.const(np.arange(k, dtype=np.float64), hint="places")
    inf, zero = g.const(np.inf), g.const(0.0)
    shift = g.const([0, 0, 1, 0, 0, 0], np.int64, "pads")  # one place down along the path (axis 2)
    drop_last = (g.const([0], np.int64), g.const([k - 1], np.int64), g.axes(2))

    def acd(b: _Graph, cost: str) -> str:
        return b.op("ReduceSum", [b.op("Mul", [cost, weights]), b.axes(-1)], keepdims=0)

    def down(b: _Graph, v: str) -> str:
        return b.op("Pad", [b.op("Slice", [v, *drop_last]), shift, zero])

    def score(b: _Graph, x: str) -> str:
        found, sq = nearest(b, x)
        sq, pos = b.op("TopK", [sq, kk], n_out=2, largest=0, sorted=1)
        idx = b.op("GatherElements", [found, pos], axis=1)  # the row's path, nearest first
        to_x = b.op("Sqrt", [sq])  # [b, k]
        q = b.op("Gather", [raw, idx])  # [b, k, F]
        within = _pairwise(b, b.op("Unsqueeze", [q, b.axes(2)]), b.op("Unsqueeze", [q, b.axes(1)]), 3)
        earlier = b.op("ReduceMin", [b.op("Where", [before, within, inf]), b.axes(2)], keepdims=0)
        acd_x = acd(b, b.op("Min", [to_x, earlier]))
        # Each neighbour o's path with the row inserted at place r (r = k: not inserted).
        x_o = b.op("Unsqueeze", [to_x, b.axes(2)])  # [b, k, 1]
        to_n = _pairwise(b, b.op("Gather", [raw, b.op("Gather", [nbr_c, idx])]),
                         b.op("Unsqueeze", [x, b.axes(1, 2)]), 3)  # d(x, n_j(o)) [b, k, k]
        closer = b.op("Less", [b.op("Gather", [dist_c, idx]), x_o])
        r = b.op("ReduceSum", [b.op("Cast", [closer], to=TensorProto.DOUBLE), b.axes(2)], keepdims=1)
        x_cost = b.op("Min", [x_o, b.op("ReduceMin", [b.op("Where", [closer, to_n, inf]), b.axes(2)], keepdims=1)])
        c_o = b.op("Gather", [cost_c, idx])
        moved = b.op("Min", [down(b, c_o), down(b, to_n)])
        cost = b.op("Where", [b.op("Less", [places, r]), c_o,
                              b.op("Where", [b.op("Equal", [places, r]), x_cost, moved])])
        total = b.op("ReduceSum", [acd(b, cost), b.axes(1)], keepdims=0)
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
