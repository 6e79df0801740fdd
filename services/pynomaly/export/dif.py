"""DIF (pynomaly.algorithms.dif.DIFDetector: PyOD's DIF with each representation's standardisation frozen).

Per representation i, as the frozen reference computes it:
- z = float32(minmax(x)) (sklearn's MinMaxScaler: x * scale_ + min_ in float64), then the network: bias-free
  Linear layers as MatMuls in float64 (the float32 weights widened; Cast nodes that onnxruntime folds at load),
  PyOD's activation after each hidden layer, [input, output] concatenated where skip_connection;
- r = float32(tanh((h - mean_i) / scale_i)), what the isolation forest reads;
- _cal_score (pyod 3.6.7 models/dif.py): per tree, the leaf reached (one TreeEnsemble, x <= threshold as
  sklearn compares, a target per tree whose value is the leaf's number), then from tables indexed by the leaf:
  d = nodes on the path + c(leaf size) - 1 (0 for a tree of one node, which _cal_score skips), and the path's
  split features and thresholds, from which the deviation Σ|r_f - t| / (#nonzero terms + 1e-6) is taken as
  _cal_score takes it; score_i = 2^(-Σd / (trees · c(max_samples_))) · mean deviation.
The score is the mean over representations. All in float64 but the two float32 roundings PyOD makes too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper

from ._graph import INPUT_NAME, ML_DOMAIN, Trees, clipped_output, concat_trees, const, make_model
from .iforest import average_path_length

_SUM = 1
_TREE_LEAF = -1
_EPS = 1e-6  # _cal_score's guard in the deviation's denominator


def _activation(name: str, x: str, out: str) -> list[onnx.NodeProto]:
    """PyOD's get_activation_by_name(name) with torch's defaults, in ONNX (double)."""
    if name == "identity":
        return [helper.make_node("Identity", [x], [out])]
    if name == "softplus":  # torch: x where x > threshold (20), else log1p(exp(x)); onnxruntime has no double Softplus
        return [
            helper.make_node("Exp", [x], [out + "_exp"]),
            helper.make_node("Add", [out + "_exp", "one"], [out + "_exp1"]),
            helper.make_node("Log", [out + "_exp1"], [out + "_soft"]),
            helper.make_node("Greater", [x, "softplus_threshold"], [out + "_linear"]),
            helper.make_node("Where", [out + "_linear", x, out + "_soft"], [out]),
        ]
    # onnxruntime has no double Elu or LeakyRelu: x where x > 0, else alpha (exp(x) - 1) or slope x.
    if name == "elu":
        return [
            helper.make_node("Exp", [x], [out + "_exp"]),
            helper.make_node("Sub", [out + "_exp", "one"], [out + "_neg"]),
            helper.make_node("Greater", [x, "zero"], [out + "_pos"]),
            helper.make_node("Where", [out + "_pos", x, out + "_neg"], [out]),
        ]
    if name == "leaky_relu":
        return [
            helper.make_node("Mul", [x, "leaky_slope"], [out + "_neg"]),
            helper.make_node("Greater", [x, "zero"], [out + "_pos"]),
            helper.make_node("Where", [out + "_pos", x, out + "_neg"], [out]),
        ]
    ops = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
    if name not in ops:
        raise ValueError(f"activation {name!r} cannot be exported")
    return [helper.make_node(ops[name], [x], [out])]


def _network(net: Any, x: str, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """PyOD's MLPnet (eval: no dropout, no batch norm in DIF's) on x: double[N, F], in float64."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    for j, block in enumerate(net.network):
        if block.linear.bias is not None or block.batch_norm:
            raise ValueError("a network with biases or batch norm is not DIF's")
        w = f"{prefix}w{j}"
        inits.append(const(w + "_f32", block.linear.weight.detach().numpy().T, np.float32))
        nodes += [helper.make_node("Cast", [w + "_f32"], [w], to=TensorProto.DOUBLE),
                  helper.make_node("MatMul", [x, w], [f"{prefix}lin{j}"])]
        act = type(block.act_layer).__name__.lower()
        names = {"tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "elu": "elu", "leakyrelu": "leaky_relu",
                 "softplus": "softplus", "identity": "identity"}
        if act not in names:
            raise ValueError(f"activation {type(block.act_layer).__name__} cannot be exported")
        nodes += _activation(names[act], f"{prefix}lin{j}", f"{prefix}act{j}")
        out = f"{prefix}act{j}"
        if block.skip_connection:
            nodes.append(helper.make_node("Concat", [x, out], [f"{prefix}skip{j}"], axis=1))
            out = f"{prefix}skip{j}"
        x = out
    return nodes, inits, x


class _Forest(NamedTuple):
    trees: Trees  # all trees, leaf i's weight its number i
    leaf_tree: np.ndarray  # per leaf, its tree
    depth: np.ndarray  # per leaf, _cal_score's d
    features: np.ndarray  # per leaf, the split features on its path (padded to the longest path)
    thresholds: np.ndarray  # ... their thresholds
    valid: np.ndarray  # ... 1 where the path has a node


