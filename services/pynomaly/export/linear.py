"""PyOD PCA as a few float64 linear-algebra nodes; output = PyOD's decision_function, as `servable` trims it.

PyOD (pyod 3.6.7 models/pca.py) standardizes X with the training StandardScaler (if `standardization`), then
scores sum_j ||z - c_j|| / w_j over the selected components c_j (unit rows of components_, taken as points),
with w_j their explained-variance ratios (`weighted`) or 1. `whiten` does not change components_, so not the
score either.

Distances: cdist's direct form (z - c_j)^2 summed over features when there are few components x features
(cheap, and exact even for a row next to a component); otherwise ||z||^2 - 2 z.c_j + ||c_j||^2 with a MatMul,
whose rounding (~1e-16 (||z||^2 + 1) on d^2) matters only within ~1e-5 of a component point: with enough
features such rows have negligible probability. The graph also outputs per-feature contributions that sum to
the score: d_j = sum_i (z_i - c_ji)^2 / d_j, so feature i contributes sum_j (z_i - c_ji)^2 / (d_j w_j).

Selected components whose explained-variance ratio is at rounding level are left out, as the native reference
leaves them out (pynomaly.algorithms.linear.servable): PyOD divides by that noise (inf, or 1e17-1e35 on cardio).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper
from pyod.models.pca import PCA
from sklearn.utils.validation import check_is_fitted

from pynomaly.algorithms.linear import rounding_level, servable

from ._graph import CONTRIBUTIONS_NAME, INPUT_NAME, OUTPUT_NAME, const, make_model

# Direct (z - c)^2 distances when components x features is at most this (work per row, like the MatMul's).
_DIRECT_MAX = 64
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def pca_to_onnx(det: PCA, n_features: int) -> onnx.ModelProto:
    check_is_fitted(det, ["selected_components_", "selected_w_components_"])
    if rounding_level(det).all():
        raise ValueError(
            "every selected component explains a rounding-level share of the variance (linearly dependent or "
            "constant features): PyOD's scores divide by noise. Train with weighted=false, or select components "
            "with more variance (n_selected_components)"
        )
    det = servable(det)
    comps = np.asarray(det.selected_components_, np.float64)  # [K, F]
    weights = np.asarray(det.selected_w_components_, np.float64)  # [K]
    if n_features != comps.shape[1]:
        raise ValueError(f"n_features={n_features} but PCA was fitted on {comps.shape[1]}")
    if not (np.all(np.isfinite(comps)) and np.all(np.isfinite(weights)) and np.all(weights > 0)):
        raise ValueError("components or their weights are not finite and positive")

    nodes = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    inits = [const("weights", weights), const("axis1", [1], np.int64)]
    z = "x64"
    if det.standardization:
        # sklearn's StandardScaler.transform: X -= mean_; X /= scale_ (same double operations).
        nodes += [
            helper.make_node("Sub", ["x64", "mean"], ["centered"]),
            helper.make_node("Div", ["centered", "scale"], ["z"]),
        ]
        inits += [const("mean", det.scaler_.mean_), const("scale", det.scaler_.scale_)]
        z = "z"

    if comps.size <= _DIRECT_MAX:
        nodes += [
            helper.make_node("Unsqueeze", [z, "axis1"], ["z3"]),  # [N, 1, F]
            helper.make_node("Sub", ["z3", "comps"], ["diff"]),  # [N, K, F]
            helper.make_node("Mul", ["diff", "diff"], ["sq"]),
            helper.make_node("ReduceSum", ["sq", "axis2"], ["d2"], keepdims=0),  # [N, K]
        ]
        inits += [const("comps", comps), const("axis2", [2], np.int64)]
    else:
        nodes += [
            helper.make_node("ReduceSumSquare", [z, "axis1"], ["zz"], keepdims=1),  # [N, 1]
            helper.make_node("MatMul", [z, "comps_t_m2"], ["zc_m2"]),  # -2 z.c_j, [N, K]
            helper.make_node("Add", ["zz", "zc_m2"], ["d2_part"]),
            helper.make_node("Add", ["d2_part", "comps_sq"], ["d2_raw"]),
            # Rounding can take d^2 slightly below 0 for a row on a component point.
            helper.make_node("Max", ["d2_raw", "zero"], ["d2"]),
        ]
        inits += [
            const("comps_t_m2", -2.0 * comps.T),  # exact: a power-of-two scaling
            const("comps_sq", np.sum(comps * comps, axis=1)),
            const("zero", 0.0),
        ]
    nodes += [
        helper.make_node("Sqrt", ["d2"], ["dist"]),
        helper.make_node("Div", ["dist", "weights"], ["terms"]),  # PyOD: cdist(X, C) / w, summed per row
        helper.make_node("ReduceSum", ["terms", "axis1"], ["score64"], keepdims=0),
        # Doubles beyond float32 (inputs near float32's max) are served as float32's max, not inf.
        helper.make_node("Clip", ["score64", "lowest", "highest"], ["score_clipped"]),
        helper.make_node("Cast", ["score_clipped"], [OUTPUT_NAME], to=TensorProto.FLOAT),
        # Contributions: q_j = 1 / (d_j w_j) = terms_j / d_j^2 (0 where d_j = 0: that component adds nothing).
        helper.make_node("Max", ["d2", "tiny"], ["d2_safe"]),
        helper.make_node("Div", ["terms", "d2_safe"], ["q"]),  # [N, K]
    ]
    inits += [
        const("lowest", -_FLOAT32_MAX),
        const("highest", _FLOAT32_MAX),
        const("tiny", 1e-300),
    ]
    if comps.size <= _DIRECT_MAX:
        nodes += [
            helper.make_node("Unsqueeze", ["q", "axis2"], ["q3"]),  # [N, K, 1]
            helper.make_node("Mul", ["sq", "q3"], ["weighted_sq"]),
            helper.make_node("ReduceSum", ["weighted_sq", "axis1"], ["contrib64"], keepdims=0),  # [N, F]
        ]
    else:
        # sum_j q_j (z_i - c_ji)^2 = z_i (z_i Q - 2 (q C)_i) + (q C^2)_i with Q = sum_j q_j.
        nodes += [
            helper.make_node("ReduceSum", ["q", "axis1"], ["q_sum"], keepdims=1),  # [N, 1]
            helper.make_node("Mul", [z, "q_sum"], ["zq"]),
            helper.make_node("MatMul", ["q", "comps_m2"], ["qc_m2"]),  # [N, F]
            helper.make_node("Add", ["zq", "qc_m2"], ["inner"]),
            helper.make_node("Mul", [z, "inner"], ["outer"]),
            helper.make_node("MatMul", ["q", "comps_sq_elem"], ["qc2"]),
            helper.make_node("Add", ["outer", "qc2"], ["contrib64"]),
        ]
        inits += [const("comps_m2", -2.0 * comps), const("comps_sq_elem", comps * comps)]
    nodes += [
        helper.make_node("Clip", ["contrib64", "lowest", "highest"], ["contrib_clipped"]),
        helper.make_node("Cast", ["contrib_clipped"], [CONTRIBUTIONS_NAME], to=TensorProto.FLOAT),
    ]
    return make_model(nodes, inits, n_features, "pca", contributions=True)


CONVERTERS = {"pyod.models.pca.PCA": pca_to_onnx}
