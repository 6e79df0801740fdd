"""LSCP (pyod 3.6.7 models/lscp.py) with its draw of feature subsets frozen (algorithms.supervised.lscp_score).

decision_function, per row: the members' scores, standardised with the scaler of their training scores
(test_norm); the local region: for each of 20 feature subsets the k = local_region_size nearest training rows
(KDTree), the rows found more than 10 times (lowered until 2 are found); per member the Pearson correlation
(scipy) over the region between the pseudo ground truth (each training row's largest standardised member score)
and the member's standardised training scores, NaN (constant input) made 0; np.histogram of the correlations
into min(n_bins, members) bins; argmaxn picks every bin holding the most members, and a member is competent for
each picked bin whose closed interval [edge_b, edge_b+1] holds its correlation; the score is the mean of the
competent members' test_norm (one counted twice where it sits on an edge shared by two picked bins).

The graph does each step per row: squared distances by MatMul on each subset's columns (centred on the training
mean) and TopK (exact ties go to the lower training index; the KD-tree's order differs, hence the algorithm's
export_limit), counts by ScatterElements, the correlations from region-masked sums in float64 with scipy's special
cases (constant input, 2 rows), the edges as np.linspace computes them. Exact to float64 rounding otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.utils.validation import check_is_fitted

from ._graph import INPUT_NAME, clipped_output, const, make_model
from .ensemble import _member_part


def lscp_subspaces(det: Any) -> list[np.ndarray]:
    """The feature subsets of the local regions that decision_function draws next, from a copy of the detector's
    RandomState (algorithms.supervised.lscp_score freezes the same draw): PyOD's _get_local_region, drawing only."""
    from pyod.utils.utility import generate_bagging_indices

    n_features = det.X_train_norm_.shape[1]
    if det.local_max_features == det.local_min_features:
        return [np.arange(n_features)] * det.local_region_iterations
    rng = copy.deepcopy(det.random_state)
    return [np.asarray(generate_bagging_indices(rng, bootstrap_features=False, n_features=n_features,
                                                min_features=int(n_features * det.local_min_features),
                                                max_features=int(n_features * det.local_max_features)))
            for _ in range(det.local_region_iterations)]


def _local_region(det: Any, subspaces: list[np.ndarray]) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing "region": double[N, n_train], 1 for the training rows of each row's local region."""
    train = np.asarray(det.X_train_norm_, np.float64)
    center = train.mean(axis=0)
    k = det.local_region_size
    nodes, inits = [helper.make_node("Sub", ["x64", "train_center"], ["xc"])], [
        const("train_center", center), const("train_t", (train - center).T), const("k", [k], np.int64)]
    picked = []
    for s, features in enumerate(subspaces):
        p = f"s{s}_"
        nodes += [  # |x - t|² = |x|² - 2 x·t + |t|² on the subset's columns, centred on the training mean
            helper.make_node("Gather", ["xc", p + "cols"], [p + "x"], axis=1),
            helper.make_node("Gather", ["train_t", p + "cols"], [p + "t"], axis=0),
            helper.make_node("Mul", [p + "t", p + "t"], [p + "t_sq"]),
            helper.make_node("ReduceSum", [p + "t_sq", "axis0"], [p + "t_norm"], keepdims=1),
            helper.make_node("Mul", [p + "x", p + "x"], [p + "x_sq"]),
            helper.make_node("ReduceSum", [p + "x_sq", "axis1"], [p + "x_norm"], keepdims=1),
            helper.make_node("MatMul", [p + "x", p + "t"], [p + "cross"]),
            helper.make_node("Mul", [p + "cross", "two"], [p + "cross2"]),
            helper.make_node("Sub", [p + "x_norm", p + "cross2"], [p + "partial"]),
            helper.make_node("Add", [p + "partial", p + "t_norm"], [p + "d2"]),
            helper.make_node("TopK", [p + "d2", "k"], [p + "near_d2", p + "near"], axis=1, largest=0, sorted=1),
        ]
        inits.append(const(p + "cols", features, np.int64))
        picked.append(p + "near")
    nodes += [
        helper.make_node("Concat", picked, ["picked"], axis=1),
        helper.make_node("Shape", ["xc"], ["x_shape"]),
        helper.make_node("Slice", ["x_shape", "zero_i", "one_i"], ["n_rows"]),
        helper.make_node("Concat", ["n_rows", "n_train"], ["counts_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["counts_shape"], ["no_counts"],
                         value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0])),
        helper.make_node("Shape", ["picked"], ["picked_shape"]),
        helper.make_node("ConstantOfShape", ["picked_shape"], ["ones"],
                         value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [1.0])),
        helper.make_node("ScatterElements", ["no_counts", "picked", "ones"], ["counts"], axis=1, reduction="add"),
        # PyOD keeps rows seen more than `threshold` (10) times, lowering it until 2 rows are kept: above
        # min(10, second-largest count - 1). (Where even that is < 1 PyOD fails an assertion; the graph keeps
        # every row seen.)
        helper.make_node("TopK", ["counts", "two_i"], ["top2", "top2_at"], axis=1, largest=1, sorted=1),
        helper.make_node("Slice", ["top2", "one_i", "two_i", "one_i"], ["second"]),
        helper.make_node("Sub", ["second", "one"], ["second_1"]),
        helper.make_node("Min", ["second_1", "threshold"], ["keep_above"]),
        helper.make_node("Greater", ["counts", "keep_above"], ["region_bool"]),
        helper.make_node("Cast", ["region_bool"], ["region"], to=TensorProto.DOUBLE),
    ]
    inits += [const("n_train", [len(train)], np.int64), const("zero_i", [0], np.int64),
              const("one_i", [1], np.int64), const("two_i", [2], np.int64),
              const("threshold", float(det.local_region_threshold)), const("axis0", [0], np.int64)]
    return nodes, inits


