"""XGBOD and LSCP (algorithms.supervised, export.supervised): what test_export_contract does not check. Their cases
are in cases_supervised.py."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from pynomaly import algorithms
from pynomaly.algorithms.ensemble import member
from pynomaly.errors import InvalidArgument
from pynomaly.export import to_onnx
from pynomaly.export.supervised import _float32

import export_checks as checks
import export_data as data

N_FEATURES = data.ENSEMBLE_FEATURES
_MEMBERS = {"estimator_list": ["hbos", {"algorithm": "iforest", "params": {"n_estimators": 10}}],
            "n_estimators": 10}


def _xgbod(**params: Any) -> Any:
    """PyOD's XGBOD on two quick members, fitted on the ensembles' data and its far rows as labels."""
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.xgbod import XGBOD

    train = data.ensemble_train("normal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = XGBOD(estimator_list=[HBOS(), IForest(n_estimators=10, random_state=0)],
                    standardization_flag_list=[False, True], n_estimators=5, silent=None, **params)
        return det.fit(train, data.far_labels(train))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"estimator_list": []}, r"params\.estimator_list: must be null or a list of at least 1 member"),
        ({"estimator_list": ["xgbod"]}, r"params\.estimator_list: must be null or a list of at least 1 member"),
        ({"estimator_list": "hbos"}, r"params\.estimator_list: must be null or a list"),
        ({"standardization_flag_list": []}, r"params\.standardization_flag_list: must be null or a non-empty list"),
        ({"standardization_flag_list": [1]}, r"params\.standardization_flag_list: must be true or false"),
        ({"max_depth": 0}, r"params\.max_depth: must be an integer in \[1, 30\]"),
        ({"learning_rate": 0}, r"params\.learning_rate: must be in \(0\.0, 1\.0\]"),
        ({"n_estimators": 0}, r"params\.n_estimators: must be an integer in \[1, 5000\]"),
        ({"objective": "binary:hinge"}, r"params\.objective: must be one of \"binary:logistic\", \"binary:logitraw\""),
        ({"booster": "dart"}, r"params\.booster: must be one of \"gbtree\""),
        ({"gamma": -1}, r"params\.gamma: must be in \[0\.0, inf\]"),
        ({"min_child_weight": -1}, r"params\.min_child_weight: must be in \[0\.0, inf\]"),
        ({"max_delta_step": -0.5}, r"params\.max_delta_step: must be in \[0\.0, inf\]"),
        ({"subsample": 0}, r"params\.subsample: must be in \(0\.0, 1\.0\]"),
        ({"colsample_bytree": 1.5}, r"params\.colsample_bytree: must be in \(0\.0, 1\.0\]"),
        ({"colsample_bylevel": 0}, r"params\.colsample_bylevel: must be in \(0\.0, 1\.0\]"),
        ({"reg_alpha": -1}, r"params\.reg_alpha: must be in \[0\.0, inf\]"),
        ({"reg_lambda": "1"}, r"params\.reg_lambda: must be a finite number"),
        ({"scale_pos_weight": 0}, r"params\.scale_pos_weight: must be in \(0\.0, 1000000000\.0\]"),
        ({"base_score": 1}, r"params\.base_score: must be in \(0\.0, 1\.0\)"),
        ({"random_state": 2**31}, r"params\.random_state: must be an integer in \[0, 2147483647\]"),
        ({"n_jobs": 2}, r"params: unknown hyperparameter 'n_jobs'"),
    ],
)
def test_bad_xgbod_hyperparameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        algorithms.get("xgbod").resolve_params(params)


def test_xgbod_learns_from_labels_and_is_no_member() -> None:
    assert algorithms.get("xgbod").needs_labels
    with pytest.raises(ValueError, match="'xgbod' cannot be a member"):
        member("xgbod")


def test_xgbod_trains_end_to_end_on_labels() -> None:
    train = data.ensemble_train("float32")
    result = checks.train_end_to_end("xgbod", _MEMBERS, train, labels=data.far_labels(train))
    assert result.manifest["labels"]["anomalies"] == int(data.far_labels(train).sum())


def test_xgbod_fits_without_xgboost_warnings() -> None:
    algo = algorithms.get("xgbod")
    train = data.ensemble_train("normal")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        algo.build(algo.resolve_params(_MEMBERS), 0.1).fit(train, data.far_labels(train))
    assert not [w for w in caught if "xgboost" in str(w.filename) or "silent" in str(w.message)]


def test_xgbod_refused_unfitted_wrong_width_and_unexported_objectives() -> None:
    from pyod.models.xgbod import XGBOD

    checks.assert_refused(XGBOD(), N_FEATURES)
    checks.assert_refused(checks.fitted("xgbod-stumps-normal").det, N_FEATURES + 1, match="fitted on 6")
    checks.assert_refused(_xgbod(objective="binary:hinge"), N_FEATURES, match="objective 'binary:hinge' cannot")
    checks.assert_refused(_xgbod(booster="gblinear"), N_FEATURES, match="booster 'gblinear' cannot")


def test_xgbod_margin_is_xgboosts_bit_for_bit() -> None:
    """binary:logitraw scores the margin itself: the graph's float32 sum in tree order equals XGBoost's."""
    f = checks.fitted("xgbod-logitraw-sampled-float32")
    np.testing.assert_array_equal(checks.run(f.sess, f.rows), f.native)
    assert len(np.unique(f.native)) > 50


def test_xgbod_stumps_score_the_base_margin_plus_their_leaves() -> None:
    f = checks.fitted("xgbod-stumps-normal")
    trees = f.det.clf_.get_booster().trees_to_dataframe()
    assert (trees["Feature"] == "Leaf").all()
    served = checks.run(f.sess, f.rows)
    assert np.ptp(f.native) == 0 and np.ptp(served) == 0
    np.testing.assert_allclose(served, f.native, rtol=1e-6)  # the logistic link in float64, XGBoost's in float32


def test_float32_values_are_read_from_their_decimals_exactly() -> None:
    values = np.random.default_rng(0).standard_normal(2000).astype(np.float32) * np.float32(1e3)
    texts = [np.format_float_positional(v, unique=True, trim="-") for v in values]
    np.testing.assert_array_equal(_float32(texts), values)
    # Just above the midpoint of 1 and the next float32: the nearest float64 is the midpoint itself, which rounds
    # to 1 (to even); the decimal's nearest float32 is the next one.
    above = "1.0000000596046447753906250000000001"
    assert float(above) == 1 + 2**-24
    assert _float32([above])[0] == np.nextafter(np.float32(1), np.float32(2))
    assert _float32(["1.000000059604644775390625"])[0] == np.float32(1)  # the midpoint itself: to even


# --- LSCP ---

_LSCP = {"detector_list": ["hbos", "mcd"], "local_region_size": 10, "random_state": 0}


def _lscp(params: dict[str, Any], train: np.ndarray) -> Any:
    algo = algorithms.get("lscp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local regions outside PyOD's recommended 30..200 rows
        return algo.build(algo.resolve_params(params), 0.1).fit(train)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"detector_list": ["hbos"]}, r"params\.detector_list: must be a list of at least 2 members"),
        ({"detector_list": ["hbos", "ecod"]}, r"params\.detector_list: \[1\]: 'ecod' cannot be a member"),
        ({"detector_list": ["hbos", "xgbod"]}, r"params\.detector_list: \[1\]: 'xgbod' cannot be a member"),
        ({"local_region_size": 1}, r"params\.local_region_size: must be an integer in \[2, 100000\]"),
        ({"local_max_features": 0.2}, r"params\.local_max_features: must be in \[0\.5, 1\.0\]"),
        ({"n_bins": 0}, r"params\.n_bins: must be an integer in \[1, 1000\]"),
        ({"random_state": -1}, r"params\.random_state: must be an integer in \[0, 4294967295\]"),
    ],
)
def test_bad_lscp_hyperparameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        algorithms.get("lscp").resolve_params(params)


def test_lscp_frozen_score_is_pyods_first_call_after_the_fit() -> None:
    """PyOD draws new feature subsets at every call (why LSCP was refused before); the frozen score is what the
    first call after the fit gives, at every call, and leaves the detector's RandomState as it was."""
    import copy

    f = checks.fitted("lscp-4members-k10-normal")
    rows = f.rows[:60]
    state = f.det.random_state.get_state()[1].copy()
    first = copy.deepcopy(f.det)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyod_first, pyod_second = first.decision_function(rows), first.decision_function(rows)
    np.testing.assert_array_equal(f.algo.score(f.det, rows), pyod_first)
    np.testing.assert_array_equal(f.algo.score(f.det, rows), pyod_first)
    assert not np.allclose(pyod_first, pyod_second)
    np.testing.assert_array_equal(f.det.random_state.get_state()[1], state)


