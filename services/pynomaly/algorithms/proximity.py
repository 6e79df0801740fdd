"""Proximity detectors: PyOD ABOD, Sampling, HDBSCAN, COF (served) and SOD (refused).

- ABOD scores a row by the variance of the weighted cosines between the pairs of its k nearest training rows,
  seen from the row: a fixed function of the row, served exactly. Only method "fast" (PyOD's default) is offered:
  "default" takes every pair of training rows, in Python loops, O(n^3) to fit (100 rows: 8 s, 300 rows: minutes).
- Sampling: the distance to the nearest row of a random subset of the training rows, fixed at fit.
- HDBSCAN: PyOD scores a new row by the inverse-distance weighted mean of its k nearest training rows' scores
  (1 - cluster membership probability). Its neighbour search is sklearn's "auto": a tree up to 15 features, brute
  force above, whose distances (the GEMM expansion) are off by ~1e-8 next to a training row, where the weights
  1 / (d + 1e-10) hinge on them. The reference is PyOD's decision_function with an exact search (its own tree where
  it has one, else a ball tree over the same rows).
- COF: PyOD's decision_function ignores the training data, it scores a batch within itself. Served frozen: a row
  scores as PyOD's COF scores it as one more row of the training batch, the last score of vstack([X_train, row]).
  A training row is then scored beside its own copy (its nearest neighbour, at distance 0), as KNN counts a
  training row among its own neighbours. PyOD's fitted COF keeps no training rows, so "cof" builds
  `TrainingBatchCOF`, PyOD's COF kept with them. PyOD orders each row's neighbours with numpy's unstable
  argsort, which leaves equal distances (integer data, grids: common in ADBench) in an unspecified order that
  changes the score; the reference takes them in index order (the row last), i.e. PyOD's code with a stable
  argsort, and so does the graph: bit for bit PyOD's own score wherever distances differ, and a definite one
  where they tie. The reference runs that code on the part of the batch the last score reads (the row, its k
  nearest training rows and theirs): the same distances, the same order, the same arithmetic.
- SOD is refused: see _SOD_NOTE.

Only Euclidean distance is exported (as in the neighbors family); searches are built with ball trees (exact
distances, see pynomaly.algorithms.neighbors).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pynomaly.algorithms._spec import (
    Algorithm,
    Param,
    either,
    fraction_or_count,
    integer,
    literal,
    number,
    pyod_score,
)
from pynomaly.algorithms.neighbors import _METRIC, _P, _positive

COF_MAX_TRAINING_ROWS = 5000


def _abod_neighbors(v: Any) -> int:
    v = integer()(v)
    if not 3 <= v <= 100_000:
        raise ValueError("must be an integer in [3, 100000]: ABOD takes the angles between pairs of neighbours "
                         "other than the row itself (with fewer, PyOD scores every training row NaN)")
    return v


def _abod_method(v: Any) -> str:
    if v != "fast":
        raise ValueError("must be 'fast': 'default' (all pairs of training rows) fits in O(n^3) Python loops "
                         "(minutes for a few hundred rows) and is not offered")
    return "fast"


def _euclidean_only(v: Any) -> str:
    if v != "euclidean":
        raise ValueError("must be 'euclidean': only Euclidean distance is exported exactly")
    return "euclidean"


def _build_abod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.abod import ABOD

    return ABOD(contamination=contamination, n_jobs=1, algorithm="ball_tree", **p)


def _build_sampling(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.sampling import Sampling

    return Sampling(contamination=contamination, **p)


def _build_hdbscan(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.hdbscan import HDBSCAN

    return HDBSCAN(contamination=contamination, n_jobs=1, **p)


def hdbscan_score(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD's HDBSCAN decision_function with exact neighbour distances: its own (tree) search where it has one, else
    (brute force: above 15 features, or k >= rows / 2) a ball tree over the same training rows."""
    import copy

    from sklearn.neighbors import NearestNeighbors
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(det, ["tree_"])
    if det.tree_._fit_method in ("kd_tree", "ball_tree"):
        return pyod_score(det, X)
    exact = copy.copy(det)  # shallow: only tree_ is replaced
    exact.tree_ = NearestNeighbors(n_neighbors=det.tree_.n_neighbors, algorithm="ball_tree",
                                   metric=det.tree_.metric).fit(det.X_train_)
    return pyod_score(exact, X)


