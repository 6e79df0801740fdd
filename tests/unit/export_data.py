"""Data builders for the export tests, family by family, shared where families agree.

Each family's `*_train(dataset)` builds its training rows for one data set (normal, float32, integer, shifted,
constant, grid ...) and `*_rows` the rows its graphs are scored on: fresh rows, rows far out, rows exactly on
the detector's decision points. `export_checks.FAMILIES` wires them into the case table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest

from pynomaly import verification


def f32(x: np.ndarray) -> np.ndarray:
    """Rounded to float32 and back, as float32 clients send rows."""
    return x.astype(np.float32).astype(np.float64)


def variant(x: np.ndarray, dataset: str, integer_scale: float = 2.0) -> np.ndarray:
    """float32: x rounded to float32; integer: few distinct values (ties); shifted: far from the origin."""
    if dataset == "float32":
        return f32(x)
    if dataset == "integer":
        return np.round(integer_scale * x)
    if dataset == "shifted":
        return x + 1e3
    return x


def _normal(n_rows: int, n_features: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n_rows, n_features))


def around(train: np.ndarray, fresh: int, far: int, beyond: int, *, centred: bool = False,
           corners: bool = True) -> tuple[np.ndarray, np.random.Generator]:
    """Rows to score: fresh N(0, 1) rows (about the training mean when centred), far rows uniform in ±1e3 (then
    the corners ±1e3), rows up to half a range beyond each feature's bounds; and the generator, for more."""
    rng = np.random.default_rng(2)
    n_features = train.shape[1]
    rows = [rng.normal(size=(fresh, n_features))]
    if centred:
        rows[0] = train.mean(axis=0) + rows[0]
    rows.append(rng.uniform(-1e3, 1e3, size=(far, n_features)))
    if corners:
        rows += [np.full((1, n_features), 1e3), np.full((1, n_features), -1e3)]
    lo, hi = train.min(axis=0), train.max(axis=0)
    rows.append(rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(beyond, n_features)))
    return np.vstack(rows), rng


def steps_either_side(columns: list[np.ndarray], float64_steps: bool = True) -> np.ndarray:
    """Rows of values at and one float64 step either side of each column's critical values, then the same for
    the values rounded to float32 with float32 steps (what float32 clients send), all float64. Without
    `float64_steps`, the float32 values and steps alone."""
    cols = []
    for values in columns:
        v, v32 = np.asarray(values, np.float64), values.astype(np.float32)
        up32, down32 = np.nextafter(v32, np.float32(np.inf)), np.nextafter(v32, np.float32(-np.inf))
        steps = [v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)] if float64_steps else []
        cols.append(np.concatenate([*steps, *(c.astype(np.float64) for c in (v32, up32, down32))]))
    n = max(len(c) for c in cols)
    # A different phase per column, so rows mix values of different rank.
    return np.stack([np.roll(np.resize(c, n), 7 * f) for f, c in enumerate(cols)], axis=1)


def sparse(stride: int, far: range) -> Callable[[int], np.ndarray]:
    """Rows to score alone: every `stride`-th, plus the far rows."""
    return lambda n: np.r_[np.arange(0, n, stride), np.asarray(far)]


# --- forest & histogram (pyod IForest, sklearn IsolationForest, HBOS) ---

FOREST_FEATURES = 6


def forest_train(dataset: str) -> np.ndarray:
    # Integer values sit exactly on training values, bin edges and (often) the edges' float32 neighbours.
    return variant(_normal(500, FOREST_FEATURES), dataset, integer_scale=3)


def _critical_values(det: Any) -> list[np.ndarray]:
    """Per feature, float64 values where native decisions flip: split thresholds, bin edges, tol bounds."""
    if isinstance(det, HBOS):
        if isinstance(det.hist_, list):
            edges = [np.asarray(e) for e in det.bin_edges_]
        else:
            edges = list(np.asarray(det.bin_edges_).T)
        return [
            np.concatenate([e, [e[0] - (e[1] - e[0]) * det.tol, e[-1] + (e[-1] - e[-2]) * det.tol]])
            for e in edges
        ]
    forest = det.detector_ if isinstance(det, IForest) else det
    thresholds = np.concatenate([t.tree_.threshold[t.tree_.children_left >= 0] for t in forest.estimators_])
    # Every threshold in every column: no need to know which feature a tree split on.
    sample = np.random.default_rng(1).choice(thresholds, size=min(3000, thresholds.size), replace=False)
    return [sample] * FOREST_FEATURES


