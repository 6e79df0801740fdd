"""Gaussian models as small float64 graphs: PyOD MCD, scikit-learn EllipticEnvelope, PyOD GMM.

MCD (pyod 3.6.7 models/mcd.py) scores MinCovDet.mahalanobis(X) = (x - location_) P (x - location_)ᵀ with
P = get_precision() (precision_, or pinvh(covariance_) when it is not stored). EllipticEnvelope's
-decision_function is the same distance + offset_. skl2onnx has no converter for either; the graph is
Sub, MatMul, Mul, ReduceSum in float64 (the served inputs are float32, cast to float64 as the native scorer sees
them).

GMM scores -GaussianMixture.score_samples(X) = -logsumexp_k(log N(x | μ_k, Σ_k) + log w_k). The per-component
squared distances follow scikit-learn's formulas for each covariance type (sklearn 1.9 mixture/
_gaussian_mixture.py, _estimate_log_gaussian_prob), all components in one MatMul; the log-sum-exp subtracts the
row maximum first, like scipy's. Written by hand in float64 rather than through skl2onnx, which refuses float64
with an explicit opset and would bring its own opset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.utils.validation import check_is_fitted

from ._graph import INPUT_NAME, clipped_output, const, make_model


def _check_width(n_features: int, fitted: int, what: str) -> None:
    if n_features != fitted:
        raise ValueError(f"n_features={n_features} but the {what} was fitted on {fitted}")


def _mahalanobis_model(location: np.ndarray, precision: np.ndarray, offset: float, n_features: int,
                       name: str) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Sub", ["x64", "location"], ["centered"]),
        helper.make_node("MatMul", ["centered", "precision"], ["projected"]),
        helper.make_node("Mul", ["projected", "centered"], ["terms"]),
        helper.make_node("ReduceSum", ["terms", "axis1"], ["dist"], keepdims=0),
    ]
    inits = [
        const("location", location),
        const("precision", precision),
        const("axis1", [1], np.int64),
    ]
    last = "dist"
    if offset != 0.0:
        nodes.append(helper.make_node("Add", ["dist", "offset"], ["shifted"]))
        inits.append(const("offset", offset))
        last = "shifted"
    out_nodes, out_inits = clipped_output(last)
    return make_model(nodes + out_nodes, inits + out_inits, n_features, name)


def _min_cov_det(cov: Any, n_features: int, offset: float, name: str) -> onnx.ModelProto:
    check_is_fitted(cov, ["location_", "covariance_"])
    _check_width(n_features, cov.location_.shape[0], "covariance model")
    precision = np.asarray(cov.get_precision(), np.float64)
    return _mahalanobis_model(np.asarray(cov.location_, np.float64), precision, offset, n_features, name)


def mcd_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD MCD's decision_function (squared Mahalanobis distance)."""
    check_is_fitted(det, ["detector_", "threshold_"])
    return _min_cov_det(det.detector_, n_features, 0.0, "mcd")


