"""The label-free AutoML ensemble (pynomaly.algorithms.auto.AutoEnsemble) as one graph: each kept member's own
served graph (names prefixed, fed the float64 rows), its score standardised with the constants frozen at training,
the mean of those. Exact when the members' graphs are; the members were each verified at training.

Where every member is additive (its graph has a contributions output that sums to its score: HBOS, ECOD, COPOD,
PCA), so is the ensemble: score = Σ_f (1/k) Σ_m c_mf / σ_m  -  (1/k) Σ_m μ_m / σ_m. Its contributions output is the
first sum per feature plus the constant spread evenly over the features, so the terms sum to the score and Explain
is exact (explain.EXACT: centred on the training means, where the constant cancels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ._graph import CONTRIBUTIONS_NAME, INPUT_NAME, clipped_output, const, make_model
from .ensemble import _combine, _member_graph, _member_part


def auto_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals AutoEnsemble.decision_function (and, for additive members, its contributions)."""
    if not getattr(det, "members_", None):
        raise ValueError("the AutoEnsemble is not fitted")
    names = [f"member {i} ({name})" for i, name in enumerate(det.member_algorithms_)]
    graphs = [_member_graph(m, n_features, what) for m, what in zip(det.members_, names, strict=True)]
    additive = all([o.name for o in g.graph.output] == ["anomaly_score", CONTRIBUTIONS_NAME] for g in graphs)
    prelude = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    parts = [_member_part(m, n_features, f"m{i}_", "x64", what=what, with_terms=additive, model=g)
             for i, (m, what, g) in enumerate(zip(det.members_, names, graphs, strict=True))]
    means, scales = np.asarray(det.means_, np.float64), np.asarray(det.scales_, np.float64)
    if not additive:
        return _combine(parts, "mean", n_features, "auto", prelude=prelude, standardize=(means, scales))
    k = len(parts)
    nodes, inits = list(prelude), [const("axis1", [1], np.int64), const("scaler_mean", means),
                                   const("scaler_scale", scales)]
    for i, p in enumerate(parts):
        nodes += [*p.nodes, helper.make_node("Unsqueeze", [p.score, "axis1"], [f"col{i}"]),
                  helper.make_node("Mul", [p.terms, f"term_weight{i}"], [f"terms{i}"])]
        inits += [*p.initializers, const(f"term_weight{i}", np.float64(1.0 / (k * scales[i])))]
    nodes += [
        helper.make_node("Concat", [f"col{i}" for i in range(k)], ["member_scores"], axis=1),
        helper.make_node("Sub", ["member_scores", "scaler_mean"], ["centered_scores"]),
        helper.make_node("Div", ["centered_scores", "scaler_scale"], ["standard_scores"]),
        helper.make_node("ReduceMean", ["standard_scores", "axis1"], ["score64"], keepdims=0),
        helper.make_node("Sum", [f"terms{i}" for i in range(k)], ["terms_sum"]),
        helper.make_node("Add", ["terms_sum", "term_offset"], ["terms64"]),
        helper.make_node("Cast", ["terms64"], [CONTRIBUTIONS_NAME], to=TensorProto.FLOAT),
    ]
    inits.append(const("term_offset", np.float64(-np.sum(means / scales) / k / n_features)))
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + out_nodes, inits + out_inits, n_features, "auto", contributions=True)


CONVERTERS = {"pynomaly.algorithms.auto.AutoEnsemble": auto_to_onnx}