def forest_rows(train: np.ndarray, dataset: str, det: Any) -> np.ndarray:
    rng = np.random.default_rng(2)
    fresh = rng.normal(size=(100, FOREST_FEATURES))
    far = rng.uniform(-50, 50, size=(20, FOREST_FEATURES))
    if dataset == "integer":
        fresh, far = np.round(3 * fresh), np.round(far)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo
    # Overshoots below/above the training range from on-the-edge to far beyond: each HBOS config's
    # tolerance (tol * bin width) falls between two of these.
    fracs = np.array([0.0, 1e-3, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.3, 1.0])[:, None]
    edge_rows = np.vstack([lo - fracs * span, hi + fracs * span])
    mixed = np.where(np.arange(FOREST_FEATURES) % 2 == 0, lo - 0.01 * span, hi + 0.5 * span)
    rows = np.vstack([fresh, train[:30], far, edge_rows, mixed[None]])
    return np.vstack([rows, steps_either_side(_critical_values(det))]).astype(np.float64)


def forest_picked(n: int) -> np.ndarray:
    # Sparse over the fresh rows, all far/edge rows (100:200), spread over the boundary rows.
    picked = np.r_[np.arange(0, 100, 10), np.arange(100, 200), np.linspace(200, n - 1, 40).astype(int)]
    return np.unique(picked[picked < n])


# --- ecdf (ECOD, COPOD) ---

ECDF_FEATURES = 4
ECDF_TRAIN_ROWS = 200


def ecdf_train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ECDF_TRAIN_ROWS, ECDF_FEATURES))
    if dataset == "symmetric":
        x = rng.integers(-2, 3, size=(ECDF_TRAIN_ROWS, ECDF_FEATURES)).astype(np.float64)
        x[:, 0] = np.resize([-1.0, 0.0, 1.0], ECDF_TRAIN_ROWS)
        x[:, 1] = np.resize([1.0, 2.0, 3.0, 3.0, 2.0, 1.0], ECDF_TRAIN_ROWS)
    elif dataset == "constant":
        x[:, 1] = 0.5  # float32-exact: a row can equal it, making the column constant (scipy's skew: NaN -> 0)
        x[:, 2] = np.resize([0.0, 1.0], ECDF_TRAIN_ROWS)
        x[:, 3] = 0.1  # not float32-exact: no row equals it
    elif dataset == "skewed":
        x = 1e4 + 100 * rng.exponential(size=(ECDF_TRAIN_ROWS, ECDF_FEATURES))
    return variant(x, dataset, integer_scale=3)


def _skew_roots(col: np.ndarray) -> np.ndarray:
    """Real x where the skewness of concat(col, x) changes sign (roots of m^3 * m3 as a cubic in x)."""
    m = len(col) + 1
    s1, s2, s3 = col.sum(), (col**2).sum(), (col**3).sum()
    coeffs = [m * m - 3 * m + 2, (6 - 3 * m) * s1, 6 * s1 * s1 - 3 * m * s2, m * m * s3 - 3 * m * s1 * s2 + 2 * s1**3]
    roots = np.roots(coeffs)
    return roots[np.abs(roots.imag) < 1e-6 * (1 + np.abs(roots.real))].real


