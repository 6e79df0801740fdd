"""The embedded server through the SDK and the raw stubs: train, detect, registry, jobs, standard services."""

import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pyod.models.iforest import IForest

from pynomaly import TrainingError
from pynomaly.store import LocalStore
from pynomaly.v1 import common_pb2, detect_pb2, detect_pb2_grpc, train_pb2

from conftest import assert_scores_close


def test_detect_matches_native_pyod(client, trained, blobs):
    train, score = blobs
    result = client.detect(trained, score)
    native = IForest(n_estimators=50, random_state=0).fit(train)
    assert_scores_close(result.anomaly_scores, native.decision_function(score.astype(np.float32)))
    card = client.get_model(trained)
    assert result.threshold == card.threshold
    np.testing.assert_array_equal(result.is_anomaly, result.anomaly_scores > card.threshold)
    assert result.is_anomaly[-10:].all(), "planted outliers must be flagged"
    assert (result.model_name, result.model_version) == (card.name, card.version)


def test_threshold_override(client, trained, blobs):
    result = client.detect(trained, blobs[1], threshold=1.0)
    assert result.threshold == 1.0 and not result.is_anomaly.any()


def test_values_and_raw_values_score_the_same(server, trained, blobs):
    stub = detect_pb2_grpc.DetectServiceStub(server.channel)
    X = blobs[1].astype(np.float32)
    packed = common_pb2.Matrix(rows=len(X), columns=5, values=X.ravel().tolist())
    raw = common_pb2.Matrix(rows=len(X), columns=5, raw_values=X.tobytes())
    a = stub.Detect(detect_pb2.DetectRequest(model=trained, rows=packed))
    b = stub.Detect(detect_pb2.DetectRequest(model=trained, rows=raw))
    assert list(a.anomaly_scores) == list(b.anomaly_scores)


def test_batch_invariance(client, trained, blobs):
    batch = client.detect(trained, blobs[1]).anomaly_scores
    alone = np.array([client.detect(trained, row[None, :]).anomaly_scores[0] for row in blobs[1]])
    np.testing.assert_array_equal(batch, alone)


def test_large_batch_runs_off_the_event_loop_and_matches(client, trained, blobs):
    X = np.random.default_rng(1).normal(size=(5000, 5))
    native = IForest(n_estimators=50, random_state=0).fit(blobs[0]).decision_function(X.astype(np.float32))
    assert_scores_close(client.detect(trained, X).anomaly_scores, native)


def test_detect_stream(server, trained, blobs):
    stub = detect_pb2_grpc.DetectServiceStub(server.channel)
    X = blobs[1].astype(np.float32)
    requests = [detect_pb2.DetectStreamRequest(request=detect_pb2.DetectRequest(
        model=trained, rows=common_pb2.Matrix(rows=n, columns=5, raw_values=X[:n].tobytes()))) for n in (1, 7, 50)]
    responses = list(stub.DetectStream(iter(requests)))
    assert [len(r.response.anomaly_scores) for r in responses] == [1, 7, 50]
    np.testing.assert_array_equal(responses[2].response.anomaly_scores[:7], responses[1].response.anomaly_scores)


def test_model_card(client, trained):
    card = client.get_model(trained)
    assert card.algorithm == "iforest"
    assert card.feature_names == ["f0", "f1", "f2", "f3", "f4"]
    assert card.params["n_estimators"].number_value == 50 and card.params["max_samples"].string_value == "auto"
    assert card.contamination == pytest.approx(0.1)
    assert card.training_rows == 400 and len(card.data_sha256) == 64
    assert card.export_check.max_rel_error <= card.export_check.tolerance == 1e-5
    assert card.export_check.rows > 400 and "pyod 3.6.7" in card.export_check.libraries
    assert card.training_scores.min <= card.threshold <= card.training_scores.max
    assert len(card.training_scores.quantiles) == len(card.training_scores.quantile_levels) == 7
    assert card.create_time.seconds > 0 and card.job_id.startswith("job-")


def test_versions_aliases_delete_and_download(client, blobs):
    X = blobs[0]
    v1 = client.train("lifecycle", X, algorithm="hbos", feature_names=list("abcde"))
    v2 = client.train("lifecycle", X, algorithm="sklearn.isolation_forest", params={"random_state": 0},
                      feature_names=list("abcde"))
    assert (v1.version, v2.version) == (1, 2)
    assert client.get_model("lifecycle").version == 2
    client.set_alias("lifecycle", "production", 1)
    assert client.get_model("lifecycle:production").algorithm == "hbos"
    assert client.detect("lifecycle:production", X[:3]).model_version == 1
    assert "production" in client.get_model("lifecycle@1").aliases
    graph = client.download_model("lifecycle@2")
    assert len(graph) == v2.onnx_size_bytes and graph[:2] == b"\x08\x0a"  # ModelProto: ir_version field first
    assert any(m.name == "lifecycle" and m.version == 2 for m in client.list_models())
    client.delete_model("lifecycle@1")
    with pytest.raises(grpc.RpcError) as e:
        client.detect("lifecycle:production", X[:3])
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "has no alias 'production'" in e.value.details()
    assert client.get_model("lifecycle").version == 2


