"""Ensembles (pyod 3.6.7): LODA built directly; FeatureBagging and SUOD composed from their members' graphs.

LODA (models/loda.py): p_i = projections_[i] · x; k_i = searchsorted(limits_i[:n_bins_i - 1], p_i, 'left');
score = Σ_i -weights[i] log(histograms_i[k_i]) / n_random_cuts. One float64 MatMul gives every p_i; one
TreeEnsemble holds a balanced search tree per projection (leaf j for t_{j-1} < p <= t_j, as searchsorted
'left') and sums the leaf values in float64. The edges are those of `algorithms.ensemble.loda_bins`, raised by
1e-12 of the projection's scale so that rows exactly on an edge (the training row that set the lowest one; data
with repeated values, e.g. ADBench ionosphere) fall on the same side whichever way a dot product rounds (without
it, 149 of 20,000 training rows of 10 seeded float32 fits scored off); the reference score, `loda_score`, uses
the same edges. The TreeEnsemble ran faster than computing the equal-width bin arithmetically and correcting it
with Gathers of the edges (37 ms against 67 ms on 10k rows).

Members: `pynomaly.export.to_onnx` converts each fitted member to the served contract (float64 rows in, float64
score out); its names get a prefix, its input is wired to the float64 values the member sees natively, and its
float64 score is combined, so combining adds no float32 rounding.

FeatureBagging (models/feature_bagging.py): member i scores X[:, estimators_features_[i]]; combined by
combo's average (mean) or maximization (max). Exact when the members' graphs are.

SUOD (models/suod.py, suod 0.1.4 models/parallel_processes.py): member i scores X_i = X @ jl_i when it was
fitted on a Johnson-Lindenstrauss projection (jl_i is ones((F, F)) otherwise, meaning no projection), then
either its random-forest approximator (sklearn casts X_i to float32, then each tree compares in double:
TreeEnsembles summing the trees, on float32-rounded X_i) or its own decision_function (its graph fed the
float64 X_i). Scores are standardised with the fitted StandardScaler and averaged or maximised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.utils.validation import check_is_fitted

from pynomaly.algorithms.ensemble import loda_bins

from ._graph import (
    DEFAULT_OPSET,
    INPUT_NAME,
    ML_DOMAIN,
    ML_OPSET,
    Trees,
    clipped_output,
    concat_trees,
    const,
    make_model,
    reads,
)
from ._registry import ExportError, to_onnx
from .hbos import _search_tree

_SUM = 1
_GROUP_NODES = 8192
_TREE_LEAF = -1


def _check_width(n_features: int, fitted: int, what: str) -> None:
    if n_features != fitted:
        raise ValueError(f"n_features={n_features} but the {what} was fitted on {fitted}")


def _tree_ensemble(trees: Trees, x: str, out: str, aggregate: int) -> onnx.NodeProto:
    """One double TreeEnsemble over x: double[N, F] -> out: double[N, 1]."""
    return helper.make_node(
        "TreeEnsemble",
        [x],
        [out],
        domain=ML_DOMAIN,
        aggregate_function=aggregate,
        post_transform=0,
        n_targets=1,
        tree_roots=trees.roots.tolist(),
        nodes_featureids=trees.feature.tolist(),
        nodes_modes=const("nodes_modes", np.zeros(len(trees.feature)), np.uint8),
        nodes_splits=const("nodes_splits", trees.split),
        nodes_truenodeids=trees.true_id.tolist(),
        nodes_trueleafs=trees.true_leaf.tolist(),
        nodes_falsenodeids=trees.false_id.tolist(),
        nodes_falseleafs=trees.false_leaf.tolist(),
        leaf_targetids=[0] * len(trees.leaf_weight),
        leaf_weights=const("leaf_weights", trees.leaf_weight),
    )


def _one_leaf(value: float) -> Trees:
    """A tree that always lands on one leaf (TreeEnsemble needs a node: both branches reach the leaf)."""
    one, zero = np.ones(1, np.int64), np.zeros(1, np.int64)
    return Trees(zero, zero, np.array([np.inf]), zero, one, zero, one, np.array([value], np.float64))


# --- LODA ---


def _loda_cut(det: Any, i: int) -> Trees:
    edges, values = loda_bins(det, i)
    return _search_tree(i, edges, values) if len(edges) else _one_leaf(values[0])


def loda_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD LODA's decision_function."""
    check_is_fitted(det, ["projections_", "histograms_", "limits_", "threshold_"])
    projections = np.asarray(det.projections_, np.float64)
    _check_width(n_features, projections.shape[1], "LODA")
    trees = concat_trees([_loda_cut(det, i) for i in range(det.n_random_cuts)])
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("MatMul", ["x64", "projections_t"], ["projected"]),
        _tree_ensemble(trees, "projected", "score_2d", _SUM),
        helper.make_node("Reshape", ["score_2d", "flat"], ["score64"]),
    ]
    inits = [const("projections_t", projections.T), const("flat", [-1], np.int64)]
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + out_nodes, inits + out_inits, n_features, "loda")


# --- members ---