def elliptic_envelope_to_onnx(est: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals -EllipticEnvelope.decision_function = distance + offset_."""
    check_is_fitted(est, ["offset_"])
    return _min_cov_det(est, n_features, float(est.offset_), "elliptic_envelope")


def _squared_distances(gm: Any) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing "sq": double[N, K], each row's squared Mahalanobis distance to each component."""
    means = np.asarray(gm.means_, np.float64)
    chol = np.asarray(gm.precisions_cholesky_, np.float64)
    k, f = means.shape
    kind = gm.covariance_type
    if kind in ("full", "tied"):
        # y_k = X U_k - μ_k U_k; all components side by side: X [U_1 .. U_K] - [μ_1 U_1 .. μ_K U_K].
        chols = chol if kind == "full" else np.broadcast_to(chol, (k, f, f))
        weights = np.concatenate(list(chols), axis=1)  # [F, K*F]
        shifts = np.concatenate([means[i] @ chols[i] for i in range(k)])
        nodes = [
            helper.make_node("MatMul", ["x64", "gm_w"], ["xu"]),
            helper.make_node("Sub", ["xu", "gm_shift"], ["y"]),
            helper.make_node("Reshape", ["y", "gm_nkf"], ["y3"]),
            helper.make_node("Mul", ["y3", "y3"], ["y2"]),
            helper.make_node("ReduceSum", ["y2", "axis2"], ["sq"], keepdims=0),
        ]
        inits = [const("gm_w", weights), const("gm_shift", shifts), const("gm_nkf", [-1, k, f], np.int64),
                 const("axis2", [2], np.int64)]
        return nodes, inits
    if kind not in ("diag", "spherical"):
        raise ValueError(f"unsupported covariance_type {kind!r}")
    precisions = chol**2
    if kind == "diag":
        # sum(μ² p) - 2 X (μ p)ᵀ + X² pᵀ, in scikit-learn's order.
        const_term = np.sum(means**2 * precisions, axis=1)
        cross = (means * precisions).T
        square_w = precisions.T
    else:
        # sum(μ²) p - 2 (X μᵀ) p + |x|² p
        const_term = np.sum(means**2, axis=1) * precisions
        cross = means.T * precisions
        square_w = np.broadcast_to(precisions, (f, k)).copy()
    nodes = [
        helper.make_node("MatMul", ["x64", "gm_cross"], ["xc"]),
        helper.make_node("Mul", ["xc", "two"], ["xc2"]),
        helper.make_node("Sub", ["gm_const", "xc2"], ["partial"]),
        helper.make_node("Mul", ["x64", "x64"], ["xsq"]),
        helper.make_node("MatMul", ["xsq", "gm_sqw"], ["xsq_w"]),
        helper.make_node("Add", ["partial", "xsq_w"], ["sq"]),
    ]
    inits = [const("gm_cross", cross), const("two", 2.0), const("gm_const", const_term), const("gm_sqw", square_w)]
    return nodes, inits


def _log_det_cholesky(gm: Any, n_features: int) -> np.ndarray:
    chol = np.asarray(gm.precisions_cholesky_, np.float64)
    k = len(gm.means_)
    if gm.covariance_type == "full":
        return np.sum(np.log(chol.reshape(k, -1)[:, :: n_features + 1]), axis=1)
    if gm.covariance_type == "tied":
        return np.full(k, np.sum(np.log(np.diag(chol))))
    if gm.covariance_type == "diag":
        return np.sum(np.log(chol), axis=1)
    return n_features * np.log(chol)


def gmm_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD GMM's decision_function = -GaussianMixture.score_samples."""
    check_is_fitted(det, ["detector_", "threshold_"])
    gm = det.detector_
    _check_width(n_features, gm.means_.shape[1], "mixture")
    dist_nodes, inits = _squared_distances(gm)
    # weighted log-prob_k = -0.5 * sq_k + (log det_k - 0.5 F log 2π + log w_k)
    bias = _log_det_cholesky(gm, n_features) - 0.5 * n_features * math.log(2 * math.pi) + np.log(gm.weights_)
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        *dist_nodes,
        helper.make_node("Mul", ["sq", "minus_half"], ["half_sq"]),
        helper.make_node("Add", ["half_sq", "gm_bias"], ["logp"]),
        # -logsumexp = -(m + log Σ exp(logp - m)), m the row maximum (keeps far rows finite).
        helper.make_node("ReduceMax", ["logp", "axis1"], ["m"], keepdims=1),
        helper.make_node("Sub", ["logp", "m"], ["centered"]),
        helper.make_node("Exp", ["centered"], ["e"]),
        helper.make_node("ReduceSum", ["e", "axis1"], ["s"], keepdims=1),
        helper.make_node("Log", ["s"], ["log_s"]),
        helper.make_node("Add", ["m", "log_s"], ["lse"]),
        helper.make_node("Neg", ["lse"], ["neg"]),
        helper.make_node("Reshape", ["neg", "flat"], ["score64"]),
    ]
    inits += [
        const("minus_half", -0.5),
        const("gm_bias", bias),
        const("axis1", [1], np.int64),
        const("flat", [-1], np.int64),
    ]
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + out_nodes, inits + out_inits, n_features, "gmm")


CONVERTERS = {
    "pyod.models.mcd.MCD": mcd_to_onnx,
    "sklearn.covariance._elliptic_envelope.EllipticEnvelope": elliptic_envelope_to_onnx,
    "pyod.models.gmm.GMM": gmm_to_onnx,
}
