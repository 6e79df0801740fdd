"""Shared pieces of the exported graphs: the I/O contract, opsets, float32-exact thresholds, tree sums."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "X"
OUTPUT_NAME = "anomaly_score"
CONTRIBUTIONS_NAME = "contributions"
BATCH_DIM = "N"

DEFAULT_OPSET = 21
ML_DOMAIN = "ai.onnx.ml"
# ai.onnx.ml 5 has TreeEnsemble (float and double); its deprecated TreeEnsembleRegressor fails the checker.
ML_OPSET = 5

_BRANCH_LEQ = 0
_SUM = 1


def floor_f32(values: np.ndarray) -> np.ndarray:
    """Largest float32 <= each float64 value, returned as float64 (exactly representable in both).

    Served inputs are float32, so for a float32 x: x <= t iff x <= floor_f32(t), and x > t iff
    x > floor_f32(t). Storing floor_f32(t) keeps a split exact whether the tree compares in float or double.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    # Round-to-nearest may land above the value; step one float32 down in that case.
    down = np.where(nearest.astype(np.float64) > values, np.nextafter(nearest, np.float32(-np.inf)), nearest)
    return down.astype(np.float64)


def const(name: str, value: npt.ArrayLike, dtype: type = np.float64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)


class Trees(NamedTuple):
    """Binary trees in TreeEnsemble's encoding: per interior node, `x[feature] <= split` goes to the true
    child; a child id indexes leaf_weight when its *_leaf flag is 1, else the interior-node arrays."""

    roots: np.ndarray
    feature: np.ndarray
    split: np.ndarray
    true_id: np.ndarray
    true_leaf: np.ndarray
    false_id: np.ndarray
    false_leaf: np.ndarray
    leaf_weight: np.ndarray


def concat_trees(parts: list[Trees]) -> Trees:
    """Join trees numbered from 0 each into one ensemble, shifting node and leaf ids."""
    node_base = np.cumsum([0] + [len(p.feature) for p in parts[:-1]])
    leaf_base = np.cumsum([0] + [len(p.leaf_weight) for p in parts[:-1]])

    def shifted(p: Trees, ids: np.ndarray, is_leaf: np.ndarray, i: int) -> np.ndarray:
        return ids + np.where(is_leaf == 1, leaf_base[i], node_base[i])

    return Trees(
        roots=np.concatenate([p.roots + node_base[i] for i, p in enumerate(parts)]),
        feature=np.concatenate([p.feature for p in parts]),
        split=np.concatenate([p.split for p in parts]),
        true_id=np.concatenate([shifted(p, p.true_id, p.true_leaf, i) for i, p in enumerate(parts)]),
        true_leaf=np.concatenate([p.true_leaf for p in parts]),
        false_id=np.concatenate([shifted(p, p.false_id, p.false_leaf, i) for i, p in enumerate(parts)]),
        false_leaf=np.concatenate([p.false_leaf for p in parts]),
        leaf_weight=np.concatenate([p.leaf_weight for p in parts]),
    )


def tree_sum(
    trees: Trees, n_features: int, out_name: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing out_name: double[N] = sum over trees of the reached leaf's weight, for input X.

    One TreeEnsemble node in double: the sum then carries no float32 error, and on these CPUs it ran as fast
    as the float version (10k x 20, 100 trees: ~18 ms both).
    """
    nodes, inits = tree_targets(trees, n_features, np.zeros(len(trees.leaf_weight), np.int64), 1, out_name + "_2d")
    nodes.append(helper.make_node("Reshape", [out_name + "_2d", "flat_shape"], [out_name]))
    return nodes, [*inits, const("flat_shape", [-1], np.int64)]


def tree_targets(
    trees: Trees, n_features: int, leaf_targets: np.ndarray, n_targets: int, out_name: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing out_name: double[N, n_targets], target t = sum of reached leaves whose target is t.

    With one target per feature this is a per-feature decomposition of a sum of per-feature trees.
    """
    if trees.feature.size and (trees.feature.min() < 0 or trees.feature.max() >= n_features):
        raise ValueError(f"trees use feature ids outside [0, {n_features})")
    ensemble = helper.make_node(
        "TreeEnsemble",
        ["x64"],
        [out_name],
        domain=ML_DOMAIN,
        aggregate_function=_SUM,
        post_transform=0,
        n_targets=n_targets,
        tree_roots=trees.roots.tolist(),
        nodes_featureids=trees.feature.tolist(),
        nodes_modes=const("nodes_modes", np.full(len(trees.feature), _BRANCH_LEQ), np.uint8),
        nodes_splits=const("nodes_splits", trees.split),
        nodes_truenodeids=trees.true_id.tolist(),
        nodes_trueleafs=trees.true_leaf.tolist(),
        nodes_falsenodeids=trees.false_id.tolist(),
        nodes_falseleafs=trees.false_leaf.tolist(),
        leaf_targetids=np.asarray(leaf_targets).tolist(),
        leaf_weights=const("leaf_weights", trees.leaf_weight),
    )
    return [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE), ensemble], []


_F32_MAX = float(np.finfo(np.float32).max)


def clipped_output(src: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The double score `src` clipped to the float32 range, then cast to the float output: a quadratic score of a
    huge row stays finite when served."""
    nodes = [
        helper.make_node("Clip", [src, "f32_min", "f32_max"], [src + "_clipped"]),
        helper.make_node("Cast", [src + "_clipped"], [OUTPUT_NAME], to=TensorProto.FLOAT),
    ]
    return nodes, [const("f32_min", -_F32_MAX), const("f32_max", _F32_MAX)]


def make_model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    n_features: int,
    graph_name: str,
    contributions: bool = False,
) -> onnx.ModelProto:
    """Wrap nodes into the served contract: X float[N, F] -> anomaly_score float[N], then check it.

    With `contributions`, the nodes also compute CONTRIBUTIONS_NAME float[N, F]: per-feature terms that sum to
    the score (the exact explanation of additive detectors).
    """
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, n_features])
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM])]
    if contributions:
        outputs.append(helper.make_tensor_value_info(CONTRIBUTIONS_NAME, TensorProto.FLOAT, [BATCH_DIM, n_features]))
    graph = helper.make_graph(nodes, graph_name, [x], outputs, initializer=initializers)
    opsets = [helper.make_opsetid("", DEFAULT_OPSET)]
    if any(n.domain == ML_DOMAIN for n in nodes):
        opsets.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    # IR 10 is what onnx 1.23 pairs with opset 21; a newer IR would only shut out older runtimes.
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10, producer_name="pynomaly")
    onnx.checker.check_model(model, full_check=True)
    return model
