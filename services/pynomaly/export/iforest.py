"""Isolation forests (PyOD IForest, scikit-learn IsolationForest) as one TreeEnsemble node.

Score (both libraries, higher = more anomalous): 2 ** (-E / (n_trees * c(max_samples_))) + offset_, where
E sums, over trees, depth(leaf) + c(n_node_samples[leaf]) with depth counted in edges from the root. This is
PyOD's decision_function and the negated sklearn decision_function (= -score_samples + offset_).

One ensemble node replaces skl2onnx's per-tree graph (3-4x slower than sklearn). sklearn fits and scores on X
rounded to float32 (float64 rows too), comparing float32(x) <= threshold in double: the graph rounds the row to
float32 and compares in double with the same thresholds.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from pyod.models.iforest import IForest
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from ._graph import OUTPUT_NAME, Trees, concat_trees, const, make_model, tree_sum

_TREE_LEAF = -1


def average_path_length(n: np.ndarray) -> np.ndarray:
    """sklearn's c(n): mean depth of an unsuccessful BST search among n points (c(1)=0, c(2)=1)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _tree(tree, features: np.ndarray | None) -> Trees:
    """One fitted sklearn tree; leaf weight = depth + c(leaf size), feature ids in the forest's columns."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    is_leaf = left == _TREE_LEAF
    depth = t.compute_node_depths() - 1  # sklearn counts the root as depth 1
    leaf_weight = depth[is_leaf] + average_path_length(t.n_node_samples[is_leaf])

    if is_leaf[0]:
        # A one-leaf tree (all sampled rows identical) still needs a node: both branches reach the leaf.
        one, zero = np.ones(1, np.int64), np.zeros(1, np.int64)
        return Trees(zero, zero, np.array([np.inf]), zero, one, zero, one, leaf_weight)

    # Dense renumbering: interior nodes index nodes_*, leaves index leaf_*.
    new_id = np.where(is_leaf, np.cumsum(is_leaf) - 1, np.cumsum(~is_leaf) - 1)
    inner = np.flatnonzero(~is_leaf)
    l_child, r_child = left[inner], right[inner]
    feature = t.feature[inner]
    return Trees(
        roots=np.zeros(1, np.int64),  # sklearn stores the root first
        feature=feature if features is None else np.asarray(features)[feature],
        # sklearn tests float32(x) <= float64 threshold, in double: so does the graph (tree_sum's float32_rows).
        split=t.threshold[inner].astype(np.float64),
        true_id=new_id[l_child],
        true_leaf=is_leaf[l_child].astype(np.int64),
        false_id=new_id[r_child],
        false_leaf=is_leaf[r_child].astype(np.int64),
        leaf_weight=leaf_weight,
    )


def sklearn_iforest_to_onnx(est: IsolationForest, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals -est.decision_function(X)."""
    check_is_fitted(est)
    if n_features != est.n_features_in_:
        raise ValueError(f"n_features={n_features} but the forest was fitted on {est.n_features_in_}")

    # Mirror sklearn: it indexes X[:, features] only when trees saw fewer columns than the forest has.
    subsample = any(len(f) != est.n_features_in_ for f in est.estimators_features_)
    trees = concat_trees(
        [
            _tree(tree, features if subsample else None)
            for tree, features in zip(est.estimators_, est.estimators_features_, strict=True)
        ]
    )
    nodes, inits = tree_sum(trees, n_features, "path_sum", float32_rows=True)

    denominator = len(est.estimators_) * float(average_path_length(np.array([est.max_samples_]))[0])
    if denominator == 0:
        # One row per tree: each leaf has depth 0 and c(1) = 0, so E is exactly 0; sklearn defines E / 0 as 1.
        nodes.append(helper.make_node("Sub", ["path_sum", "one"], ["neg_ratio"]))
        inits.append(const("one", 1.0))
    else:
        nodes += [
            helper.make_node("Div", ["path_sum", "denominator"], ["ratio"]),
            helper.make_node("Neg", ["ratio"], ["neg_ratio"]),
        ]
        inits.append(const("denominator", denominator))
    nodes += [
        # sklearn: score_samples = -2 ** -ratio; decision = score_samples - offset_; we serve its negation.
        helper.make_node("Pow", ["two", "neg_ratio"], ["anomaly"]),
        helper.make_node("Add", ["anomaly", "offset"], ["score64"]),
        helper.make_node("Cast", ["score64"], [OUTPUT_NAME], to=onnx.TensorProto.FLOAT),
    ]
    inits += [const("two", 2.0), const("offset", float(est.offset_))]
    return make_model(nodes, inits, n_features, "isolation_forest")


def pyod_iforest_to_onnx(det: IForest, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals det.decision_function(X) (PyOD negates sklearn's decision_function)."""
    check_is_fitted(det, ["detector_"])
    return sklearn_iforest_to_onnx(det.detector_, n_features)


CONVERTERS = {
    "pyod.models.iforest.IForest": pyod_iforest_to_onnx,
    "sklearn.ensemble._iforest.IsolationForest": sklearn_iforest_to_onnx,
}