class TrainingBatchCOF:
    """PyOD's COF kept with its training rows (`X_train_`), so that a new row can be scored within them.

    `detector_` is the fitted pyod.models.cof.COF; decision_function is the frozen score (score_in_training_batch).
    """

    def __init__(self, contamination: float, **params: Any):
        self.contamination = contamination
        self.params = params

    def fit(self, X: np.ndarray, y: Any = None) -> TrainingBatchCOF:
        from pyod.models.cof import COF
        from sklearn.utils import check_array

        X = check_array(X, dtype=np.float64)
        self.detector_ = COF(contamination=self.contamination, **self.params).fit(X)
        self.X_train_ = X
        self.decision_scores_ = self.detector_.decision_scores_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return score_in_training_batch(self, X)


def within_kth(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """bool[len(a), len(b)]: the rows of b within each row of a's k-th smallest distance to them, those equal to it
    included, as scipy's distance_matrix measures; found with cdist (fast, a few ulps apart) and a margin over it."""
    from scipy.spatial.distance import cdist

    dist = cdist(a, b)
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
    return dist <= kth * (1 + 1e-9)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] Euclidean distances as scipy's distance_matrix (PyOD's COF) computes them, bit for bit:
    numpy's sum of squared differences over the features, its square root."""
    return np.sqrt(np.sum((b[None, :, :] - a[:, None, :]) ** 2, axis=-1))


def _cof_of_last(batch: np.ndarray, k: int) -> float:
    """PyOD's COF (pyod/models/cof.py, _cof_fast, expression for expression) of the last row of `batch`, its argsort
    stable; only the row's and its neighbours' average chaining distances are computed, the ones that score reads."""
    dist_matrix = _distances(batch, batch)  # scipy's distance_matrix, bit for bit, without its loop over rows
    neighbor_add1 = k + 1

    def path_and_acd(i: int) -> tuple[np.ndarray, Any]:
        sbn_path = np.argsort(dist_matrix[i], kind="stable")
        cost_desc = [np.min(dist_matrix[sbn_path[j + 1]][sbn_path][: j + 1]) for j in range(k)]
        acd = [((2.0 * (neighbor_add1 - (h + 1))) / (neighbor_add1 * k)) * cost_ for h, cost_ in enumerate(cost_desc)]
        return sbn_path[1 : k + 1], np.sum(acd)

    neighbours, acd_last = path_and_acd(len(batch) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nan_to_num((acd_last * k) / np.sum([path_and_acd(o)[1] for o in neighbours])))


def score_in_training_batch(det: TrainingBatchCOF, X: np.ndarray) -> np.ndarray:
    """PyOD's COF score of each row of X as one more row of the training batch: the last score of PyOD's COF on
    vstack([X_train, row]), with a stable argsort: rows at equal distance are taken in index order (the row last).

    PyOD sorts with numpy's unstable quicksort, whose order of equal distances is unspecified (it changes with
    numpy's sort implementation); with distinct distances the order is the same and so is the score, bit for bit.
    COF(row) = acd(row) * k / sum of acd(o) over the row's k nearest rows o, where acd(p) reads p's k nearest rows
    only: so this runs on the row, its k nearest training rows and each of theirs (those at the k-th distance
    included), in index order, the row last: the same distances, the same order, the same arithmetic.
    """
    from sklearn.exceptions import NotFittedError

    if not hasattr(det, "X_train_"):
        raise NotFittedError("this TrainingBatchCOF is not fitted yet")
    train, k = det.X_train_, det.detector_.n_neighbors_
    X = np.asarray(X, dtype=np.float64)
    out = np.empty(len(X))
    for i, row in enumerate(X):
        near = np.nonzero(within_kth(row[None], train, k)[0])[0]
        part = np.nonzero(within_kth(train[near], train, k + 1).any(axis=0))[0]  # near's own places included
        out[i] = _cof_of_last(np.vstack([train[np.union1d(near, part)], row[None]]), k)
    return out