def _region_stats(v: str) -> list[onnx.NodeProto]:
    """For training values v (double[1, n]; v_col its column): over each row's region, the deviations from the
    mean (v_in, 0 outside), their norm (v_norm) and whether v is constant there (v_const)."""
    return [
        helper.make_node("MatMul", ["region", v + "_col"], [v + "_sum"]),
        helper.make_node("Div", [v + "_sum", "region_n"], [v + "_mean"]),
        helper.make_node("Sub", [v, v + "_mean"], [v + "_dev"]),
        helper.make_node("Mul", [v + "_dev", "region"], [v + "_in"]),
        helper.make_node("Mul", [v + "_in", v + "_in"], [v + "_sq"]),
        helper.make_node("ReduceSum", [v + "_sq", "axis1"], [v + "_ss"], keepdims=1),
        helper.make_node("Sqrt", [v + "_ss"], [v + "_norm"]),
        helper.make_node("Where", ["region_bool", v, "inf"], [v + "_low"]),
        helper.make_node("ReduceMin", [v + "_low", "axis1"], [v + "_min"], keepdims=1),
        helper.make_node("Where", ["region_bool", v, "neg_inf"], [v + "_high"]),
        helper.make_node("ReduceMax", [v + "_high", "axis1"], [v + "_max"], keepdims=1),
        helper.make_node("Equal", [v + "_min", v + "_max"], [v + "_const"]),
    ]


def _correlation(y: str, s: str, out: str) -> list[onnx.NodeProto]:
    """out: double[N, 1] = scipy's pearsonr of y and s over each row's region (their _region_stats), with PyOD's
    nan_to_num: 0 where either is constant on the region; ±1 exactly on a region of 2 rows."""
    return [
        helper.make_node("Mul", [y + "_in", s + "_in"], [out + "_xy"]),
        helper.make_node("ReduceSum", [out + "_xy", "axis1"], [out + "_cov"], keepdims=1),
        helper.make_node("Mul", [y + "_norm", s + "_norm"], [out + "_scale"]),
        helper.make_node("Div", [out + "_cov", out + "_scale"], [out + "_raw"]),
        helper.make_node("Clip", [out + "_raw", "minus_one", "one"], [out + "_clip"]),
        helper.make_node("Round", [out + "_clip"], [out + "_round"]),
        helper.make_node("Where", ["region_is_2", out + "_round", out + "_clip"], [out + "_r"]),
        helper.make_node("Or", [y + "_const", s + "_const"], [out + "_undefined"]),
        helper.make_node("IsNaN", [out + "_r"], [out + "_nan"]),
        helper.make_node("Or", [out + "_undefined", out + "_nan"], [out + "_zero"]),
        helper.make_node("Where", [out + "_zero", "zero", out + "_r"], [out]),
    ]


