"""The operator against the real platform: an embedded `pynomaly serve` on 127.0.0.1 with seeded CSV files in its
data root, driven through `platform.step` (what every kopf handler calls), the status kept the way the API server
keeps it (merge patches). Train, gate, alias move, labels and threshold methods, refusal, retrain on schedule, resume,
adoption, deletion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pynomaly import Client
from pynomaly.v1 import train_pb2
from pynomaly_operator.platform import Platform, step
from pynomaly_operator.reconcile import CreateJob, Plan, reconcile
from pynomaly_operator.resources import Resource, merge_patch, parse_time

from conftest import ServerProcess

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def platform_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded engine only (the operator speaks the same API to both), its data root holding the training file,
    a labelled training file (5 % planted outliers) and two labelled holdouts: planted outliers (an easy gate), and
    labels unrelated to the rows (a gate to fail)."""
    data_root = tmp_path_factory.mktemp("operator-data")
    rng = np.random.default_rng(11)
    pd.DataFrame(rng.normal(size=(300, 4)), columns=FEATURES).to_csv(data_root / "train.csv", index=False)
    rows = np.vstack([rng.normal(size=(90, 4)), rng.uniform(5, 8, size=(10, 4))])
    holdout = pd.DataFrame(rows, columns=FEATURES)
    holdout.assign(label=[0] * 90 + [1] * 10).to_csv(data_root / "holdout.csv", index=False)
    holdout.assign(label=rng.permutation([0] * 90 + [1] * 10)).to_parquet(data_root / "noise.parquet")
    labelled = pd.DataFrame(np.vstack([rng.normal(size=(285, 4)), rng.uniform(4, 7, size=(15, 4))]), columns=FEATURES)
    labelled.assign(label=[0] * 285 + [1] * 15).to_csv(data_root / "labelled.csv", index=False)
    srv = ServerProcess(tmp_path_factory.mktemp("operator-store"), "--data-root", str(data_root))
    srv.data_root = data_root  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(platform_server: ServerProcess) -> Iterator[Client]:
    with Client(platform_server.address, timeout=60) as c:
        yield c


@pytest.fixture()
def operator(platform_server: ServerProcess) -> Iterator[Platform]:
    platform = Platform(data_root=platform_server.data_root)  # type: ignore[attr-defined]
    yield platform
    platform.close()


def body(name: str, address: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "risk", "uid": f"uid-{name}", "generation": 1},
            "spec": {"algorithm": "iforest", "params": {"n_estimators": 25, "random_state": 0},
                     "contamination": 0.1, "trainingData": "train.csv", "platform": address, **spec}}