def test_lscp_reference_scores_a_row_alone_as_in_a_batch() -> None:
    f = checks.fitted("lscp-default-normal")
    rows = f.rows[:30]
    alone = np.array([f.algo.score(f.det, rows[i : i + 1])[0] for i in range(len(rows))])
    np.testing.assert_array_equal(alone, f.algo.score(f.det, rows))


def test_lscp_trains_end_to_end_and_gets_a_seed_of_its_own() -> None:
    checks.train_end_to_end("lscp", _LSCP, data.ensemble_train("float32"))
    algo = algorithms.get("lscp")
    assert isinstance(algo.build(algo.resolve_params({}), 0.1).random_state, int)


def test_lscp_on_tied_distances_is_refused_by_the_export_check() -> None:
    """Integer data, regions of 2 rows: the k-th neighbour ties, PyOD's KD-tree and the graph keep different rows,
    and training refuses to serve the model (the algorithm's export_limit)."""
    from pynomaly import training

    assert "tied distances" in algorithms.get("lscp").export_limit
    with pytest.raises(training.TrainingFailed, match="ONNX export does not match pyod.models.lscp.LSCP"):
        checks.train_end_to_end("lscp", {"detector_list": ["hbos", "hbos", "mcd"], "local_region_size": 2,
                                         "random_state": 2}, data.ensemble_train("integer"))


