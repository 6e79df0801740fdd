"""Shared pieces of the exported graphs: the I/O contract and the transform that widens it to float64, opsets,
tree sums."""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

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
    trees: Trees, n_features: int, out_name: str, *, float32_rows: bool = False
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing out_name: double[N] = sum over trees of the reached leaf's weight, for input X.

    One TreeEnsemble node in double: the sum then carries no float32 error, and on these CPUs it ran as fast
    as the float version (10k x 20, 100 trees: ~18 ms both). `float32_rows`: the splits compare the row rounded
    to float32, as sklearn's trees do (they take float32 X and compare it in double with float64 thresholds).
    """
    nodes, inits = tree_targets(trees, n_features, np.zeros(len(trees.leaf_weight), np.int64), 1, out_name + "_2d",
                                float32_rows=float32_rows)
    nodes.append(helper.make_node("Reshape", [out_name + "_2d", "flat_shape"], [out_name]))
    return nodes, [*inits, const("flat_shape", [-1], np.int64)]


def tree_targets(
    trees: Trees, n_features: int, leaf_targets: np.ndarray, n_targets: int, out_name: str, *,
    float32_rows: bool = False,
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing out_name: double[N, n_targets], target t = sum of reached leaves whose target is t.

    With one target per feature this is a per-feature decomposition of a sum of per-feature trees. Splits are
    x <= split in double, on the row as given or (`float32_rows`) rounded to float32 first.
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
    if float32_rows:
        rows = [helper.make_node("Cast", [INPUT_NAME], ["x32"], to=TensorProto.FLOAT),
                helper.make_node("Cast", ["x32"], ["x64"], to=TensorProto.DOUBLE)]
    else:
        rows = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    return [*rows, ensemble], []


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


# --- the served contract: float64 in, float64 out ---

_FLOAT_INPUT = INPUT_NAME + "__float"
_FLOAT = TensorProto.FLOAT
_DOUBLE = TensorProto.DOUBLE


def reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including those its subgraphs (If, Loop, Scan bodies) take from outside."""
    names = set(node.input)
    for attr in node.attribute:
        for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
            for inner in g.node:
                names |= reads(inner)
    return names


def _rename_reads(node: onnx.NodeProto, old: str, new: str) -> None:
    """Make node (and its subgraphs) read `new` where they read `old`, in place."""
    node.input[:] = [new if i == old else i for i in node.input]
    for attr in node.attribute:
        for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
            for inner in g.node:
                _rename_reads(inner, old, new)


def _cast_to(node: onnx.NodeProto) -> int:
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == "to")


def double_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """A converter's graph X float[N, F] -> float outputs, as the served contract X double[N, F] -> anomaly_score
    double[N] (and contributions double[N, F]); a graph already in it is returned as it is.

    Input: a Cast to double or float reads the float64 row itself: a graph that reads X only to widen it to double
    computes in float64 on the values it is given, as the native library does on float64 rows, and one that rounds
    X to float32 because its library does (sklearn's trees) rounds the float64 row. Any other reader (a float32
    network) reads the row rounded to float32, through one Cast. Outputs: a final Cast of a double to float is
    dropped (the double is served); a float output is widened.

    So a graph that computes in float64 becomes exact for float64 rows, provided it does not rely on float32
    inputs elsewhere (thresholds stored as float32 values, cut-offs found on the float32 line: such converters
    work on the float64 line instead), and float32 rows score as the float64 values they are.
    """
    (x,) = model.graph.input
    if x.type.tensor_type.elem_type == _DOUBLE:
        return model
    if x.name != INPUT_NAME or x.type.tensor_type.elem_type != _FLOAT:
        raise ValueError(f"expected the input {INPUT_NAME} float[N, F], got {x.name} {x.type}")
    model = copy.deepcopy(model)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in shape_inference.infer_shapes(model).graph.value_info}
    nodes = list(graph.node)
    for n in nodes:
        _rename_reads(n, INPUT_NAME, _FLOAT_INPUT)
        if n.op_type == "Cast" and list(n.input) == [_FLOAT_INPUT] and _cast_to(n) in (_FLOAT, _DOUBLE):
            # A Cast reads the double row: to double it passes it on, to float it rounds it as the float input was.
            n.input[0] = INPUT_NAME
    if any(_FLOAT_INPUT in reads(n) for n in nodes):
        nodes.insert(0, helper.make_node("Cast", [INPUT_NAME], [_FLOAT_INPUT], to=_FLOAT))
    producers = {o: n for n in nodes for o in n.output}
    for out in graph.output:
        if out.type.tensor_type.elem_type == _DOUBLE:
            continue
        last = producers[out.name]
        if last.op_type == "Cast" and _cast_to(last) == _FLOAT and types.get(last.input[0]) == _DOUBLE:
            last.CopyFrom(helper.make_node("Identity", list(last.input), [out.name], name=last.name))
        else:
            last.output[:] = [out.name + "__float" if o == out.name else o for o in last.output]
            nodes.append(helper.make_node("Cast", [out.name + "__float"], [out.name], to=_DOUBLE))
        out.type.tensor_type.elem_type = _DOUBLE
    graph.input[0].type.tensor_type.elem_type = _DOUBLE
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)  # the converter's graph had the full check (make_model)
    return model