def reconcile_once(platform: Platform, obj: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    patch = step(platform, Resource.from_body(obj), now or datetime.now(UTC))
    obj["status"] = merge_patch(obj.get("status") or {}, patch)
    return obj["status"]


def settle(platform: Platform, obj: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Reconcile until the run in flight concludes (what the timer does every interval)."""
    deadline = time.monotonic() + 120
    while (status := reconcile_once(platform, obj, now))["phase"] == "Training":
        assert time.monotonic() < deadline, f"still training: {status}"
        time.sleep(0.2)
    return status


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def tagged_jobs(client: Client, obj: dict[str, Any]) -> list[train_pb2.TrainingJob]:
    resource = Resource.from_body(obj)
    jobs = client.train_stub.ListTrainingJobs(train_pb2.ListTrainingJobsRequest(model_name=resource.model_name)).jobs
    return [j for j in jobs if j.description.startswith(f"anomalydetector/risk/{resource.name} uid=")]


def holdout_auc(client: Client, data_root: Path, file: str, ref: str) -> float:
    """The ROC-AUC the gate should see, computed here from the platform's scores of the same rows."""
    table = pd.read_csv(data_root / file) if file.endswith(".csv") else pd.read_parquet(data_root / file)
    return float(roc_auc_score(table["label"], client.detect(ref, table[FEATURES].to_numpy()).anomaly_scores))


def test_train_gate_alias_then_a_failing_gate_keeps_the_alias(operator, client, platform_server):
    gate = {"maxExportError": 1e-3, "minRocAuc": 0.9, "holdoutData": "holdout.csv", "labelColumn": "label"}
    obj = body("fraud", platform_server.address, qualityGate=gate)
    status = reconcile_once(operator, obj)
    assert status["phase"] == "Training" and status["run"] == 1
    (job,) = tagged_jobs(client, obj)
    assert (job.id, job.description) == (status["jobId"], "anomalydetector/risk/fraud uid=uid-fraud generation=1 run=1")

    status = settle(operator, obj)
    card = client.get_model("fraud@1")
    assert (status["phase"], status["modelVersion"], status["servingVersion"]) == ("Ready", 1, 1)
    assert (status["threshold"], status["exportError"]) == (card.threshold, card.export_check.max_rel_error)
    assert status["rocAuc"] == pytest.approx(holdout_auc(client, platform_server.data_root, "holdout.csv", "fraud@1"))
    assert status["rocAuc"] >= 0.9 and client.get_model("fraud:production").version == 1
    assert condition(status, "QualityGatePassed")["reason"] == "Passed"
    assert condition(status, "Ready")["message"] == "alias production -> fraud@1"

    # The spec changes (generation 2): a holdout whose labels have nothing to do with the rows fails the gate.
    obj["metadata"]["generation"] = 2
    obj["spec"]["qualityGate"] = {**gate, "holdoutData": "noise.parquet"}
    status = settle(operator, obj)
    auc = holdout_auc(client, platform_server.data_root, "noise.parquet", "fraud@2")
    assert auc < 0.9 and status["rocAuc"] == pytest.approx(auc)
    assert (status["phase"], status["modelVersion"], status["servingVersion"], status["run"]) == (
        "GateFailed", 2, 1, 2)
    gate_condition = condition(status, "QualityGatePassed")
    assert (gate_condition["status"], gate_condition["reason"]) == ("False", "RocAucTooLow")
    assert gate_condition["message"] == (f"version 2 failed the quality gate: ROC-AUC {auc:.4f} on 'noise.parquet' "
                                         "is below minRocAuc 0.9")
    assert client.get_model("fraud:production").version == 1  # never the version that failed
    assert len(tagged_jobs(client, obj)) == 2
    # Settled: more ticks change nothing and start nothing.
    assert reconcile_once(operator, obj) == status and len(tagged_jobs(client, obj)) == 2


def test_an_export_error_ceiling_fails_the_gate(operator, client, platform_server):
    obj = body("strict", platform_server.address, qualityGate={"maxExportError": 1e-15})
    client.train("strict", np.zeros((3, 4)) + np.arange(3)[:, None], algorithm="iforest",
                 params={"n_estimators": 5}, feature_names=FEATURES)
    client.set_alias("strict", "production", 1)  # a version served before the operator's
    status = settle(operator, obj)
    card = client.get_model("strict@2")
    if card.export_check.max_rel_error <= 1e-15:  # IForest's sums in another order: ~1e-14 here
        pytest.fail("the ONNX export matched within 1e-15: choose a case with an export error to gate on")
    assert (status["phase"], status["exportError"]) == ("GateFailed", card.export_check.max_rel_error)
    assert condition(status, "QualityGatePassed")["message"] == (
        f"version 2 failed the quality gate: export error {card.export_check.max_rel_error:.3g} exceeds "
        "maxExportError 1e-15")
    assert client.get_model("strict:production").version == 1


def test_labels_and_a_threshold_method_reach_the_card(operator, client, platform_server):
    """spec.labelColumn: the column is no feature, the unset contamination becomes the labels' share, and the card
    says how the model ranks them; spec.thresholdMethod, set later (generation 2), retrains with it."""
    obj = body("labelled", platform_server.address, trainingData="labelled.csv", labelColumn="label")
    del obj["spec"]["contamination"]
    status = settle(operator, obj)
    card = client.get_model("labelled@1")
    table = pd.read_csv(platform_server.data_root / "labelled.csv")
    assert (status["phase"], status["servingVersion"], list(card.feature_names)) == ("Ready", 1, FEATURES)
    assert (card.labels.rows, card.labels.anomalies, card.contamination) == (300, 15, 0.05)
    auc = roc_auc_score(table["label"], client.detect("labelled@1", table[FEATURES].to_numpy()).anomaly_scores)
    assert card.labels.roc_auc == pytest.approx(auc) and auc > 0.9
    assert card.threshold_method == "contamination"

    obj["metadata"]["generation"] = 2
    obj["spec"]["thresholdMethod"] = "iqr"
    status = settle(operator, obj)
    card = client.get_model("labelled@2")
    assert (status["phase"], status["run"], status["servingVersion"]) == ("Ready", 2, 2)
    assert (card.threshold_method, card.labels.rows, status["threshold"]) == ("iqr", 300, card.threshold)
    assert client.get_model("labelled:production").version == 2


REFUSED = "the platform refused the training job: INVALID_ARGUMENT: "


@pytest.mark.parametrize("name, spec, message", [
    ("refused-param", {"params": {"n_estimators": -5}},
     REFUSED + "params.n_estimators: must be an integer in [1, 10000], got number -5"),
    ("refused-file", {"trainingData": "missing.csv"},
     REFUSED + "data_uri: 'missing.csv' does not exist or is not a file"),
    ("refused-algorithm", {"algorithm": "no-such-detector"},
     REFUSED + "algorithm: unknown algorithm 'no-such-detector'; available: "),
    # the CRD's enum refuses this at the API server; a resource from before it (or with validation off) gets here
    ("refused-threshold", {"thresholdMethod": "otsu"},
     REFUSED + "threshold_method: unknown method 'otsu'; choose 'contamination' (the default) or a pythresh method: "
               "chau, dsn, "),
    ("refused-label-column", {"labelColumn": "is_fraud"},
     REFUSED + "label_column: train.csv has no column 'is_fraud'; its columns: f0, f1, f2, f3"),
    ("refused-contamination", {"trainingData": "labelled.csv", "labelColumn": "label", "contamination": 0.3},
     REFUSED + "contamination 0.3 is inconsistent with the labels: 5.00% of the rows are labelled anomalous"),
])
def test_a_refused_job_is_recorded_and_serves_nothing(operator, client, platform_server, name, spec, message):
    obj = body(name, platform_server.address, **spec)
    status = reconcile_once(operator, obj)
    trained = condition(status, "Trained")
    assert (status["phase"], trained["status"], trained["reason"]) == ("Failed", "False", "Rejected")
    assert trained["message"].startswith(message)
    assert condition(status, "Ready")["reason"] == "NoServingVersion"
    with pytest.raises(grpc.RpcError) as e:
        client.get_model(f"{name}:production")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert reconcile_once(operator, obj) == status  # not retried until the spec changes
    assert client.list_algorithms()  # the platform still answers


def test_retrains_on_schedule(operator, client, platform_server):
    obj = body("nightly", platform_server.address, schedule="0 3 * * *")
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    status = settle(operator, obj, start)
    assert (status["servingVersion"], status["nextRunAt"]) == (1, "2026-05-02T03:00:00Z")
    assert reconcile_once(operator, obj, start + timedelta(hours=14)) == status  # 02:00: not due
    due = parse_time(status["nextRunAt"])
    status = settle(operator, obj, due)
    assert (status["run"], status["servingVersion"], status["nextRunAt"]) == (2, 2, "2026-05-03T03:00:00Z")
    assert client.get_model("nightly:production").version == 2
    assert len(tagged_jobs(client, obj)) == 2


def test_a_restarted_operator_follows_the_same_job(client, platform_server):
    first = Platform(data_root=platform_server.data_root)
    obj = body("resumed", platform_server.address, params={"n_estimators": 400, "random_state": 0})
    job_id = reconcile_once(first, obj)["jobId"]
    first.close()  # the operator dies; the status (with jobId) is what the API server kept
    restarted = Platform(data_root=platform_server.data_root)
    try:
        status = settle(restarted, obj)
    finally:
        restarted.close()
    assert (status["jobId"], status["phase"], status["servingVersion"]) == (job_id, "Ready", 1)
    assert [j.id for j in tagged_jobs(client, obj)] == [job_id]


def test_a_job_created_before_a_crash_is_adopted(operator, client, platform_server):
    obj = body("adopted", platform_server.address)
    plan = reconcile(Resource.from_body(obj), operator.observe(Resource.from_body(obj), datetime.now(UTC)),
                     datetime.now(UTC))
    (create,) = plan.actions
    assert isinstance(create, CreateJob)
    lost = operator.execute(Resource.from_body(obj), Plan((create,)), datetime.now(UTC))  # the patch never lands
    status = reconcile_once(operator, obj)
    assert (status["jobId"], status["run"]) == (lost["jobId"], 1)
    assert "adopted" in condition(status, "Trained")["message"]
    assert settle(operator, obj)["servingVersion"] == 1
    assert [j.id for j in tagged_jobs(client, obj)] == [lost["jobId"]]


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion(operator, client, platform_server, policy):
    name = f"deleted-{policy.lower()}"
    obj = body(name, platform_server.address, deletionPolicy=policy)
    settle(operator, obj)
    client.train(name, np.random.default_rng(0).normal(size=(50, 4)), algorithm="hbos",
                 feature_names=FEATURES)  # version 2: not this resource's, never deleted
    obj["metadata"]["generation"] = 2
    obj["spec"]["params"] = {"n_estimators": 400, "random_state": 0}
    assert reconcile_once(operator, obj)["phase"] == "Training"  # version 3 on its way when the resource goes
    obj["metadata"]["deletionTimestamp"] = "2026-05-01T12:00:00Z"
    assert reconcile_once(operator, obj)["phase"] == "Training"  # no status patch: the finalizer goes next
    job = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=obj["status"]["jobId"])).job
    assert job.state == train_pb2.TRAINING_JOB_STATE_CANCELLED
    versions = sorted(v.version for v in client.list_model_versions(name))
    if policy == "Retain":
        assert versions == [1, 2] and client.get_model(f"{name}:production").version == 1
    else:
        assert versions == [2]
        with pytest.raises(grpc.RpcError) as e:
            client.get_model(f"{name}:production")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
