"""PyOD MAD, KPCA, QMCD and CD (frozen) as float64 graphs; see algorithms/statistical.py for what each serves.

Each graph computes PyOD's own expressions in PyOD's order of operations on the float64 row, with the fitted
statistics as constants: MAD's median and MAD; QMCD's min-max scaler, scaled training rows and flip; KPCA's
training rows, kernel centring and scaled eigenvectors; CD's training rows, regressions and leverages. QMCD, KPCA
and CD score each row against every training row: they run in a Loop over blocks of rows (neighbors.py), sized
so that a block's [rows, training rows, features] intermediates stay near 2^19 doubles. Each row is computed from
its own values only, so a row scores alike alone and in any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from ._graph import INPUT_NAME, OUTPUT_NAME, make_model
from .neighbors import _Graph, _in_row_blocks

# A block's widest intermediate ([rows, training rows, features] for QMCD and CD), in doubles.
_BLOCK_ELEMENTS = 1 << 19
_F64_MAX = float(np.finfo(np.float64).max)
# KPCA: eigenvalues at or below EIGEN_RTOL x training rows x the largest are rounding level of the eigensolver;
# training scores within ROUNDING_SCORES of the kernel's scale (its mean squared distance to the centre) are noise.
EIGEN_RTOL = 100 * float(np.finfo(np.float64).eps)
ROUNDING_SCORES = 1e-9
# Training scores closer than NEAR_TIE_RTOL x the terms PyOD sums into them (the graph's error against PyOD is of
# that order: 1.3e-12 on ADBench pima) are ordered by rounding; a fit with more than NEAR_TIE_SHARE of its rows in
# such near-ties is refused (ADBench, defaults: pima 24 %, satellite 30 %; annthyroid 0.8 %, the rest less).
NEAR_TIE_RTOL, NEAR_TIE_SHARE = 1e-12, 0.05


def _block_rows(width: int) -> int:
    return int(np.clip(_BLOCK_ELEMENTS // max(width, 1), 1, 32))


def _fitted_width(n_fitted: int, n_features: int, what: str) -> None:
    if n_features != n_fitted:
        raise ValueError(f"n_features={n_features} but {what} was fitted on {n_fitted} features")


def _served(g: _Graph, score_block: Callable[[_Graph, str], str], n_features: int, name: str, rows: int,
            nan_to: float = np.inf) -> onnx.ModelProto:
    """X -> double rows -> blocks of `rows` rows -> NaN as `nan_to`, ±inf as ±float64 max -> anomaly_score.

    Only where PyOD itself overflows (inf, or inf - inf) does the served score differ from it; finite scores beyond
    float32's range (a poly kernel of a huge row) are served as they are. The final Cast to float is dropped by
    double_io: the float64 score is served."""
    x64 = g.op("Cast", [INPUT_NAME], to=TensorProto.DOUBLE)
    score = _in_row_blocks(g, x64, score_block, rows)
    score = g.op("Where", [g.op("IsNaN", [score]), g.const(nan_to), score])
    clipped = g.op("Clip", [score, g.const(-_F64_MAX), g.const(_F64_MAX)])
    g.nodes.append(helper.make_node("Cast", [clipped], [OUTPUT_NAME], to=TensorProto.FLOAT))
    return make_model(g.nodes, g.inits, n_features, name)


# --- MAD ---


def mad_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """nan_to_num(0.6745 * |x - median| / MAD), PyOD's _mad with the fitted median_ and median_diff_."""
    check_is_fitted(det, ["decision_scores_", "median_", "median_diff_"])
    _fitted_width(1, n_features, "MAD")
    median, mad = float(det.median_), float(det.median_diff_)
    if not (np.isfinite(median) and np.isfinite(mad)):
        raise ValueError("MAD's median or median absolute deviation is not finite")
    if mad == 0.0:
        raise ValueError("the training values' median absolute deviation is 0 (over half of them equal the median "
                         f"{median:g}): PyOD scores every other value inf (1.8e308), nothing a threshold can use")
    g = _Graph()
    x = g.op("Cast", [INPUT_NAME], to=TensorProto.DOUBLE)
    diff = g.op("Abs", [g.op("Sub", [x, g.const(median)])])
    z = g.op("Div", [g.op("Mul", [g.const(0.6745), diff]), g.const(mad)])
    # nan_to_num: no NaN can arise (mad > 0, finite rows); +inf (a huge row over a tiny MAD) -> the float64 maximum.
    z = g.op("Min", [z, g.const(_F64_MAX)])
    score = g.op("Reshape", [z, g.const([-1], np.int64)])
    g.nodes.append(helper.make_node("Cast", [score], [OUTPUT_NAME], to=TensorProto.FLOAT))
    return make_model(g.nodes, g.inits, n_features, "mad")