def _competent_mean(n_bins: int, n_members: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """"score64": double[N] = mean of "test_norm" over PyOD's competent members: np.histogram(r, n_bins), every
    bin holding the most members, its members those in [edge_b, edge_b+1] (a member on a shared edge counts twice)."""
    nodes = [
        helper.make_node("ReduceMin", ["r", "axis1"], ["r_lo"], keepdims=1),
        helper.make_node("ReduceMax", ["r", "axis1"], ["r_hi"], keepdims=1),
        helper.make_node("Equal", ["r_lo", "r_hi"], ["r_flat"]),
        helper.make_node("Sub", ["r_lo", "half"], ["r_lo_wide"]),
        helper.make_node("Add", ["r_hi", "half"], ["r_hi_wide"]),
        helper.make_node("Where", ["r_flat", "r_lo_wide", "r_lo"], ["first_edge"]),
        helper.make_node("Where", ["r_flat", "r_hi_wide", "r_hi"], ["last_edge"]),
        # np.linspace: i * ((last - first) / bins) + first, the last edge `last` itself
        helper.make_node("Sub", ["last_edge", "first_edge"], ["edge_span"]),
        helper.make_node("Div", ["edge_span", "n_bins"], ["edge_step"]),
        helper.make_node("Mul", ["edge_step", "edge_index"], ["edge_offset"]),
        helper.make_node("Add", ["edge_offset", "first_edge"], ["lower"]),  # [N, bins]: edges 0..bins-1
        helper.make_node("Slice", ["lower", "one_i", "n_bins_i", "one_i"], ["inner_edges"]),
        helper.make_node("Concat", ["inner_edges", "last_edge"], ["upper"], axis=1),  # edges 1..bins
        helper.make_node("Unsqueeze", ["r", "axis2"], ["r3"]),  # [N, members, 1]
        helper.make_node("Unsqueeze", ["inner_edges", "axis1"], ["inner3"]),
        helper.make_node("GreaterOrEqual", ["r3", "inner3"], ["past_edge"]),
        helper.make_node("Cast", ["past_edge"], ["past_edge64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["past_edge64", "axis2"], ["bin"], keepdims=1),  # [N, members, 1]
        helper.make_node("Equal", ["bin", "bin_ids"], ["in_bin"]),  # [N, members, bins]
        helper.make_node("Cast", ["in_bin"], ["in_bin64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["in_bin64", "axis1"], ["hist"], keepdims=1),  # [N, 1, bins]
        helper.make_node("ReduceMax", ["hist", "axis2"], ["fullest"], keepdims=1),
        helper.make_node("Equal", ["hist", "fullest"], ["chosen_bin"]),
        helper.make_node("Unsqueeze", ["lower", "axis1"], ["lower3"]),
        helper.make_node("Unsqueeze", ["upper", "axis1"], ["upper3"]),
        helper.make_node("GreaterOrEqual", ["r3", "lower3"], ["above_lower"]),
        helper.make_node("LessOrEqual", ["r3", "upper3"], ["below_upper"]),
        helper.make_node("And", ["above_lower", "below_upper"], ["within"]),
        helper.make_node("And", ["within", "chosen_bin"], ["selected"]),
        helper.make_node("Cast", ["selected"], ["selected64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["selected64", "axis2"], ["chosen_times"], keepdims=0),  # [N, members]
        # Correlations within a few float64 steps of each other: np.histogram cannot make increasing edges and
        # raises (PyOD's score fails); the graph counts every member once there.
        helper.make_node("GreaterOrEqual", ["lower", "upper"], ["edges_not_increasing"]),
        helper.make_node("Cast", ["edges_not_increasing"], ["edges_not_increasing64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceMax", ["edges_not_increasing64", "axis1"], ["degenerate64"], keepdims=1),
        helper.make_node("Cast", ["degenerate64"], ["degenerate"], to=TensorProto.BOOL),
        helper.make_node("Where", ["degenerate", "one", "chosen_times"], ["times"]),
        helper.make_node("Mul", ["times", "test_norm"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["weighted_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["times", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["weighted_sum", "count"], ["score64"]),
    ]
    inits = [const("half", 0.5), const("n_bins", float(n_bins)), const("edge_index", np.arange(n_bins)),
             const("n_bins_i", [n_bins], np.int64), const("bin_ids", np.arange(n_bins).reshape(1, 1, n_bins))]
    return nodes, inits


def lscp_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals algorithms.supervised.lscp_score: LSCP with its draw of subsets frozen."""
    from sklearn.preprocessing import StandardScaler

    check_is_fitted(det, ["training_pseudo_label_", "train_scores_", "X_train_norm_", "n_features_"])
    _check_width(n_features, det.n_features_, "LSCP")
    if det.random_state is np.random.mtrand._rand:
        raise ValueError("its random_state is NumPy's global generator: the feature subsets it draws are not fixed")
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    inits = [const("axis1", [1], np.int64), const("axis2", [2], np.int64)]
    columns = []
    for i, est in enumerate(det.detector_list):
        part = _member_part(est, n_features, f"m{i}_", "x64", what=f"member {i} ({type(est).__name__})")
        nodes += [*part.nodes, helper.make_node("Unsqueeze", [part.score, "axis1"], [f"col{i}"])]
        inits += part.initializers
        columns.append(f"col{i}")
    scaler = StandardScaler().fit(det.train_scores_)  # PyOD's standardizer(train_scores_, test_scores)
    train_norm = scaler.transform(det.train_scores_)
    nodes += [helper.make_node("Concat", columns, ["member_scores"], axis=1),
              helper.make_node("Sub", ["member_scores", "score_mean"], ["member_centered"]),
              helper.make_node("Div", ["member_centered", "score_scale"], ["test_norm"])]
    inits += [const("score_mean", scaler.mean_), const("score_scale", scaler.scale_)]
    region_nodes, region_inits = _local_region(det, lscp_subspaces(det))
    nodes += [*region_nodes,
              helper.make_node("ReduceSum", ["region", "axis1"], ["region_n"], keepdims=1),
              helper.make_node("Equal", ["region_n", "two"], ["region_is_2"])]
    inits += [*region_inits, const("pseudo", train_norm.max(axis=1).reshape(1, -1)),
              const("pseudo_col", train_norm.max(axis=1).reshape(-1, 1)), const("inf", np.inf),
              const("neg_inf", -np.inf), const("zero", 0.0), const("one", 1.0), const("minus_one", -1.0),
              const("two", 2.0)]
    correlations = []
    nodes += _region_stats("pseudo")
    for k in range(train_norm.shape[1]):
        inits += [const(f"member{k}", train_norm[:, k].reshape(1, -1)),
                  const(f"member{k}_col", train_norm[:, k].reshape(-1, 1))]
        nodes += [*_region_stats(f"member{k}"), *_correlation("pseudo", f"member{k}", f"corr{k}")]
        correlations.append(f"corr{k}")
    nodes.append(helper.make_node("Concat", correlations, ["r"], axis=1))
    mean_nodes, mean_inits = _competent_mean(min(det.n_bins, len(correlations)), len(correlations))
    out_nodes, out_inits = clipped_output("score64")
    return make_model(nodes + mean_nodes + out_nodes, inits + mean_inits + out_inits, n_features, "lscp")


def _check_width(n_features: int, fitted: int, what: str) -> None:
    if n_features != fitted:
        raise ValueError(f"n_features={n_features} but the {what} was fitted on {fitted}")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.lscp.LSCP": lscp_to_onnx,
}
