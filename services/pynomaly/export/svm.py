"""One-class SVMs as float64 graphs: PyOD OCSVM, scikit-learn OneClassSVM and SGDOneClassSVM.

OneClassSVM.decision_function(x) = Σ_i α_i K(sv_i, x) + intercept_ (libsvm's Σ α K - ρ); PyOD's OCSVM
returns its negation (pyod 3.6.7 models/ocsvm.py: invert_order(detector_.decision_function(X))), which is also
the platform's score for scikit-learn's. skl2onnx's SVM graph runs in float32 only (onnxruntime has no double
SVMRegressor) and misses 1e-5 on scores of hundreds, so the expansion is written out in float64:

- rbf: exp(-γ |x - sv|²). With c the mean support vector, x' = x - c and sv' = sv - c,
  -γ |x' - sv'|² = [x', |x'|², 1] · [2γ sv'; -γ; -γ |sv'|²]: one MatMul gives every exponent. Centring keeps
  the cancellation in |x'|² - 2 x'·sv' + |sv'|² to the spread of the data rather than its offset.
- poly: (γ x·sv + coef0)^degree, the power taken by repeated squaring like libsvm's powi.
- sigmoid: tanh(γ x·sv + coef0); linear: x·sv.
Then one MatMul with the dual coefficients. [N, n_SV] doubles are materialised: 10k rows × 5k support vectors
is 400 MB, which the server halves by splitting large batches.

SGDOneClassSVM is linear with no kernel approximation: decision_function = x·coef_ - offset_, so the score is
offset_ - x·coef_.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.utils.validation import check_is_fitted

from ._graph import INPUT_NAME, clipped_output, const, make_model


def _check_width(n_features: int, fitted: int) -> None:
    if n_features != fitted:
        raise ValueError(f"n_features={n_features} but the SVM was fitted on {fitted}")


def _powi_nodes(base: str, degree: int, out: str) -> list[onnx.NodeProto]:
    """base ** degree by libsvm's square-and-multiply, so the products round as they do natively."""
    nodes: list[onnx.NodeProto] = []
    ret, tmp, t, step = None, base, degree, 0
    while t > 0:
        if t % 2 == 1:
            if ret is None:
                ret = tmp  # 1.0 * tmp is tmp exactly
            else:
                nodes.append(helper.make_node("Mul", [ret, tmp], [f"pow_r{step}"]))
                ret = f"pow_r{step}"
        t //= 2
        if t > 0:
            nodes.append(helper.make_node("Mul", [tmp, tmp], [f"pow_t{step}"]))
            tmp = f"pow_t{step}"
        step += 1
    if ret is None:  # degree 0: K = 1 everywhere
        nodes.append(helper.make_node("Mul", [base, "zero"], ["pow_zero"]))
        nodes.append(helper.make_node("Add", ["pow_zero", "one"], [out]))
    else:
        nodes.append(helper.make_node("Identity", [ret], [out]))
    return nodes