# --- QMCD ---


def qmcd_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """-(4/3)^d + 1/n^2 sum_t prod_k (3/2 - a + a^2), a = |scaled x_k - t_k|, flipped as at fit (PyOD's
    _wrap_around_discrepancy of the scaled row against the scaled training rows)."""
    check_is_fitted(det, ["decision_scores_", "_fitted_data", "_scaler"])
    train = np.asarray(det._fitted_data, np.float64)
    n, d = train.shape
    _fitted_width(d, n_features, "QMCD")
    scaler = det._scaler
    if scaler.clip:
        raise ValueError("QMCD's scaler clips; PyOD's does not")
    scores = np.asarray(det.decision_scores_, np.float64)
    g = _Graph()
    scale, shift, points = g.const(scaler.scale_, hint="scale"), g.const(scaler.min_, hint="min"), g.const(train)
    offset, per_pair = g.const(-((4.0 / 3.0) ** d)), g.const(1.0 / (n**2))
    flip = g.const(scores.max() + scores.min()) if det._is_flipped else None

    def score(b: _Graph, x: str) -> str:
        scaled = b.op("Add", [b.op("Mul", [x, scale]), shift])  # MinMaxScaler.transform: X *= scale_; X += min_
        a = b.op("Abs", [b.op("Sub", [b.op("Unsqueeze", [scaled, b.axes(1)]), points])])  # [rows, n, d]
        # a is finite (MinMaxScaler's scale is at most 1 / (10 eps)), so no NaN; the product may overflow to inf, as
        # PyOD's does (served as ±float64 max).
        term = b.op("Add", [b.op("Sub", [b.const(1.5), a]), b.op("Mul", [a, a])])
        disc = b.op("ReduceSum", [b.op("ReduceProd", [term, b.axes(2)], keepdims=0), b.axes(1)], keepdims=0)
        raw = b.op("Add", [offset, b.op("Mul", [per_pair, disc])])
        return raw if flip is None else b.op("Sub", [flip, raw])

    return _served(g, score, n_features, "qmcd", _block_rows(n * d))


# --- KPCA ---


def _kernel(b: _Graph, kpca: Any, x: str, points_t: str | None) -> str:
    """pairwise_kernels(x, X_fit_) ([rows, n], points_t = the kernel's transposed training rows) or, without
    points_t, the kernel of each row with itself ([rows]), as scikit-learn computes them."""
    kind, gamma = kpca.kernel, float(kpca.gamma_)
    if kind == "cosine":
        norms = b.op("Sqrt", [b.op("ReduceSumSquare", [x, b.axes(1)], keepdims=1)])  # row_norms
        tiny = b.op("Less", [norms, b.const(10 * np.finfo(np.float64).eps)])  # _handle_zeros_in_scale
        x = b.op("Div", [x, b.op("Where", [tiny, b.const(1.0), norms])])
    if points_t is None:
        dot = b.op("ReduceSumSquare", [x, b.axes(1)], keepdims=0)
    else:
        dot = b.op("MatMul", [x, points_t])
    if kind in ("linear", "cosine"):
        return dot
    if kind == "rbf":
        if points_t is None:
            return b.op("Expand", [b.const(1.0), b.op("Shape", [dot])])  # distance 0 on the diagonal, exp(0)
        xx = b.op("ReduceSumSquare", [x, b.axes(1)], keepdims=1)
        yy = b.const(np.einsum("ij,ij->i", kpca.X_fit_, kpca.X_fit_), hint="yy")  # row_norms(X_fit_, squared)
        dist = b.op("Add", [b.op("Add", [b.op("Mul", [dot, b.const(-2.0)]), xx]), yy])
        dist = b.op("Max", [dist, b.const(0.0)])
        return b.op("Exp", [b.op("Mul", [dist, b.const(-gamma)])])
    linear = b.op("Add", [b.op("Mul", [dot, b.const(gamma)]), b.const(float(kpca.coef0))])
    if kind == "poly":
        return b.op("Pow", [linear, b.const(float(kpca.degree))])
    return b.op("Tanh", [linear])  # sigmoid