class _Part(NamedTuple):
    nodes: list[onnx.NodeProto]
    initializers: list[onnx.TensorProto]
    score: str  # double[N]
    terms: str = ""  # double[N, F], the member's contributions, where kept (with_terms)


def _member_graph(est: Any, n_features: int, what: str) -> onnx.ModelProto:
    try:
        model = to_onnx(est, n_features)
    except ExportError as e:
        raise ValueError(f"{what}: {e}") from None
    for opset in model.opset_import:
        expected = {"": DEFAULT_OPSET, ML_DOMAIN: ML_OPSET}.get(opset.domain)
        if opset.version != expected:
            raise ValueError(f"{what}: its graph imports {opset.domain or 'ai.onnx'} {opset.version}; an ensemble "
                             f"graph can hold ai.onnx {DEFAULT_OPSET} and {ML_DOMAIN} {ML_OPSET} only")
    return model


def _prefix_names(graph: onnx.GraphProto, prefix: str) -> None:
    """Prefix every name in graph and its subgraphs, in place.

    onnx.compose.add_prefix leaves a subgraph's references to names of the enclosing graph unprefixed (seen with
    the Loop of the LOF graph); renaming every name at every level keeps them consistent.
    """

    def rename(name: str) -> str:
        return prefix + name if name else name

    for values in (graph.input, graph.output, graph.value_info):
        for v in values:
            v.name = rename(v.name)
    for t in graph.initializer:
        t.name = rename(t.name)
    for node in graph.node:
        node.name = rename(node.name)
        node.input[:] = [rename(i) for i in node.input]
        node.output[:] = [rename(o) for o in node.output]
        for attr in node.attribute:
            for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                _prefix_names(g, prefix)


def _member_part(est: Any, n_features: int, prefix: str, feed: str, *, what: str, with_terms: bool = False,
                 model: onnx.ModelProto | None = None) -> _Part:
    """The member's served graph (float64 rows in, float64 score out) with names prefixed, reading `feed`
    (double[N, f]: the values the member sees natively); `with_terms`: its contributions output too (the graph
    must have one). `model`: the member's graph where the caller converted it already."""
    model = model if model is not None else _member_graph(est, n_features, what)
    if model.graph.sparse_initializer or model.functions:
        raise ValueError(f"{what}: graphs with sparse initializers or functions cannot be composed")
    _prefix_names(model.graph, prefix)
    graph = model.graph
    score = graph.output[0].name
    terms = graph.output[1].name if with_terms else ""
    nodes = [helper.make_node("Identity", [feed], [graph.input[0].name]), *graph.node]
    # Keep only what the score (and the terms, where asked) need, not other outputs.
    needed, kept = {score, terms} - {""}, []
    for n in reversed(nodes):
        if needed.intersection(n.output):
            needed.update(reads(n))
            kept.append(n)
    kept.reverse()
    return _Part(kept, [t for t in graph.initializer if t.name in needed], score, terms)


def _combine(parts: list[_Part], how: str, n_features: int, name: str, *, prelude: list[onnx.NodeProto],
             standardize: tuple[np.ndarray, np.ndarray] | None = None) -> onnx.ModelProto:
    nodes, inits = list(prelude), [const("axis1", [1], np.int64)]
    columns = []
    for i, p in enumerate(parts):
        nodes += p.nodes
        inits += p.initializers
        nodes.append(helper.make_node("Unsqueeze", [p.score, "axis1"], [f"col{i}"]))
        columns.append(f"col{i}")
    nodes.append(helper.make_node("Concat", columns, ["member_scores"], axis=1))
    scores = "member_scores"
    if standardize is not None:
        mean, scale = standardize
        nodes += [
            helper.make_node("Sub", [scores, "scaler_mean"], ["centered_scores"]),
            helper.make_node("Div", ["centered_scores", "scaler_scale"], ["standard_scores"]),
        ]
        inits += [const("scaler_mean", mean), const("scaler_scale", scale)]
        scores = "standard_scores"
    reduce = {"mean": "ReduceMean", "max": "ReduceMax"}[how]
    nodes.append(helper.make_node(reduce, [scores, "axis1"], ["score64"], keepdims=0))
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + out_nodes, inits + out_inits, n_features, name)


# --- FeatureBagging ---


