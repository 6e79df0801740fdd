"""The issue's acceptance check on real data: IForest on ADBench cardio, served scores equal PyOD's own."""

import json

import pytest
from pyod.models.iforest import IForest
from sklearn.metrics import roc_auc_score

from pynomaly.cli import main

from conftest import DATASETS, assert_scores_close, load_dataset

pytestmark = pytest.mark.datasets


@pytest.fixture(scope="module")
def cardio():
    return load_dataset("cardio")


@pytest.fixture(scope="module")
def native_scores(cardio):
    X, _ = cardio
    # The same float64 rows the server trains on and scores (sklearn's trees round them to float32 themselves).
    return IForest(n_estimators=200, random_state=0, contamination=0.1).fit(X).decision_function(X)


def test_cli_train_and_detect_cardio(server, cardio, native_scores, capsys, tmp_path):
    code = main(["train", "--server", server.address, "--name", "cardio", "--algorithm", "iforest", "--data",
                 str(DATASETS / "cardio.npz"), "--param", "n_estimators=200", "--param", "random_state=0",
                 "--contamination", "0.1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    trained = json.loads(out)
    assert (trained["model"], trained["version"]) == ("cardio", 1)
    code = main(["detect", "--server", server.address, "--model", "cardio", "--data", str(DATASETS / "cardio.npz"),
                 "--json"])
    result = json.loads(capsys.readouterr()[0])
    assert code == 0 and result["version"] == 1
    assert_scores_close(result["anomaly_scores"], native_scores, rtol=1e-5)


def test_sdk_train_and_detect_cardio(client, cardio, native_scores):
    X, y = cardio
    card = client.train("cardio-sdk", X, algorithm="iforest", params={"n_estimators": 200, "random_state": 0},
                        contamination=0.1)
    result = client.detect(f"cardio-sdk@{card.version}", X)
    assert_scores_close(result.anomaly_scores, native_scores, rtol=1e-5)
    assert roc_auc_score(y, result.anomaly_scores) == pytest.approx(roc_auc_score(y, native_scores), abs=1e-6)
    # PyOD flags its contamination share of the training rows; so does the served threshold.
    assert result.is_anomaly.mean() == pytest.approx(0.1, abs=0.005)
