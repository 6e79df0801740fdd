"""Labels: checked with a message naming the problem, read from a file's column (never a feature), turned into a
contamination; and algorithm "auto" with labels: a search whose trials train on a stratified split without labels and
are scored on the held-out rows, the best refitted on every row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pynomaly import algorithms, labels, training, verification
from pynomaly.algorithms import tuning
from pynomaly.data import read_labelled
from pynomaly.errors import InvalidArgument

RNG = np.random.default_rng(151)
X = np.vstack([RNG.normal(size=(300, 4)), RNG.uniform(3, 5, size=(20, 4))])
Y = np.r_[np.zeros(300, int), np.ones(20, int)]


@pytest.mark.parametrize("y, message", [
    (Y[:-1], "labels: 319 labels for 320 rows"),
    (np.r_[Y[:-1], 2], "labels: must be 0 (normal) or 1 (anomaly), got np.int64(2) at row 319 (1 such row(s))"),
    (np.r_[Y[:-1], 0.5], "labels: must be 0 (normal) or 1 (anomaly), got np.float64(0.5) at row 319"),
    (np.array(["0"] * 320), "labels: must be 0 (normal) or 1 (anomaly), got values of type <U1"),
    (np.zeros(320, int), "labels: 0 anomalies (1); labels need at least 5 of each class"),
    (np.r_[np.zeros(316, int), np.ones(4, int)], "labels: 4 anomalies (1); labels need at least 5 of each class"),
    (np.r_[np.zeros(100, int), np.ones(220, int)], "labels: 220 of 320 rows are labelled anomalous; anomalies must "
                                                    "be at most half of the rows"),
    (Y.reshape(-1, 1), "labels: must be one label per row, got shape (320, 1)"),
])
def test_bad_labels_are_refused_naming_the_problem(y, message):
    with pytest.raises(InvalidArgument) as e:
        labels.check_labels(y, 320)
    assert str(e.value).startswith(message), str(e.value)


def test_good_labels_come_back_as_int8():
    y = labels.check_labels(Y.astype(float), 320)
    assert y.dtype == np.int8 and y.sum() == 20


def test_contamination_is_the_labels_share_unless_given_and_consistent():
    y = labels.check_labels(Y, 320)
    assert labels.contamination(y, 0.0) == 20 / 320
    assert labels.contamination(y, 0.1) == 0.1
    with pytest.raises(InvalidArgument) as e:
        labels.contamination(y, 0.3)
    assert str(e.value) == ("contamination 0.3 is inconsistent with the labels: 6.25% of the rows are labelled "
                            "anomalous (give a contamination in [0.03125, 0.125], or none to use 0.0625)")


def test_wire_labels_refuse_what_no_integer_is():
    assert labels.wire_labels(None) == [] and labels.wire_labels(np.array([0.0, 1.0])) == [0, 1]
    with pytest.raises(ValueError) as e:
        labels.wire_labels([0, 0.5])
    assert str(e.value) == "labels: must be 0 (normal) or 1 (anomaly), got np.float64(0.5) at row 1"


def test_a_label_column_is_read_apart_from_the_features(tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(is_anomaly=Y)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    np.savez(tmp_path / "rows.npz", X=X, y=Y)
    for name, column in (("rows.csv", "is_anomaly"), ("rows.parquet", "is_anomaly"), ("rows.npz", "y")):
        features, names, y = read_labelled(tmp_path / name, "data", column)
        assert features.shape == (320, 4) and list(y) == list(Y), name
        assert names == (["a", "b", "c", "d"] if name != "rows.npz" else ["f0", "f1", "f2", "f3"])
    with pytest.raises(InvalidArgument) as e:
        read_labelled(tmp_path / "rows.csv", "data", "label")
    assert str(e.value) == "label_column: rows.csv has no column 'label'; its columns: a, b, c, d, is_anomaly"
    with pytest.raises(InvalidArgument) as e:
        read_labelled(tmp_path / "rows.npz", "data", "labels")
    assert str(e.value) == "label_column: rows.npz has no array 'labels' (it has: X, y)"


def test_the_held_out_split_is_stratified_and_disjoint():
    train, held = tuning.split(Y, seed=4)
    assert len(held) == 96 and not set(train) & set(held) and len(train) + len(held) == 320
    assert Y[held].sum() == 6 and Y[train].sum() == 14


def _tuned(params, y=Y):
    algo = algorithms.get("auto")
    spec = training.TrainSpec("m", "auto", algo.resolve_params(params), 20 / 320, ["a", "b", "c", "d"],
                              labels=labels.check_labels(y, len(X)))
    return training.train(spec, X)


def test_auto_with_labels_searches_and_serves_the_best_trial_refitted():
    result = _tuned({"candidates": ["iforest", "hbos", "knn"], "trials": 8})
    records = result.manifest["candidates"]
    trials, (kept,) = records[:-1], records[-1:]
    assert [r["trial"] for r in trials] == list(range(1, 9))
    assert {r["outcome"] for r in trials} == {"evaluated"} and kept["outcome"] == "kept"
    best = max((r for r in trials if not r["message"].startswith("the parameters of")), key=lambda r: r["roc_auc"])
    assert (kept["algorithm"], kept["params"], kept["roc_auc"]) == (best["algorithm"], best["params"], best["roc_auc"])
    assert kept["message"] == (f"trial {best['trial']}'s parameters (held-out ROC-AUC {best['roc_auc']:.4f}), "
                               "refitted on all 320 rows")
    tuned = result.manifest["automl"]["tuning"]
    assert tuned == {"metric": "roc_auc", "held_out_rows": 96, "held_out_anomalies": 6, "held_out_share": 0.3,
                     "seed": 0, "trials": 8, "runner": "in process", "best_roc_auc": best["roc_auc"],
                     "best_average_precision": best["average_precision"]}
    assert result.manifest["feature_names"] == ["a", "b", "c", "d"]  # the labels are no feature
    assert result.manifest["labels"]["rows"] == 320 and result.manifest["labels"]["anomalies"] == 20
    assert result.manifest["labels"]["roc_auc"] > 0.9  # planted anomalies, far from the rest
    assert result.manifest["export_check"]["max_rel_error"] <= verification.TOLERANCE


def test_given_hyperparameters_are_fixed_and_the_rest_searched():
    result = _tuned({"candidates": [{"algorithm": "knn", "params": {"method": "mean"}}], "trials": 5})
    trials = result.manifest["candidates"][:-1]
    assert {r["params"]["method"] for r in trials} == {"mean"}
    assert len({r["params"]["n_neighbors"] for r in trials}) > 1


def test_a_search_where_every_trial_fails_fails_the_job_naming_each():
    with pytest.raises(training.TrainingFailed) as e:
        _tuned({"candidates": [{"algorithm": "cblof", "params": {"n_clusters": 400}}], "trials": 2})
    assert "no trial of the search succeeded (trial 1 (cblof): ValueError: " in str(e.value)
