"""Labelled training data over the API, the SDK and the CLI, on both engines: "auto" searches on a held-out split and
serves the best trial, any algorithm reports how it ranks the labels, a file's label column is never a feature, and
bad labels are refused naming the problem."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pynomaly.client_errors import InvalidArgumentError
from pynomaly.v1 import common_pb2

RNG = np.random.default_rng(152)
X = np.vstack([RNG.normal(size=(300, 3)), RNG.uniform(3, 5, size=(20, 3))])
Y = np.r_[np.zeros(300, int), np.ones(20, int)]
NAMES = ["temp", "pressure", "flow"]


def test_auto_with_labels_serves_the_best_trial(server, client):
    name = f"tuned-{server.engine}"
    job = client.start_training(name, X, algorithm="auto", feature_names=NAMES, labels=Y,
                                params={"candidates": ["iforest", "hbos"], "trials": 6})
    job = client.wait(job.id)
    card = client.get_model(f"{name}@{job.model_version}")
    assert card.contamination == 20 / 320  # the labels' share: none was given
    assert [c.trial for c in card.candidates] == [1, 2, 3, 4, 5, 6, card.candidates[-1].trial]
    assert card.candidates[-1].outcome == common_pb2.CANDIDATE_OUTCOME_KEPT
    assert {c.outcome for c in card.candidates[:-1]} == {common_pb2.CANDIDATE_OUTCOME_EVALUATED}
    assert card.tuning.metric == "roc_auc" and card.tuning.trials == 6
    assert card.tuning.runner == {"ray": "ray tasks", "embedded": "in process"}[server.engine]
    assert (card.tuning.held_out_rows, card.tuning.held_out_anomalies) == (96, 6)
    assert card.tuning.best_roc_auc == max(c.roc_auc for c in card.candidates[:-1]) == card.candidates[-1].roc_auc
    assert (card.labels.rows, card.labels.anomalies) == (320, 20) and card.labels.roc_auc > 0.9
    assert list(job.candidates) == list(card.candidates)
    assert client.detect(f"{name}@{job.model_version}", X[-20:]).is_anomaly.mean() > 0.5


def test_a_file_label_column_is_no_feature_and_any_algorithm_reports_the_labels(server, client):
    pd.DataFrame(X, columns=NAMES).assign(label=Y).to_csv(server.data_root / "labelled.csv", index=False)
    job = client.train_stub.CreateTrainingJob(client_request(f"hbos-labels-{server.engine}", "hbos",
                                                             data_uri="labelled.csv", label_column="label")).job
    job = client.wait(job.id)
    card = client.get_model(f"{job.model_name}@{job.model_version}")
    assert list(card.feature_names) == NAMES and card.contamination == 20 / 320
    assert (card.labels.rows, card.labels.anomalies) == (320, 20) and card.labels.roc_auc > 0.9
    assert not card.HasField("tuning") and not card.candidates


def client_request(name, algorithm, **fields):
    from pynomaly.v1 import train_pb2

    return train_pb2.CreateTrainingJobRequest(model_name=name, algorithm=algorithm, **fields)


@pytest.mark.parametrize("fields, message", [
    ({"labels": list(Y[:-1])}, "labels: 319 labels for 320 rows"),
    ({"labels": [*Y[:-1], 2]}, "labels: must be 0 (normal) or 1 (anomaly), got np.int64(2) at row 319"),
    ({"labels": [0] * 320}, "labels: 0 anomalies (1); labels need at least 5 of each class"),
    ({"labels": list(Y), "contamination": 0.4}, "contamination 0.4 is inconsistent with the labels: 6.25% of the "
                                                "rows are labelled anomalous"),
    ({"labels": list(Y), "label_column": "y"}, "label_column: names a column of a data_uri file; rows sent inline "
                                               "(matrix) take their labels in labels"),
])
def test_bad_inline_labels_are_refused(server, client, fields, message):
    from pynomaly.client import to_matrix

    request = client_request(f"bad-labels-{server.engine}", "auto", matrix=to_matrix(X)[0], **fields)
    with pytest.raises(InvalidArgumentError) as e:
        client.train_stub.CreateTrainingJob(request)
    assert e.value.details().startswith(message), e.value.details()
    assert server.alive()


@pytest.mark.parametrize("fields, message", [
    ({"label_column": "nope"}, "label_column: labelled-bad.csv has no column 'nope'; its columns: temp, pressure, "
                               "flow, label"),
    ({"label_column": "label", "labels": list(Y)}, "labels: go with rows sent inline (matrix)"),
    ({"label_column": "temp"}, "label_column: must be 0 (normal) or 1 (anomaly), got "),
])
def test_bad_file_labels_are_refused(server, client, fields, message):
    pd.DataFrame(X, columns=NAMES).assign(label=Y).to_csv(server.data_root / "labelled-bad.csv", index=False)
    request = client_request(f"bad-file-labels-{server.engine}", "hbos", data_uri="labelled-bad.csv", **fields)
    with pytest.raises(InvalidArgumentError) as e:
        client.train_stub.CreateTrainingJob(request)
    assert e.value.details().startswith(message), e.value.details()


def test_the_cli_takes_a_label_column_and_shows_the_search(server, tmp_path):
    data = tmp_path / "labelled.csv"
    pd.DataFrame(X, columns=NAMES).assign(is_anomaly=Y).to_csv(data, index=False)
    out = subprocess.run(
        [sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name",
         f"cli-tuned-{server.engine}", "--algorithm", "auto", "--data", str(data), "--label-column", "is_anomaly",
         "--param", "trials=4", "--param", 'candidates=["iforest", "hbos"]'],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stderr.splitlines()]
    trials = [line.split(":")[0].split() for line in lines if line.startswith("trial ")]
    assert [int(t[1]) for t in trials] == [1, 2, 3, 4] and {t[2] for t in trials} <= {"iforest", "hbos"}
    assert any(line.startswith("chosen by 4 trials on labels: ") for line in lines), lines
    assert any(line.startswith("labels: 20 of 320 rows anomalous; training ROC-AUC ") for line in lines), lines
    bad = subprocess.run(
        [sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name", "x", "--data",
         str(data), "--label-column", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2  # bad input (cli_output.EXIT_CODES), found before any call
    assert bad.stderr == ("error: label_column: labelled.csv has no column 'nope'; its columns: temp, pressure, "
                          "flow, is_anomaly\n")


@pytest.mark.parametrize("algorithm, params", [
    ("xgbod", {"estimator_list": ["hbos", {"algorithm": "iforest", "params": {"n_estimators": 20}}],
               "n_estimators": 20}),
    ("devnet", {"epochs": 2, "batch_size": 64}),
])
def test_detectors_that_learn_from_labels_train_on_them_and_are_served(server, client, algorithm, params):
    """XGBOD and DevNet fit on (X, y) over the API; ListAlgorithms says they need labels; the card's label summary
    is that of the served scores."""
    listed = {a.name: a for a in client.list_algorithms()}
    assert listed[algorithm].needs_labels and not listed["iforest"].needs_labels
    name = f"{algorithm}-{server.engine}"
    job = client.wait(client.start_training(name, X, algorithm=algorithm, params=params, labels=Y,
                                            feature_names=NAMES).id)
    card = client.get_model(f"{name}@{job.model_version}")
    assert (card.labels.rows, card.labels.anomalies) == (320, 20) and card.contamination == 20 / 320
    scores = client.detect(f"{name}@{job.model_version}", X).anomaly_scores
    assert card.labels.roc_auc == pytest.approx(roc_auc_score(Y, scores), abs=1e-9)
    # Both learned the labels (DevNet's fit puts PyOD 3.6.7's swapped loss arguments right: PyOD's own ranks
    # labelled anomalies at chance, pynomaly.algorithms.neural).
    assert card.labels.roc_auc > 0.99


@pytest.mark.parametrize("algorithm", ["xgbod", "devnet"])
def test_detectors_that_learn_from_labels_refuse_training_without_them(server, client, algorithm):
    from pynomaly.client import to_matrix

    request = client_request(f"no-labels-{server.engine}", algorithm, matrix=to_matrix(X)[0])
    with pytest.raises(InvalidArgumentError) as e:
        client.train_stub.CreateTrainingJob(request)
    assert e.value.reason == "LABELS_REQUIRED"
    assert e.value.details() == (f"labels: algorithm '{algorithm}' learns from labels; send them in labels (rows sent "
                                 "inline) or name their column in label_column (a data_uri file)")
    pd.DataFrame(X, columns=NAMES).to_csv(server.data_root / "unlabelled.csv", index=False)
    with pytest.raises(InvalidArgumentError) as e:
        client.train_stub.CreateTrainingJob(client_request(f"no-labels-{server.engine}", algorithm,
                                                           data_uri="unlabelled.csv"))
    assert e.value.reason == "LABELS_REQUIRED"
    assert e.value.details().startswith(f"label_column: algorithm '{algorithm}' learns from labels")
    assert not [m for m in client.list_models() if m.name == f"no-labels-{server.engine}"]
    assert server.alive()


def test_a_detector_with_a_row_cap_refuses_more_rows(server, client):
    """LMDD's fit is quadratic: ListAlgorithms gives its cap, and more rows are refused before any job starts."""
    from pynomaly.client import to_matrix

    cap = next(a.max_training_rows for a in client.list_algorithms() if a.name == "lmdd")
    assert 0 < cap < len(X)
    with pytest.raises(InvalidArgumentError) as e:
        client.train_stub.CreateTrainingJob(client_request(f"capped-{server.engine}", "lmdd", matrix=to_matrix(X)[0]))
    assert e.value.reason == "TOO_MANY_ROWS"
    assert e.value.details() == (f"matrix: algorithm 'lmdd' trains on at most {cap} rows (its fit is quadratic in the "
                                 f"rows), got {len(X)}; sample the data")
    assert server.alive()
