"""XGBOD (pyod 3.6.7 models/xgbod.py; xgboost 3.2) as a graph composed from its members' graphs and its trees.

XGBOD's decision_function: X_norm = _scalar.transform(X) (the training StandardScaler); member i scores X_norm
where standardization_flag_list_[i], else X; the classifier reads [X, member scores] and returns
predict_proba[:, 1]. Its members are composed as the ensembles' are (export.ensemble: each member's served
graph, float64 in and out). XGBoost reads every value as float32 (static_cast of the float64) and sends a node's
rows with value < split_condition (a float32) to its left child: the graph rounds [X, scores] to float32 and
compares in double against the float32 splits, which decides exactly as XGBoost does. Its CPU predictor then
starts each row's margin at the base margin (binary:logistic: -logf(1/base_score - 1); binary:logitraw:
base_score) and adds the trees' float32 leaf values in tree order, in float32: a sum in float64 missed
XGBoost's margin by up to 1e-5 (measured), so one TreeEnsemble puts each tree's leaf in a target of its own and
float32 Adds chain them in tree order, bit for bit XGBoost's margin. The logistic link 1 / (1 + exp(-margin))
is taken in float64 (XGBoost's float32 expf differs by ~1e-7 relative).

The model comes from the booster's JSON, whose floats are the shortest decimals of float32 values: each is
read back as the float32 nearest to its decimal (`_float32`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.utils.validation import check_is_fitted

from ._graph import INPUT_NAME, ML_DOMAIN, clipped_output, const, make_model
from .ensemble import _member_part

_LT = 1  # TreeEnsemble's BRANCH_LT
_SUM = 1
# xgboost's Sigmoid clamps -margin at 88.7f.
_EXP_CAP = float(np.float32(88.7))


def _check_width(n_features: int, fitted: int, what: str) -> None:
    if n_features != fitted:
        raise ValueError(f"n_features={n_features} but the {what} was fitted on {fitted}")


def _float32(texts: list[str]) -> np.ndarray:
    """The float32 nearest to each decimal. Through the nearest float64 the value can round twice, the wrong way
    for a decimal within a float64 step of a float32 midpoint: those few are decided exactly (ties to even)."""
    wide = np.array([float(t) for t in texts], np.float64)
    out = wide.astype(np.float32)
    other = np.nextafter(out, np.where(wide >= out, np.float32(np.inf), np.float32(-np.inf)))
    mid = (out.astype(np.float64) + other.astype(np.float64)) / 2
    for i in np.flatnonzero(np.abs(wide - mid) <= 2 * np.spacing(np.abs(wide))):
        q = Fraction(texts[i])
        a, b = out[i], other[i]
        da, db = abs(Fraction(float(a)) - q), abs(Fraction(float(b)) - q)
        if db < da or (db == da and int(np.array(b).view(np.uint32)) % 2 == 0):
            out[i] = b
    return out


def _booster_model(booster: Any) -> dict[str, Any]:
    """The booster's JSON model, floats kept as their decimals."""
    return json.loads(bytes(booster.save_raw("json")), parse_float=str)


def _base_margin(objective: str, base_score: np.float32) -> np.float32:
    """XGBoost's starting margin: ProbToMargin of the base score, in float32 (logf of a float32)."""
    if objective == "binary:logitraw":
        return base_score
    odds = np.float32(np.float32(1.0) / base_score - np.float32(1.0))
    return np.float32(-np.float32(np.log(np.float64(odds))))


def _tree_node(trees: list[dict[str, Any]], n_inputs: int, x: str, out: str) -> onnx.NodeProto:
    """One TreeEnsemble: target t = the leaf value reached in tree t (float32 values, in double)."""
    roots: list[int] = []
    feature: list[int] = []
    split: list[str] = []
    missing_true: list[int] = []
    true_id: list[int] = []
    true_leaf: list[int] = []
    false_id: list[int] = []
    false_leaf: list[int] = []
    leaf_target: list[int] = []
    leaf_text: list[str] = []
    for t, tree in enumerate(trees):
        left, right = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
        if any(int(s) != 0 for s in tree["split_type"]):
            raise ValueError("categorical splits cannot be exported")
        is_leaf = left == -1
        node_base, leaf_base = len(feature), len(leaf_text)
        new_id = np.where(is_leaf, np.cumsum(is_leaf) - 1 + leaf_base, np.cumsum(~is_leaf) - 1 + node_base)
        conditions = tree["split_conditions"]
        leaf_text += [conditions[i] for i in np.flatnonzero(is_leaf)]
        leaf_target += [t] * int(is_leaf.sum())
        roots.append(len(feature))
        if is_leaf[0]:  # a tree of one leaf still needs a node: both branches reach it
            feature.append(0)
            split.append("0")
            missing_true.append(0)
            true_id.append(leaf_base)
            false_id.append(leaf_base)
            true_leaf.append(1)
            false_leaf.append(1)
            continue
        for i in np.flatnonzero(~is_leaf):
            feature.append(int(tree["split_indices"][i]))
            split.append(conditions[i])
            missing_true.append(int(tree["default_left"][i]))
            true_id.append(int(new_id[left[i]]))
            true_leaf.append(int(is_leaf[left[i]]))
            false_id.append(int(new_id[right[i]]))
            false_leaf.append(int(is_leaf[right[i]]))
    if max(feature) >= n_inputs:
        raise ValueError(f"the booster splits on feature {max(feature)}, beyond the {n_inputs} it is given")
    return helper.make_node(
        "TreeEnsemble", [x], [out], domain=ML_DOMAIN, aggregate_function=_SUM, post_transform=0,
        n_targets=len(trees), tree_roots=roots, nodes_featureids=feature,
        nodes_modes=const("nodes_modes", np.full(len(feature), _LT), np.uint8),
        nodes_splits=const("nodes_splits", _float32(split).astype(np.float64)),
        nodes_missing_value_tracks_true=missing_true,
        nodes_truenodeids=true_id, nodes_trueleafs=true_leaf, nodes_falsenodeids=false_id, nodes_falseleafs=false_leaf,
        leaf_targetids=leaf_target, leaf_weights=const("leaf_weights", _float32(leaf_text).astype(np.float64)),
    )