def _kernel_nodes(svm: Any) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing "k": double[N, n_SV] = K(x, sv_i) from "x64"."""
    sv = np.asarray(svm.support_vectors_, np.float64)
    gamma, coef0, kernel = float(svm._gamma), float(svm.coef0), svm.kernel
    if kernel == "rbf":
        center = sv.mean(axis=0)
        svc = sv - center
        weights = np.vstack([2.0 * gamma * svc.T, -gamma * np.ones((1, len(sv))), -gamma * (svc**2).sum(axis=1)])
        nodes = [
            helper.make_node("Sub", ["x64", "sv_center"], ["xc"]),
            helper.make_node("Mul", ["xc", "xc"], ["xc_sq"]),
            helper.make_node("ReduceSum", ["xc_sq", "axis1"], ["xc_norm"], keepdims=1),
            helper.make_node("Shape", ["xc_norm"], ["ones_shape"]),
            helper.make_node("Expand", ["one", "ones_shape"], ["ones"]),
            helper.make_node("Concat", ["xc", "xc_norm", "ones"], ["xa"], axis=1),
            helper.make_node("MatMul", ["xa", "rbf_w"], ["exponent"]),
            helper.make_node("Exp", ["exponent"], ["k"]),
        ]
        inits = [const("sv_center", center), const("rbf_w", weights), const("axis1", [1], np.int64),
                 const("one", 1.0)]
        return nodes, inits
    nodes = [helper.make_node("MatMul", ["x64", "sv_t"], ["dot" if kernel != "linear" else "k"])]
    inits = [const("sv_t", sv.T)]
    if kernel == "linear":
        return nodes, inits
    # libsvm: gamma * dot(x, y) + coef0
    nodes += [
        helper.make_node("Mul", ["dot", "gamma"], ["gdot"]),
        helper.make_node("Add", ["gdot", "coef0"], ["base"]),
    ]
    inits += [const("gamma", gamma), const("coef0", coef0)]
    if kernel == "sigmoid":
        nodes.append(helper.make_node("Tanh", ["base"], ["k"]))
        return nodes, inits
    nodes += _powi_nodes("base", int(svm.degree), "k")
    inits += [const("zero", 0.0), const("one", 1.0)]
    return nodes, inits


def _one_class_svm_model(svm: Any, n_features: int, name: str) -> onnx.ModelProto:
    """Graph of -svm.decision_function(X) for a fitted sklearn OneClassSVM."""
    check_is_fitted(svm, ["support_vectors_", "dual_coef_", "intercept_"])
    if svm.kernel not in ("rbf", "linear", "poly", "sigmoid"):
        raise ValueError(f"kernel {svm.kernel!r} cannot be exported (rows are features, not kernel values)")
    _check_width(n_features, svm.support_vectors_.shape[1])
    kernel_nodes, inits = _kernel_nodes(svm)
    # score = -(K α + b) = K (-α) - b
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        *kernel_nodes,
        helper.make_node("MatMul", ["k", "neg_alpha"], ["expansion"]),
        helper.make_node("Sub", ["expansion", "intercept"], ["score_2d"]),
        helper.make_node("Reshape", ["score_2d", "flat"], ["score64"]),
    ]
    inits += [
        const("neg_alpha", -np.asarray(svm.dual_coef_, np.float64).reshape(-1, 1)),
        const("intercept", np.asarray(svm.intercept_, np.float64).reshape(1)),
        const("flat", [-1], np.int64),
    ]
    out_nodes, out_inits = clipped_output("score64")
    nodes, inits = nodes + out_nodes, inits + out_inits
    # Drop initializers no node reads (the rbf and poly paths share the constant names).
    used = {i for n in nodes for i in n.input}
    return make_model(nodes, [t for t in inits if t.name in used], n_features, name)


def pyod_ocsvm_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD OCSVM's decision_function = -OneClassSVM.decision_function."""
    check_is_fitted(det, ["detector_", "threshold_"])
    return _one_class_svm_model(det.detector_, n_features, "ocsvm")


def one_class_svm_to_onnx(est: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals -OneClassSVM.decision_function."""
    return _one_class_svm_model(est, n_features, "one_class_svm")


def sgd_one_class_svm_to_onnx(est: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals -SGDOneClassSVM.decision_function = offset_ - x·coef_."""
    check_is_fitted(est, ["coef_", "offset_"])
    coef = np.asarray(est.coef_, np.float64).reshape(-1, 1)
    _check_width(n_features, coef.shape[0])
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        # Gemm: -1 · (x·coef) + offset_ in one kernel (MatMul then Sub ran 1.7x slower on 10k rows).
        helper.make_node("Gemm", ["x64", "coef", "offset"], ["score_2d"], alpha=-1.0),
        helper.make_node("Reshape", ["score_2d", "flat"], ["score64"]),
    ]
    inits = [const("coef", coef), const("offset", np.asarray(est.offset_, np.float64).reshape(1)),
             const("flat", [-1], np.int64)]
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + out_nodes, inits + out_inits, n_features, "sgd_one_class_svm")


CONVERTERS = {
    "pyod.models.ocsvm.OCSVM": pyod_ocsvm_to_onnx,
    "sklearn.svm._classes.OneClassSVM": one_class_svm_to_onnx,
    "sklearn.linear_model._stochastic_gradient.SGDOneClassSVM": sgd_one_class_svm_to_onnx,
}