def _build_cof(p: dict[str, Any], contamination: float) -> Any:
    return TrainingBatchCOF(contamination, **p)


def _build_sod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.sod import SOD

    return SOD(contamination=contamination, n_jobs=1, **p)


_NEAREST = ("The k nearest training rows as in the neighbors family (float64 MatMul distances, group minima + TopK, "
            "the chosen distances recomputed exactly).")

_TIES = ("data where distinct rows are equidistant from a row at its k-th neighbour (integer or grid values): "
         "PyOD's search breaks such ties in its own order, the graph by training index; the export check then "
         "fails and the job is refused.")

_SOD_NOTE = (
    "PyOD's SOD decision_function ignores the fitted training data and rebuilds, within the scored batch, each "
    "row's reference set: the ref_set rows sharing the most of its n_neighbors nearest neighbours. Scored within "
    "the training batch (the frozen meaning), those shared counts are small integers and the ref_set-th place is "
    "nearly always tied (17 of 20 new rows, 300 x 6 N(0, 1) rows, defaults); PyOD breaks the tie by the order "
    "numba's unstable quicksort leaves equal counts in, a function of every training row's count rather than of "
    "distances. The tied rows it picks set the subspace and the score, so no graph can reproduce them."
)

ALGORITHMS = [
    Algorithm(
        name="abod",
        implementation="pyod.models.abod.ABOD",
        description="Angle-Based Outlier Detection (fast ABOD): minus the variance of the weighted cosines "
        "<a - x, b - x> / (|a - x|^2 |b - x|^2) over pairs of the row's k nearest training rows; an outlier sees "
        "its neighbours in one narrow direction.",
        params=(
            Param("n_neighbors", "int", 5, "Neighbours whose pairs of angles are taken, ≥ 3.", _abod_neighbors),
            Param("method", "'fast'", "fast", "'fast': the k nearest training rows only (PyOD's 'default', all "
                  "pairs of training rows, is O(n^3) to fit and not offered).", _abod_method),
            _METRIC,
            _P,
        ),
        build=_build_abod,
        score=pyod_score,
        export_limit="data with a row present n_neighbors - 1 times or more: no pair of other neighbours is left, "
        "PyOD scores it NaN, the converter refuses the model (ADBench annthyroid, breastw, cardio, mammography, "
        "thyroid with the default 5); and " + _TIES,
        export_note=_NEAREST + " Their offsets from the row, their Gram matrix (MatMul), weighted cosines, pairs "
        "with a neighbour equal to the row left out as PyOD does, the variance of the rest: all float64.",
    ),
    Algorithm(
        name="sampling",
        implementation="pyod.models.sampling.Sampling",
        description="Rapid distance-based detection by sampling: the distance to the nearest row of a random "
        "subset of the training rows (drawn once, at fit).",
        params=(
            Param("subset_size", "int | float", 20, "Rows in the subset: a count ≥ 2 (at most the training rows) "
                  "or a fraction in (0, 1] of the training rows.",
                  either(fraction_or_count, what="a fraction in (0, 1] or an integer count ≥ 2")),
            _METRIC,
            Param("random_state", "int | null", None, "Seed; null draws a fresh one.",
                  integer(0, 2**32 - 1, none_ok=True)),
        ),
        build=_build_sampling,
        score=pyod_score,
        export_note="The subset as constants; its nearest row found as KNN's (float64 MatMul, TopK), the distance "
        "recomputed exactly.",
    ),
    Algorithm(
        name="hdbscan",
        implementation="pyod.models.hdbscan.HDBSCAN",
        description="HDBSCAN clustering: a training row scores 1 - its cluster membership probability (noise: 1); "
        "a new row the inverse-distance weighted mean of its k = min_cluster_size nearest training rows' scores.",
        params=(
            Param("min_cluster_size", "int", 5, "Smallest group that forms a cluster, ≥ 2; also the neighbours "
                  "that score a new row.", integer(2, 100_000)),
            Param("min_samples", "int | null", None, "Neighbourhood of a core point, ≥ 1; null: min_cluster_size.",
                  integer(1, 100_000, none_ok=True)),
            Param("metric", "'euclidean'", "euclidean", "Distance; only Euclidean is exported.", _euclidean_only),
            Param("alpha", "float", 1.0, "Distance scaling of robust single linkage, > 0.",
                  _positive),
            Param("algorithm", "'auto' | 'brute' | 'kd_tree' | 'ball_tree'", "auto", "How the clustering computes "
                  "core distances (speed only).", literal("auto", "brute", "kd_tree", "ball_tree")),
            Param("leaf_size", "int", 40, "Leaf size of the clustering's trees, ≥ 1 (speed only).",
                  integer(1, 100_000)),
        ),
        build=_build_hdbscan,
        score=hdbscan_score,
        export_limit=_TIES,
        export_note=_NEAREST + " Training scores as constants; weights 1 / (d + 1e-10), normalised, as PyOD; all "
        "float64. The reference is PyOD's decision_function with exact distances: above 15 features sklearn "
        "searches by brute force, whose distances (off by ~1e-8 next to a training row) the 1e-10 in the weights "
        "turns into score errors of up to ~1e-8.",
    ),
    Algorithm(
        name="cof",
        implementation="pyod.models.cof.COF",
        description="Connectivity-based Outlier Factor: average chaining distance of a row relative to its "
        "neighbours'. A row scores as PyOD scores it as one more row of the training batch.",
        params=(
            Param("n_neighbors", "int", 20, "Neighbours per row, ≥ 2 (PyOD uses one fewer than the training rows "
                  "if it has to).", integer(2, 100_000)),
            Param("method", "'fast' | 'memory'", "fast", "PyOD's implementation at fit: full distance matrix or "
                  "row by row (same scores).", literal("fast", "memory")),
        ),
        build=_build_cof,
        score=score_in_training_batch,
        frozen=True,
        slow_reference=True,
        max_training_rows=COF_MAX_TRAINING_ROWS,
        export_note="Frozen: PyOD's COF ignores the training data (it scores a batch within itself); served, a row "
        "scores as PyOD's COF scores it as the last row of vstack([X_train, row]) (a training row: beside its "
        "copy, at distance 0), rows at equal distance taken in index order (PyOD's unstable argsort leaves them in "
        "an unspecified one). The row's k nearest training rows: a MatMul pool of 2k, re-measured as PyOD measures "
        "(numpy's order of summation, so equal distances stay equal); the training rows' own paths (neighbours, "
        "distances, chaining costs) are constants; the row's chaining distance, and its neighbours' with the row "
        "inserted where it joins their paths, are computed in float64: PyOD's score to rounding (bit for bit below "
        "8 features). Fit: O(n^2 k), so at most "
        f"{COF_MAX_TRAINING_ROWS} training rows.",
    ),
    Algorithm(
        name="sod",
        implementation="pyod.models.sod.SOD",
        description="Subspace Outlier Detection: deviation in the subspace where the row's shared-nearest-"
        "neighbour reference set varies little. Scores are relative to the scored batch (PyOD's behaviour).",
        params=(
            Param("n_neighbors", "int", 20, "Neighbours per row, ≥ 2.", integer(2, 100_000)),
            Param("ref_set", "int", 10, "Shared nearest neighbours forming the reference set, ≥ 2 and fewer than "
                  "n_neighbors.", integer(2, 100_000)),
            Param("alpha", "float", 0.8, "Fraction of the mean variance below which a dimension is relevant, "
                  "in (0, 1).", number(0.0, 1.0, lo_open=True, hi_open=True)),
        ),
        build=_build_sod,
        score=pyod_score,
        exportable=False,
        export_note=_SOD_NOTE,
    ),
]