def _booster_nodes(booster: Any, n_inputs: int, x: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes computing the classifier's score (double[N]) from x: double[N, n_inputs], float32 values."""
    model = _booster_model(booster)["learner"]
    objective = model["objective"]["name"]
    if objective not in ("binary:logistic", "binary:logitraw"):
        raise ValueError(f"objective {objective!r} cannot be exported; binary:logistic and binary:logitraw can")
    if model["gradient_booster"]["name"] != "gbtree":
        raise ValueError(f"booster {model['gradient_booster']['name']!r} cannot be exported; gbtree can")
    params = model["learner_model_param"]
    if int(params["num_class"]) > 1 or int(params["num_target"]) != 1:
        raise ValueError("a classifier of more than two classes cannot be exported")
    base_score = _float32([params["base_score"].strip("[]")])[0]
    trees = model["gradient_booster"]["model"]["trees"]
    nodes = [_tree_node(trees, n_inputs, x, "leaves"),
             helper.make_node("Cast", ["leaves"], ["leaves32"], to=TensorProto.FLOAT)]
    leaves = [f"leaf{t}" for t in range(len(trees))]
    if len(trees) == 1:
        nodes.append(helper.make_node("Identity", ["leaves32"], leaves))
    else:
        nodes.append(helper.make_node("Split", ["leaves32"], leaves, axis=1, num_outputs=len(trees)))
    margin = "base_margin"
    for t, leaf in enumerate(leaves):  # XGBoost's order and rounding: ((base + l0) + l1) + ...
        nodes.append(helper.make_node("Add", [margin, leaf], [f"partial{t}"]))
        margin = f"partial{t}"
    nodes += [helper.make_node("Reshape", [margin, "flat"], ["margin32"]),
              helper.make_node("Cast", ["margin32"], ["margin64"], to=TensorProto.DOUBLE)]
    inits = [const("base_margin", [_base_margin(objective, base_score)], np.float32), const("flat", [-1], np.int64)]
    if objective == "binary:logitraw":
        return nodes, inits, "margin64"
    nodes += [
        helper.make_node("Neg", ["margin64"], ["neg_margin"]),
        helper.make_node("Min", ["neg_margin", "exp_cap"], ["capped"]),
        helper.make_node("Exp", ["capped"], ["odds_inv"]),
        helper.make_node("Add", ["odds_inv", "one"], ["denominator"]),
        helper.make_node("Reciprocal", ["denominator"], ["probability"]),
    ]
    return nodes, [*inits, const("exp_cap", _EXP_CAP), const("one", 1.0)], "probability"


def xgbod_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD XGBOD's decision_function."""
    check_is_fitted(det, ["clf_", "_scalar", "estimator_list_", "standardization_flag_list_"])
    _check_width(n_features, det._scalar.n_features_in_, "XGBOD")
    scaler = det._scalar
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Sub", ["x64", "scaler_mean"], ["x_centered"]),
        helper.make_node("Div", ["x_centered", "scaler_scale"], ["x_norm"]),
    ]
    inits = [
        const("scaler_mean", scaler.mean_ if scaler.with_mean else np.zeros(n_features)),
        const("scaler_scale", scaler.scale_ if scaler.with_std else np.ones(n_features)),
        const("axis1", [1], np.int64),
    ]
    columns = ["x64"]
    members = zip(det.estimator_list_, det.standardization_flag_list_, strict=True)
    for i, (est, standardized) in enumerate(members):
        part = _member_part(est, n_features, f"m{i}_", "x_norm" if standardized else "x64",
                            what=f"member {i} ({type(est).__name__})")
        nodes += [*part.nodes, helper.make_node("Unsqueeze", [part.score, "axis1"], [f"tos{i}"])]
        inits += part.initializers
        columns.append(f"tos{i}")
    nodes += [
        helper.make_node("Concat", columns, ["augmented"], axis=1),
        # XGBoost reads float32: round as it does, compare in double (exact for float32 values).
        helper.make_node("Cast", ["augmented"], ["augmented_f32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["augmented_f32"], ["augmented32"], to=TensorProto.DOUBLE),
    ]
    booster_nodes, booster_inits, score = _booster_nodes(det.clf_.get_booster(), len(columns) - 1 + n_features,
                                                         "augmented32")
    out_nodes, out_inits = clipped_output(score)
    return make_model(nodes + booster_nodes + out_nodes, inits + booster_inits + out_inits, n_features, "xgbod")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.xgbod.XGBOD": xgbod_to_onnx,
}