def _self_kernel(kpca: Any, X: np.ndarray) -> np.ndarray:
    """k(x, x) per row (approximately as sklearn computes it: only a scale is taken from it)."""
    sq = np.einsum("ij,ij->i", X, X)
    if kpca.kernel == "rbf":
        return np.ones(len(X))
    if kpca.kernel == "cosine":
        return (sq > 0).astype(np.float64)
    if kpca.kernel == "linear":
        return sq
    linear = kpca.gamma_ * sq + kpca.coef0
    return linear**kpca.degree if kpca.kernel == "poly" else np.tanh(linear)


def _kpca_servable(det: Any, values: np.ndarray, kept: np.ndarray) -> None:
    """Refuse fits whose PyOD scores are rounding noise (ValueError, saying which parameter to change)."""
    largest = float(values.max(initial=0.0))
    noise = values[kept] <= EIGEN_RTOL * len(values) * largest
    if largest <= 0 or noise.any():
        rank = int(np.sum(values > EIGEN_RTOL * len(values) * largest))
        raise ValueError(
            f"{int(noise.sum())} of the {len(kept)} kept components have rounding-level eigenvalues (the training "
            f"kernel has numerical rank {rank}): PyOD divides by their square roots, so its scores are noise; "
            f"set n_components (or n_selected_components) to at most {rank}")
    scale = float(np.mean(_self_kernel(det.kpca, det.kpca.X_fit_)) - det.kpca._centerer.K_fit_all_)
    worst = float(np.max(np.abs(det.decision_scores_)))
    if worst <= ROUNDING_SCORES * abs(scale):
        raise ValueError(
            f"PyOD's training scores are rounding noise (|score| ≤ {worst:.1e} for a kernel scale of {scale:.1e}): "
            f"the {len(kept)} kept components reconstruct every training row up to rounding (n_components=null keeps "
            "one per training row; a linear or cosine kernel has rank ≤ features), so no threshold can be set from "
            "them; keep fewer components (n_components), or centre data far from the origin")
    train = np.asarray(det.kpca.X_fit_, np.float64)
    # The terms PyOD adds up per training row (k(x, x), 2 mean_t k(x, t), mean K): their rounding is the score's.
    centerer = det.kpca._centerer
    terms = np.abs(_self_kernel(det.kpca, train)) + 2 * np.abs(centerer.K_fit_rows_) + abs(centerer.K_fit_all_)
    share = _near_tie_share(np.asarray(det.decision_scores_, np.float64), terms, train)
    if share > NEAR_TIE_SHARE:
        raise ValueError(
            f"{share:.0%} of PyOD's training scores differ from another row's by less than {NEAR_TIE_RTOL:g} of the "
            "terms PyOD sums into them: their order is rounding noise, in PyOD as in any float64 computation, so "
            "neither their ranking nor a threshold among them can be reproduced (an rbf kernel too narrow for the "
            "features' scale leaves most rows isolated, scored alike); scale the features or lower gamma")