def feature_bagging_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD FeatureBagging's decision_function."""
    check_is_fitted(det, ["estimators_", "estimators_features_", "threshold_"])
    _check_width(n_features, det.n_features_, "FeatureBagging")
    parts, prelude = [], [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    for i, (est, features) in enumerate(zip(det.estimators_, det.estimators_features_, strict=True)):
        feed = f"features{i}"
        prelude.append(helper.make_node("Gather", ["x64", f"features{i}_idx"], [feed], axis=1))
        part = _member_part(est, len(features), f"m{i}_", feed, what=f"member {i} ({type(est).__name__})")
        parts.append(part._replace(initializers=[*part.initializers,
                                                 const(f"features{i}_idx", np.asarray(features), np.int64)]))
    how = "mean" if det.combination == "average" else "max"
    return _combine(parts, how, n_features, "feature_bagging", prelude=prelude)


# --- SUOD ---


def _regression_tree(tree: Any) -> Trees:
    """A fitted sklearn regression tree; split x <= threshold (x a float32 value, compared in double)."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    is_leaf = left == _TREE_LEAF
    values = t.value[:, 0, 0]
    if is_leaf[0]:
        return _one_leaf(float(values[0]))
    new_id = np.where(is_leaf, np.cumsum(is_leaf) - 1, np.cumsum(~is_leaf) - 1)
    inner = np.flatnonzero(~is_leaf)
    return Trees(
        roots=np.zeros(1, np.int64),
        feature=t.feature[inner].astype(np.int64),
        split=t.threshold[inner].astype(np.float64),
        true_id=new_id[left[inner]],
        true_leaf=is_leaf[left[inner]].astype(np.int64),
        false_id=new_id[right[inner]],
        false_leaf=is_leaf[right[inner]].astype(np.int64),
        leaf_weight=values[is_leaf].astype(np.float64),
    )


def _forest_part(forest: Any, x: str, prefix: str) -> _Part:
    """A RandomForestRegressor's predict on x: double[N, f] holding float32 values (sklearn's tree input).

    The mean of the trees, summed in double. Trees go into TreeEnsembles of at most _GROUP_NODES nodes each:
    onnxruntime walks every tree of an ensemble for one row before the next row, and a forest of deep trees
    (50 × 6k nodes) then misses the cache at every level; one tree per node scored 5k rows 6-9× faster.
    """
    check_is_fitted(forest, ["estimators_"])
    groups: list[list[Trees]] = []
    for tree in (_regression_tree(t) for t in forest.estimators_):
        if groups and sum(len(t.feature) for t in groups[-1]) + len(tree.feature) <= _GROUP_NODES:
            groups[-1].append(tree)
        else:
            groups.append([tree])
    sums = [f"{prefix}sum{g}" for g in range(len(groups))]
    nodes = [_tree_ensemble(concat_trees(trees), x, name, _SUM) for trees, name in zip(groups, sums, strict=True)]
    nodes += [
        helper.make_node("Sum", sums, [prefix + "total"]),
        helper.make_node("Div", [prefix + "total", prefix + "n_trees"], [prefix + "mean"]),
        helper.make_node("Reshape", [prefix + "mean", prefix + "flat"], [prefix + "score"]),
    ]
    inits = [const(prefix + "n_trees", float(len(forest.estimators_))), const(prefix + "flat", [-1], np.int64)]
    return _Part(nodes, inits, prefix + "score")


def suod_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals PyOD SUOD's decision_function."""
    check_is_fitted(det, ["model_", "score_scalar_", "threshold_"])
    suod = det.model_
    if not hasattr(suod, "approximators"):  # suod's own model is no sklearn estimator
        raise ValueError("the SUOD model is not fitted and approximated")
    prelude: list[onnx.NodeProto] = []
    parts: list[_Part] = []
    members = zip(suod.base_estimators, suod.approximators, suod.jl_transformers_,
                  np.ravel(suod.approx_flags), strict=True)
    for i, (est, approximator, jl, approx) in enumerate(members):
        what, prefix = f"member {i} ({type(est).__name__})", f"m{i}_"
        jl = np.asarray(jl, np.float64)
        # suod's own test for "not projected" (jl_transform).
        projected = not np.array_equal(jl, np.ones([n_features, n_features]))
        if projected:
            _check_width(n_features, jl.shape[0], f"{what} projection")
            prelude.append(helper.make_node("MatMul", ["x64", prefix + "jl"], [prefix + "p64"]))
        width = jl.shape[1] if projected else n_features
        seen = prefix + "p64" if projected else "x64"
        if approx == 1:
            # sklearn's trees read float32: round the (projected) rows as they do.
            prelude += [
                helper.make_node("Cast", [seen], [prefix + "p32"], to=TensorProto.FLOAT),
                helper.make_node("Cast", [prefix + "p32"], [prefix + "p32_64"], to=TensorProto.DOUBLE),
            ]
            _check_width(width, approximator.n_features_in_, f"{what} approximator")
            part = _forest_part(approximator, prefix + "p32_64", prefix)
        else:
            part = _member_part(est, width, prefix, seen, what=what)
        if projected:
            part = part._replace(initializers=[*part.initializers, const(prefix + "jl", jl)])
        parts.append(part)
    prelude.insert(0, helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE))
    scaler = det.score_scalar_
    mean = np.asarray(scaler.mean_ if scaler.with_mean else np.zeros(len(parts)), np.float64)
    scale = np.asarray(scaler.scale_ if scaler.with_std else np.ones(len(parts)), np.float64)
    how = "mean" if det.combination == "average" else "max"
    return _combine(parts, how, n_features, "suod", prelude=prelude, standardize=(mean, scale))


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.loda.LODA": loda_to_onnx,
    "pyod.models.feature_bagging.FeatureBagging": feature_bagging_to_onnx,
    "pyod.models.suod.SUOD": suod_to_onnx,
}