def test_lscp_refused_unfitted_wrong_width_and_unseeded() -> None:
    from pyod.models.hbos import HBOS
    from pyod.models.lscp import LSCP
    from pyod.models.mcd import MCD

    train = data.ensemble_train("normal")
    checks.assert_refused(LSCP([HBOS(), MCD()]), N_FEATURES)
    checks.assert_refused(_lscp(_LSCP, train), N_FEATURES + 1, match="fitted on 6")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unseeded = LSCP([HBOS(), MCD()], local_region_size=10).fit(train)  # draws from NumPy's global generator
    checks.assert_refused(unseeded, N_FEATURES, match="global generator")


def test_hbos_member_tolerance_cut_off_far_from_its_estimate() -> None:
    """XGBOD's default HBOS(n_bins=15) on ADBench pima: a feature from 0.078 to 2.42 puts the low tolerance cut-off
    (0.078 - x > 0.0780667) near -6.7e-5, thousands of doubles from the estimate: found exactly, rows there score
    as PyOD's."""
    from pyod.models.hbos import HBOS

    from pynomaly.export.hbos import _last_double

    column = np.linspace(0.078, 2.42, 200)
    det = HBOS(n_bins=15, tol=0.5).fit(np.c_[column, column[::-1]])
    edges = det.bin_edges_[:, 0]
    low_tol = (edges[1] - edges[0]) * det.tol
    cut = _last_double(lambda x: edges[0] - x > low_tol, edges[0] - low_tol)
    assert edges[0] - cut > low_tol and not edges[0] - np.nextafter(cut, np.inf) > low_tol
    rows = np.array([[np.nextafter(cut, -np.inf), 1.0], [cut, 1.0], [np.nextafter(cut, np.inf), 1.0]])
    sess = checks.session(to_onnx(det, 2))
    np.testing.assert_allclose(checks.run(sess, rows), det.decision_function(rows), rtol=1e-12)


def test_lscp_competent_members_as_pyod_picks_them() -> None:
    """The selection step alone: np.histogram's fullest bins (closed), a member on an edge shared by two picked
    bins counted twice, equal correlations all picked, and where np.histogram raises (correlations a few float64
    steps apart: PyOD's score fails) every member once."""
    import onnx
    from onnx import TensorProto, helper

    from pynomaly.export.lscp import _competent_mean

    def graph_mean(r: list[float], scores: list[float], n_bins: int) -> float:
        nodes, inits = _competent_mean(n_bins, len(r))
        inits += [_int64("axis1", [1]), _int64("axis2", [2]), _int64("one_i", [1]),
                  onnx.numpy_helper.from_array(np.array(1.0), "one")]
        inputs = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [1, len(r)]) for n in ("r", "test_norm")]
        out = helper.make_tensor_value_info("score64", TensorProto.DOUBLE, [1])
        model = helper.make_model(helper.make_graph(nodes, "g", inputs, [out], inits),
                                  opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
        sess = checks.session(model)
        return float(sess.run(None, {"r": np.array([r]), "test_norm": np.array([scores])})[0][0])

    def pyod_mean(r: list[float], scores: list[float], n_bins: int) -> float:
        from pyod.models.lscp import LSCP

        det = LSCP([None, None], n_bins=n_bins)
        det.n_clf = len(r)
        return float(np.mean(np.asarray(scores)[det._get_competent_detectors(np.array(r))]))

    scores = [1.0, 2.0, 4.0, 8.0]
    for r, n_bins in (([0.1, 0.5, 0.9, 0.3], 2), ([0.2, 0.2, 0.2, 0.2], 3), ([0.0, 0.5, 1.0, 0.9], 2),
                      ([-1.0, 1.0, 0.0, 0.25], 4), ([0.3, 0.9, 0.6, 0.6], 2),
                      ([0.0, 0.5, 1.0, 0.25], 2)):  # 0.5: on the edge of two fullest bins, counted twice
        assert graph_mean(r, scores, n_bins) == pytest.approx(pyod_mean(r, scores, n_bins), rel=1e-15)
    close = [1.0, 1.0 - 2**-52, 1.0 - 2**-53, 1.0]
    with pytest.raises(ValueError, match="Too many bins"):
        pyod_mean(close, scores, 3)
    assert graph_mean(close, scores, 3) == pytest.approx(np.mean(scores), rel=1e-15)


def _int64(name: str, value: list[int]) -> Any:
    import onnx

    return onnx.numpy_helper.from_array(np.array(value, np.int64), name)