def _near_tie_share(scores: np.ndarray, terms: np.ndarray, X: np.ndarray) -> float:
    """Share of rows whose score is within NEAR_TIE_RTOL x its terms' magnitude of another, different row's, but
    not equal (equal scores tie alike in any computation; duplicate rows score alike)."""
    order = np.argsort(scores, kind="stable")
    ranked, size = scores[order], terms[order]
    gap = np.diff(ranked)
    near = ((gap > 0) & (gap <= NEAR_TIE_RTOL * np.maximum(size[1:], size[:-1]))
            & np.any(X[order[1:]] != X[order[:-1]], axis=1))
    rows = np.zeros(len(ranked), bool)
    rows[1:] |= near
    rows[:-1] |= near
    return float(rows.mean())


def kpca_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD KPCA.decision_function: k(x, x) - 2 mean_t k(x, t) + K_fit_all_ - |centred k(x, .) @ scaled alphas|^2."""
    check_is_fitted(det, ["decision_scores_", "kpca"])
    kpca = det.kpca
    check_is_fitted(kpca, ["X_fit_", "eigenvectors_"])
    if kpca.kernel not in ("rbf", "poly", "sigmoid", "linear", "cosine"):
        raise ValueError(f"kernel {kpca.kernel!r} is not exported (rbf, poly, sigmoid, linear, cosine are)")
    train = np.asarray(kpca.X_fit_, np.float64)
    n, d = train.shape
    _fitted_width(d, n_features, "KPCA")
    # sklearn's transform: eigenvectors over sqrt(eigenvalues), zero columns for zero eigenvalues; PyOD keeps the
    # first n_selected_components_ columns of the projection.
    values, vectors = np.asarray(kpca.eigenvalues_, np.float64), np.asarray(kpca.eigenvectors_, np.float64)
    alphas = np.zeros_like(vectors)
    nz = np.flatnonzero(values)
    alphas[:, nz] = vectors[:, nz] / np.sqrt(values[nz])
    alphas = alphas[:, : det.n_selected_components_]
    _kpca_servable(det, values, nz[nz < alphas.shape[1]])
    centerer = kpca._centerer
    g = _Graph()
    points_t = g.const((normalize(train) if kpca.kernel == "cosine" else train).T, hint="points_t")
    fit_rows, fit_all = g.const(centerer.K_fit_rows_, hint="k_fit_rows"), g.const(float(centerer.K_fit_all_))
    w = g.const(alphas, hint="alphas")

    def score(b: _Graph, x: str) -> str:
        k = _kernel(b, kpca, x, points_t)
        mean = b.op("Div", [b.op("ReduceSum", [k, b.axes(1)], keepdims=1), b.const(float(n))])
        centred = b.op("Add", [b.op("Sub", [b.op("Sub", [k, fit_rows]), mean]), fit_all])  # KernelCenterer
        sq = b.op("ReduceSumSquare", [b.op("MatMul", [centred, w]), b.axes(1)], keepdims=0)
        potential = _kernel(b, kpca, x, None)
        mean = b.op("Squeeze", [mean, b.axes(1)])
        return b.op("Sub", [b.op("Add", [b.op("Sub", [potential, b.op("Mul", [b.const(2.0), mean])]), fit_all]), sq])

    return _served(g, score, n_features, "kpca", _block_rows(n + alphas.shape[1]))


# --- CD (frozen: the row scored within the training rows) ---


def cd_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD's CD score of the row within the training rows: per column j, the regression of j on the others as
    fitted; the stacked leverages by a rank-one update of the training ones; the normalised Cook's distance of the
    row among the n + 1 rows; the mean over columns of the non-NaN ones (see algorithms/statistical.py)."""
    check_is_fitted(det, ["decision_scores_", "_models", "X_train_"])
    train = np.asarray(det.X_train_, np.float64)
    n, d = train.shape
    _fitted_width(d, n_features, "CD")
    if d < 2:
        raise ValueError("CD needs at least 2 features (each is regressed on the others)")
    if n <= d:
        raise ValueError(f"CD needs more training rows than features, got {n} rows of {d}")
    if d * d * d + 3 * n * d > (1 << 27):
        raise ValueError(f"{n} training rows of {d} features need over 1 GiB of graph constants (train on fewer)")
    inverse = np.zeros((d, d, d))  # [j]: (A_j' A_j)^+ on the other columns, zero in row and column j
    coef, intercept = np.zeros((d, d)), np.zeros(d)
    leverage, residual2 = np.empty((d, n)), np.empty((d, n))
    for j, model in enumerate(det._models):
        others = np.delete(np.arange(d), j)
        a = train[:, others]
        if not hasattr(model, "coef_") or np.ndim(model.coef_) != 1:
            raise ValueError("only CD's default regression (a fitted LinearRegression) is exported")
        pinv = np.linalg.pinv(a)
        inverse[j][np.ix_(others, others)] = pinv @ pinv.T
        leverage[j] = (a * pinv.T).sum(1)  # PyOD's own leverage expression, on the training rows alone
        residual2[j] = (train[:, j] - model.predict(a)) ** 2
        coef[j, others], intercept[j] = model.coef_, model.intercept_
    g = _Graph()
    # W[r, j, :] = inverse[j] @ x_r: one MatMul of the row against [d, d * d] (inverse[j] is symmetric).
    inv_c = g.const(inverse.transpose(2, 0, 1).reshape(d, d * d), hint="inverse")
    points_t, lev, res2 = g.const(train.T, hint="points_t"), g.const(leverage, hint="lev"), g.const(residual2)
    coef_t, icpt = g.const(coef.T, hint="coef_t"), g.const(intercept, hint="intercept")
    one = g.const(1.0)

    def score(b: _Graph, x: str) -> str:
        w = b.op("Reshape", [b.op("MatMul", [x, inv_c]), b.const([-1, d, d], np.int64)])
        q = b.op("ReduceSum", [b.op("Mul", [w, b.op("Unsqueeze", [x, b.axes(1)])]), b.axes(2)], keepdims=0)
        u = b.op("MatMul", [w, points_t])  # [rows, d, n]: a_t' (A'A)^-1 a per training row t
        one_q = b.op("Add", [one, q])
        h = b.op("Sub", [lev, b.op("Div", [b.op("Mul", [u, u]), b.op("Unsqueeze", [one_q, b.axes(2)])])])
        g_train = b.op("Div", [b.op("Mul", [res2, h]), b.op("Pow", [b.op("Sub", [one, h]), b.const(2.0)])])
        r = b.op("Sub", [x, b.op("Add", [b.op("MatMul", [x, coef_t]), icpt])])  # y - model.predict(others)
        g_row = b.op("Mul", [b.op("Mul", [b.op("Mul", [r, r]), q]), one_q])  # r^2 h / (1 - h)^2, h = q / (1 + q)
        lo = b.op("Min", [b.op("ReduceMin", [g_train, b.axes(2)], keepdims=0), g_row])
        hi = b.op("Max", [b.op("ReduceMax", [g_train, b.axes(2)], keepdims=0), g_row])
        norm = b.op("Div", [b.op("Sub", [g_row, lo]), b.op("Sub", [hi, lo])])  # NaN where all n + 1 are equal
        valid = b.op("Not", [b.op("IsNaN", [norm])])
        total = b.op("ReduceSum", [b.op("Where", [valid, norm, b.const(0.0)]), b.axes(1)], keepdims=0)
        count = b.op("ReduceSum", [b.op("Cast", [valid], to=TensorProto.DOUBLE), b.axes(1)], keepdims=0)
        return b.op("Div", [total, count])  # nanmean: NaN when every column is

    return _served(g, score, n_features, "cd", _block_rows(n * d))


CONVERTERS = {
    "pyod.models.mad.MAD": mad_to_onnx,
    "pyod.models.qmcd.QMCD": qmcd_to_onnx,
    "pyod.models.kpca.KPCA": kpca_to_onnx,
    "pynomaly.algorithms._cooks.CD": cd_to_onnx,
}