def ecdf_rows(train: np.ndarray) -> np.ndarray:
    """Around the data, ties with integer data, ±1e3, then per column each training value and one float64 step
    either side (and the same rounded to float32, float32 steps), and each skewness sign change (float32 steps)."""
    rng = np.random.default_rng(2)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo + 1.0
    fresh = rng.uniform(lo - span / 2, hi + span / 2, size=(60, ECDF_FEATURES))
    whole = np.round(rng.uniform(lo - 2, hi + 2, size=(40, ECDF_FEATURES)))  # ties with integer training data
    far = np.array([[1e3] * ECDF_FEATURES, [-1e3] * ECDF_FEATURES, [1e3, -1e3] * (ECDF_FEATURES // 2)])
    steps = steps_either_side([np.unique(c) for c in train.T])
    # Around a root of the skewness, float32 steps only: a float64 step from it leaves the third moment within
    # scipy's rounding noise of 0, where PyOD's sign is noise (the graph takes the exact sign).
    roots = steps_either_side([_skew_roots(c) for c in train.T], float64_steps=False)
    steps = np.vstack([steps, roots]) if len(roots) else steps
    return np.vstack([fresh, whole, far, train[:20], lo[None], hi[None], steps]).astype(np.float64)


# --- linear (PCA) ---


def pca_train(n_features: int, dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.5, 5.0, n_features)
    x = rng.normal(size=(300, n_features)) * scales
    if n_features > 1:
        x[:, 1] += 0.8 * x[:, 0]  # correlated: components are not the axes
    return variant(x, dataset, integer_scale=1)  # shifted: standardization cancels a large mean


def pca_rows(train: np.ndarray, det: Any) -> np.ndarray:
    rng = np.random.default_rng(2)
    n_features = train.shape[1]
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(80, n_features))
    far = np.vstack([np.full(n_features, 1e3), np.full(n_features, -1e3), rng.uniform(-1e3, 1e3, (5, n_features))])
    # Rows on the scored component points (in the standardized space): distances near 0.
    on_components = det.selected_components_
    if det.standardization:
        on_components = on_components * det.scaler_.scale_ + det.scaler_.mean_
    return np.vstack([train[:60], beyond, far, on_components]).astype(np.float64)


# --- neighbors (KNN, LOF, sklearn LOF, KDE, INNE) ---


def neighbors_train(dataset: str) -> np.ndarray:
    if dataset == "wide":
        return _normal(300, 20)
    x = _normal(300, 6)
    if dataset == "duplicates":
        x = f32(x)
        return np.vstack([x[:200], np.repeat(x[:4], 25, axis=0)])
    return variant(x, dataset)


def neighbors_rows(train: np.ndarray) -> np.ndarray:
    rows, rng = around(train, fresh=120, far=10, beyond=60)
    near = train[:20] + 1e-4 * rng.normal(size=(20, train.shape[1]))
    # Every training row: equal to the training set's points (and to INNE's centres).
    return np.vstack([rows, near, train]).astype(np.float64)


# --- cluster (CBLOF) ---


def cluster_train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    n_features = 20 if dataset == "wide" else 5
    # One dense mass plus a small far group, so that small clusters exist.
    return variant(np.vstack([rng.normal(size=(400, n_features)), rng.normal(size=(25, n_features)) * 0.5 + 6]),
                   dataset)


def cluster_rows(train: np.ndarray) -> np.ndarray:
    rows, _ = around(train, fresh=100, far=10, beyond=60, corners=False)
    return np.vstack([rows, train]).astype(np.float64)


# --- covariance (MCD, EllipticEnvelope, GMM) ---

COVARIANCE_FEATURES = 5


def covariance_train(dataset: str) -> np.ndarray:
    x = _normal(300, COVARIANCE_FEATURES) * [1.0, 2.0, 0.5, 1.0, 3.0]
    x[:, 1] += 0.8 * x[:, 0]  # correlated features: a non-diagonal covariance
    return variant(x, dataset)


def centred_rows(train: np.ndarray, n_train: int = 60) -> np.ndarray:
    """Around the training mean, far, beyond the bounds, then the first training rows (covariance, svm)."""
    rows, _ = around(train, fresh=100, far=10, beyond=50, centred=True)
    return np.vstack([rows, train[:n_train]]).astype(np.float64)


# --- svm (OCSVM, sklearn OneClassSVM, SGDOneClassSVM) ---

SVM_FEATURES = 6


def svm_train(dataset: str) -> np.ndarray:
    x = _normal(300, SVM_FEATURES)
    return f32(x + 500.0) if dataset == "shifted" else variant(x, dataset)


# --- ensemble (LODA, FeatureBagging, SUOD) ---

ENSEMBLE_FEATURES = 6


def ensemble_train(dataset: str) -> np.ndarray:
    x = _normal(240, ENSEMBLE_FEATURES)
    if dataset == "grid":
        grid = np.clip(np.round(2 * x[:120]) / 2, -1, 1)
        return np.vstack([grid, -grid])
    return variant(x, dataset)


def ensemble_rows(train: np.ndarray) -> np.ndarray:
    rows, _ = around(train, fresh=60, far=8, beyond=40)
    return np.vstack([rows, train]).astype(np.float64)


# --- deep (AutoEncoder, VAE, DeepSVDD) ---

DEEP_FEATURES = 6


def pyod_deep_svdd() -> Any:
    """PyOD's DeepSVDD itself, as a user would fit it (the registry's "deep_svdd" wraps it, seeded)."""
    from pyod.models.deep_svdd import DeepSVDD

    return DeepSVDD(n_features=DEEP_FEATURES, epochs=3, random_state=0, verbose=0)


def deep_train(dataset: str) -> np.ndarray:
    x = _normal(240, DEEP_FEATURES)
    if dataset == "constant":
        x[:, 2] = 3.5  # std 0: PyOD divides by std + 1e-8
    return x


def deep_rows(train: np.ndarray) -> np.ndarray:
    rows, _ = around(train, fresh=50, far=20, beyond=0)
    return np.vstack([verification.verification_rows(train), rows]).astype(np.float64)


def far_labels(X: np.ndarray, share: float = 0.1) -> np.ndarray:
    """0/1 labels for detectors that learn from them: 1 for the `share` of rows farthest from the mean."""
    distance = np.linalg.norm(X - X.mean(axis=0), axis=1)
    return (distance >= np.quantile(distance, 1 - share)).astype(np.int64)