def test_training_job_stream_reports_every_stage(client, blobs):
    job = client.start_training("staged", blobs[0], algorithm="hbos")
    assert job.state == train_pb2.TRAINING_JOB_STATE_QUEUED
    seen = []
    final = client.wait(job.id, on_update=lambda j: seen.append((j.state, j.stage)))
    assert final.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED and final.model_version == 1
    stages = [s for state, s in seen if state == train_pb2.TRAINING_JOB_STATE_RUNNING]
    # Events can coalesce, but stages never go backwards and registration is reported.
    assert stages == sorted(stages) and train_pb2.TRAINING_STAGE_REGISTER in stages
    got = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job.id)).job
    assert got.end_time.seconds >= got.start_time.seconds >= got.create_time.seconds > 0
    listed = client.train_stub.ListTrainingJobs(train_pb2.ListTrainingJobsRequest(model_name="staged")).jobs
    assert [j.id for j in listed] == [job.id]


def test_failed_fit_fails_the_job_and_leaves_no_version(client, blobs):
    with pytest.raises(TrainingError, match="could not fit the data: .*max_features"):
        client.train("nofit", blobs[0], params={"max_features": 50})
    with pytest.raises(grpc.RpcError) as e:
        client.get_model("nofit")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancel_queued_job(client, blobs):
    # One training worker: the second job waits behind the first and can be cancelled before it runs.
    X = np.random.default_rng(0).normal(size=(20000, 5))
    first = client.start_training("slow", X, params={"n_estimators": 1000})
    second = client.start_training("cancelled", blobs[0])
    job = client.train_stub.CancelTrainingJob(train_pb2.CancelTrainingJobRequest(id=second.id)).job
    assert job.state == train_pb2.TRAINING_JOB_STATE_CANCELLED
    with pytest.raises(TrainingError, match="cancelled"):
        client.wait(second.id)
    client.wait(first.id)
    with pytest.raises(grpc.RpcError) as e:
        client.get_model("cancelled")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _fit_progress(client, job_id, until):
    """The jobs WatchTrainingJob sends while the fit reports progress, up to the first for which `until` holds."""
    seen = []
    for event in client.train_stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job_id), timeout=120):
        if event.job.HasField("fit_progress"):
            assert event.job.stage == train_pb2.TRAINING_STAGE_FIT, event.job
            seen.append(event.job.fit_progress)
            if until(seen):
                break
        assert event.job.state not in (train_pb2.TRAINING_JOB_STATE_FAILED, train_pb2.TRAINING_JOB_STATE_SUCCEEDED), (
            event.job)
    return seen


def test_a_fit_in_epochs_streams_its_progress(client, blobs):
    job = client.start_training("epochs", blobs[0], algorithm="auto_encoder", params={"epoch_num": 4})
    seen = _fit_progress(client, job.id, lambda s: s[-1].done == s[-1].total)
    assert [(p.total, p.unit) for p in seen] == [(4, "epoch")] * len(seen)
    assert [p.done for p in seen] == sorted({p.done for p in seen}) and seen[-1].done == 4
    final = client.wait(job.id)
    assert final.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED and not final.HasField("fit_progress")


def test_a_cancel_during_a_fit_in_epochs_stops_the_fit(server, client, blobs):
    """100,000 epochs over 20,000 rows (most of an hour of fit) stop at the next reported epoch: the job after it,
    which needs the training worker (one in the embedded engine; Ray gives the cancelled task's CPU back), trains
    within a minute."""
    X = np.random.default_rng(5).normal(size=(20000, 5))
    job = client.start_training("endless", X, algorithm="auto_encoder",
                                params={"epoch_num": 100_000, "batch_size": 20000})
    seen = _fit_progress(client, job.id, lambda s: len(s) >= 2)
    assert seen[1].done > seen[0].done and seen[0].total == 100_000
    record = LocalStore(server.store).load_job(job.id)  # progress is not written to the store at each report
    assert record["stage"] == "fit" and record.get("fit_progress") is None, record
    cancelled = client.train_stub.CancelTrainingJob(train_pb2.CancelTrainingJobRequest(id=job.id)).job
    assert cancelled.state == train_pb2.TRAINING_JOB_STATE_CANCELLED and not cancelled.HasField("fit_progress")
    after = client.start_training("after-endless", blobs[0], algorithm="hbos")
    deadline = time.monotonic() + 60
    while (state := client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=after.id)).job.state) in (
            train_pb2.TRAINING_JOB_STATE_QUEUED, train_pb2.TRAINING_JOB_STATE_RUNNING) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED, "the cancelled fit still holds the training worker"
    with pytest.raises(grpc.RpcError) as e:
        client.get_model("endless")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_algorithms(client):
    algos = {a.name: a for a in client.list_algorithms()}
    assert {"iforest", "hbos", "sklearn.isolation_forest"} <= set(algos)
    iforest = algos["iforest"]
    assert iforest.implementation == "pyod.models.iforest.IForest" and iforest.exportable
    params = {p.name: p for p in iforest.parameters}
    assert params["n_estimators"].default_value.number_value == 100 and params["n_estimators"].type == "int"


def test_health_and_reflection(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "pynomaly.v1.DetectService", "pynomaly.v1.TrainService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == 1
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING  # a stream the server writes to
    watch.cancel()
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"pynomaly.v1.TrainService", "pynomaly.v1.ModelService", "pynomaly.v1.DetectService",
            "pynomaly.v1.ExplainService", "grpc.health.v1.Health"} <= names