def _tree(t: Any) -> tuple[Trees, list[float], list[list[tuple[int, float]]]]:
    """One sklearn tree: its TreeEnsemble arrays, and per leaf (in leaf order) d and the path's (feature,
    threshold) pairs from the root."""
    left, right = t.children_left, t.children_right
    is_leaf = left == _TREE_LEAF
    if is_leaf[0]:  # _cal_score skips a tree of one node: d = 0, no deviation; both branches reach the leaf
        one, zero = np.ones(1, np.int64), np.zeros(1, np.int64)
        return Trees(zero, zero, np.array([np.inf]), zero, one, zero, one, zero.astype(np.float64)), [0.0], [[]]
    new_id = np.where(is_leaf, np.cumsum(is_leaf) - 1, np.cumsum(~is_leaf) - 1)
    inner = np.flatnonzero(~is_leaf)
    trees = Trees(np.zeros(1, np.int64), t.feature[inner].astype(np.int64), t.threshold[inner].astype(np.float64),
                  new_id[left[inner]], is_leaf[left[inner]].astype(np.int64), new_id[right[inner]],
                  is_leaf[right[inner]].astype(np.int64), np.zeros(int(is_leaf.sum())))
    paths: dict[int, list[int]] = {}
    stack: list[tuple[int, list[int]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if is_leaf[node]:
            paths[node] = path
        else:
            stack += [(int(left[node]), [*path, node]), (int(right[node]), [*path, node])]
    leaves = [int(i) for i in np.flatnonzero(is_leaf)]
    # _cal_score: d = nodes on the path (the leaf included) + c(leaf size) - 1
    sizes = average_path_length(t.n_node_samples[leaves])
    depth = [len(paths[leaf]) + 1 + float(c) - 1.0 for leaf, c in zip(leaves, sizes, strict=True)]
    return trees, depth, [[(int(t.feature[n]), float(t.threshold[n])) for n in paths[leaf]] for leaf in leaves]


def _forest(forest: Any) -> _Forest:
    parts = [_tree(estimator.tree_) for estimator in forest.estimators_]
    trees = concat_trees([p[0] for p in parts])
    trees = trees._replace(leaf_weight=np.arange(len(trees.leaf_weight), dtype=np.float64))
    leaf_tree = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    paths = [path for p in parts for path in p[2]]
    width = max(1, *(len(path) for path in paths))
    features = np.zeros((len(paths), width), np.int64)
    thresholds = np.zeros((len(paths), width), np.float64)
    valid = np.zeros((len(paths), width), np.float64)
    for i, path in enumerate(paths):
        for j, (feature, threshold) in enumerate(path):
            features[i, j], thresholds[i, j], valid[i, j] = feature, threshold, 1.0
    return _Forest(trees, leaf_tree, np.array([d for p in parts for d in p[1]]), features, thresholds, valid)


def _leaf_node(forest: _Forest, x: str, out: str, n_inputs: int) -> onnx.NodeProto:
    """out: double[N, trees] = the number of the leaf each tree sends the row to (x <= threshold: left)."""
    trees = forest.trees
    if trees.feature.max() >= n_inputs:
        raise ValueError(f"a tree splits on feature {trees.feature.max()} of a {n_inputs}-dimensional representation")
    return helper.make_node(
        "TreeEnsemble", [x], [out], domain=ML_DOMAIN, aggregate_function=_SUM, post_transform=0,
        n_targets=int(forest.leaf_tree.max()) + 1, tree_roots=trees.roots.tolist(),
        nodes_featureids=trees.feature.tolist(),
        nodes_modes=const("nodes_modes", np.zeros(len(trees.feature)), np.uint8),  # x <= split
        nodes_splits=const("nodes_splits", trees.split), nodes_truenodeids=trees.true_id.tolist(),
        nodes_trueleafs=trees.true_leaf.tolist(), nodes_falsenodeids=trees.false_id.tolist(),
        nodes_falseleafs=trees.false_leaf.tolist(), leaf_targetids=forest.leaf_tree.tolist(),
        leaf_weights=const("leaf_weights", trees.leaf_weight),
    )


def _representation_score(det: Any, i: int, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing prefix + "score": double[N], representation i's _cal_score, from "z"."""
    pyod = det.detector_
    forest = pyod.iForest_lst[i]
    nodes, inits, h = _network(pyod.net_lst[i], "z", prefix)
    tables = _forest(forest)
    n_trees, width = len(forest.estimators_), tables.features.shape[1]
    p = prefix
    nodes += [
        helper.make_node("Sub", [h, p + "mean"], [p + "centered"]),
        helper.make_node("Div", [p + "centered", p + "scale"], [p + "standard"]),
        helper.make_node("Tanh", [p + "standard"], [p + "r64"]),
        helper.make_node("Cast", [p + "r64"], [p + "r_f32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", [p + "r_f32"], [p + "r"], to=TensorProto.DOUBLE),
        _leaf_node(tables, p + "r", p + "leaf64", len(det.mean_[i])),
        helper.make_node("Cast", [p + "leaf64"], [p + "leaf"], to=TensorProto.INT64),
        helper.make_node("Gather", [p + "depth", p + "leaf"], [p + "d"]),
        helper.make_node("ReduceSum", [p + "d", "axis1"], [p + "depth_sum"], keepdims=0),
        helper.make_node("Gather", [p + "features", p + "leaf"], [p + "path_f"]),
        helper.make_node("Reshape", [p + "path_f", p + "flat_paths"], [p + "path_f_flat"]),
        helper.make_node("GatherElements", [p + "r", p + "path_f_flat"], [p + "path_x_flat"], axis=1),
        helper.make_node("Reshape", [p + "path_x_flat", p + "paths_shape"], [p + "path_x"]),
        helper.make_node("Gather", [p + "thresholds", p + "leaf"], [p + "path_t"]),
        helper.make_node("Gather", [p + "valid", p + "leaf"], [p + "path_valid"]),
        helper.make_node("Sub", [p + "path_x", p + "path_t"], [p + "gap"]),
        helper.make_node("Abs", [p + "gap"], [p + "abs_gap"]),
        helper.make_node("Mul", [p + "abs_gap", p + "path_valid"], [p + "terms"]),
        helper.make_node("ReduceSum", [p + "terms", "axis2"], [p + "term_sum"], keepdims=0),
        helper.make_node("Equal", [p + "terms", "zero"], [p + "is_zero"]),
        helper.make_node("Not", [p + "is_zero"], [p + "nonzero"]),
        helper.make_node("Cast", [p + "nonzero"], [p + "nonzero64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", [p + "nonzero64", "axis2"], [p + "count"], keepdims=0),
        helper.make_node("Add", [p + "count", "eps"], [p + "count_eps"]),
        helper.make_node("Div", [p + "term_sum", p + "count_eps"], [p + "deviation_t"]),
        helper.make_node("ReduceMean", [p + "deviation_t", "axis1"], [p + "deviation"], keepdims=0),
        helper.make_node("Neg", [p + "depth_sum"], [p + "neg_depth"]),
        helper.make_node("Div", [p + "neg_depth", p + "denominator"], [p + "exponent"]),
        helper.make_node("Pow", ["two", p + "exponent"], [p + "isolation"]),
        helper.make_node("Mul", [p + "isolation", p + "deviation"], [p + "score"]),
    ]
    c = float(average_path_length(np.array([forest.max_samples_]))[0])
    inits += [
        const(p + "mean", det.mean_[i]), const(p + "scale", det.scale_[i]), const(p + "depth", tables.depth),
        const(p + "features", tables.features, np.int64), const(p + "thresholds", tables.thresholds),
        const(p + "valid", tables.valid), const(p + "flat_paths", [0, n_trees * width], np.int64),
        const(p + "paths_shape", [0, n_trees, width], np.int64),
        const(p + "denominator", n_trees * c),
    ]
    return nodes, inits


def dif_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals DIFDetector.decision_function (the frozen DIF score)."""
    if not all(hasattr(det, a) for a in ("detector_", "nets_", "mean_", "scale_")):
        raise ValueError("DIF is not fitted")
    pyod = det.detector_
    mm = pyod.minmax_scaler
    if n_features != mm.n_features_in_:
        raise ValueError(f"n_features={n_features} but the DIF was fitted on {mm.n_features_in_}")
    if mm.clip:
        raise ValueError("a clipping MinMaxScaler is not DIF's")
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["x64", "mm_scale"], ["x_scaled"]),
        helper.make_node("Add", ["x_scaled", "mm_min"], ["z64"]),
        # PyOD's networks take float32 tensors.
        helper.make_node("Cast", ["z64"], ["z32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["z32"], ["z"], to=TensorProto.DOUBLE),
    ]
    inits = [const("mm_scale", mm.scale_), const("mm_min", mm.min_), const("axis1", [1], np.int64),
             const("axis2", [2], np.int64), const("zero", 0.0), const("eps", _EPS), const("two", 2.0),
             const("softplus_threshold", 20.0), const("one", 1.0), const("leaky_slope", 0.01)]
    columns = []
    for i in range(len(pyod.net_lst)):
        member_nodes, member_inits = _representation_score(det, i, f"r{i}_")
        nodes += [*member_nodes, helper.make_node("Unsqueeze", [f"r{i}_score", "axis1"], [f"col{i}"])]
        inits += member_inits
        columns.append(f"col{i}")
    nodes += [helper.make_node("Concat", columns, ["scores"], axis=1),
              helper.make_node("ReduceMean", ["scores", "axis1"], ["score64"], keepdims=0)]
    out_nodes, out_inits = clipped_output("score64")
    used = {name for n in nodes for name in n.input}
    return make_model(nodes + out_nodes, [t for t in inits if t.name in used] + out_inits, n_features, "dif")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    # pynomaly's "dif" wraps PyOD's DIF to freeze its standardisation: see algorithms.dif.
    "pynomaly.algorithms.dif.DIFDetector": dif_to_onnx,
}
