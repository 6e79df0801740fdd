"""Limits: nothing a client sends can exhaust the server. Each limit answers its status with a message naming the
flag, leaves the store unchanged and the server up. Servers here start with small caps (the `server` fixture keeps
the defaults); the Gateway's caps are checked on the Ray engine too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper

from pynomaly.client import Client
from pynomaly.v1 import train_pb2
from tests.conftest import ServerProcess, require_ray

F = 3


def _graph(nodes: list, inits: list) -> bytes:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", F])],
                          [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


AXES = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
# The sum of a row's squares: a fast graph to fill a model with versions.
SQUARES = _graph([helper.make_node("Mul", ["X", "X"], ["sq"]),
                  helper.make_node("ReduceSum", ["sq", "axes"], ["score"], keepdims=0)], [AXES])


def _looping(trips: list) -> bytes:
    """The row sums plus a Loop of no-op additions, `trips` computed by `trips` nodes into "trips" (int64 scalar):
    as slow as wanted, a few hundred bytes."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "zero_f"],
                                                                                   ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])],
        [helper.make_tensor("zero_f", TensorProto.FLOAT, [], [0.0])])
    nodes = [*trips, helper.make_node("Loop", ["trips", "cond", "acc0"], ["acc"], body=body),
             helper.make_node("ReduceSum", ["X", "axes"], ["s"], keepdims=0),
             helper.make_node("Add", ["s", "acc"], ["score"])]
    return _graph(nodes, [AXES, helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
                          helper.make_tensor("acc0", TensorProto.FLOAT, [], [0.0]),
                          helper.make_tensor("four", TensorProto.INT64, [], [4]),
                          helper.make_tensor("zero_i", TensorProto.INT64, [], [0])])


# N³/4 iterations for N rows: the import's 64 probe rows take ~0.2 s, 1,000 rows would take minutes.
CUBIC = _looping([helper.make_node("Shape", ["X"], ["shape"]),
                  helper.make_node("Gather", ["shape", "zero_i"], ["n"], axis=0),
                  helper.make_node("Mul", ["n", "n"], ["n2"]), helper.make_node("Mul", ["n2", "n"], ["n3"]),
                  helper.make_node("Div", ["n3", "four"], ["trips"])])
# 10¹² iterations whatever the rows: never finishes.
ENDLESS = _looping([helper.make_node("Constant", [], ["trips"],
                                     value=helper.make_tensor("t", TensorProto.INT64, [], [10**12]))])

ROWS = np.random.default_rng(0).normal(size=(4000, F))


def _refused(call, code: grpc.StatusCode, *needles: str) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == code, e.value.details()
    for needle in needles:
        assert needle in e.value.details()
    return e.value.details()


def _versions(client: Client, name: str) -> list[int]:
    try:
        return sorted(v.version for v in client.list_model_versions(name))
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
        return []


def _wait(client: Client, job_id: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id), timeout=10).job
        if job.end_time.seconds:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


CAPS = ("--max-queued-jobs", "2", "--max-versions-per-model", "2", "--explain-timeout-s", "0.3",
        "--import-run-timeout-s", "2")


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Client, str]]:
    srv = ServerProcess(tmp_path_factory.mktemp("store"), *CAPS)
    client = Client(srv.address, timeout=None)  # no deadline: the server's own limits apply
    X = np.random.default_rng(1).normal(size=(300, 8))
    card = client.train("explained", X, algorithm="iforest")
    yield srv, client, f"explained@{card.version}"
    client.close()
    srv.stop()


def test_training_jobs_beyond_the_queue_cap_are_refused_without_keeping_their_rows(capped):
    srv, client, _ = capped
    params = {"n_estimators": 300}
    jobs = [client.start_training("queued", ROWS, algorithm="iforest", params=params) for _ in range(2)]
    _refused(lambda: client.start_training("queued", ROWS, algorithm="iforest", params=params),
             grpc.StatusCode.RESOURCE_EXHAUSTED,
             "2 training jobs are queued or running, the most this server takes (--max-queued-jobs 2)")
    assert srv.alive()
    assert len([j for j in client.train_stub.ListTrainingJobs(
        train_pb2.ListTrainingJobsRequest(model_name="queued"),
        timeout=10).jobs]) == 2  # the refused one left no record
    for job in jobs:
        client.train_stub.CancelTrainingJob(
            train_pb2.CancelTrainingJobRequest(id=job.id), timeout=10)
    job = client.start_training("queued", ROWS[:100], algorithm="iforest")  # room again once they ended
    assert _wait(client, job.id).model_version == 1
    assert _versions(client, "queued") == [1]


def test_versions_beyond_the_per_model_cap_are_refused_at_import_and_at_job_creation(capped):
    srv, client, _ = capped
    assert [client.import_model("full", SQUARES, threshold=1.0).version for _ in range(2)] == [1, 2]
    message = "model 'full' has 2 versions, the most this server keeps (--max-versions-per-model 2); delete old ones"
    _refused(lambda: client.import_model("full", SQUARES, threshold=1.0), grpc.StatusCode.RESOURCE_EXHAUSTED,
             message)
    _refused(lambda: client.start_training("full", ROWS[:100]), grpc.StatusCode.RESOURCE_EXHAUSTED, message)
    assert srv.alive() and _versions(client, "full") == [1, 2]
    client.delete_model("full@1")
    assert client.import_model("full", SQUARES, threshold=1.0).version == 3


def test_a_job_whose_model_filled_up_while_it_trained_is_not_registered(capped):
    srv, client, _ = capped
    client.import_model("race", SQUARES, threshold=1.0)
    job = client.start_training("race", ROWS, algorithm="iforest", params={"n_estimators": 200})
    client.import_model("race", SQUARES, threshold=1.0)  # the second and last version, while the job trains
    job = _wait(client, job.id)
    assert job.model_version == 0 and "not registered: model 'race' has 2 versions" in job.message
    assert "--max-versions-per-model 2" in job.message
    assert srv.alive() and _versions(client, "race") == [1, 2]


def test_kernel_shap_without_a_client_deadline_stops_at_the_servers(capped):
    srv, client, model = capped
    X = np.random.default_rng(2).normal(size=(400, 8))
    _refused(lambda: client.explain(model, X, method="kernel_shap"), grpc.StatusCode.DEADLINE_EXCEEDED,
             "Kernel SHAP explained", "of 400 rows", "this server allows 0.3 s, --explain-timeout-s")
    assert srv.alive()
    with Client(srv.address, timeout=120) as patient:  # the client's own deadline replaces the server's
        assert patient.explain(model, X[:20], method="kernel_shap").contributions.shape == (20, 8)


def test_an_imported_graph_running_too_long_is_stopped(capped):
    srv, client, _ = capped
    card = client.import_model("cubic", CUBIC, threshold=1.0)  # its probe rows run in time
    rows = np.random.default_rng(3).normal(size=(1000, F))
    started = time.monotonic()
    _refused(lambda: client.detect(f"cubic@{card.version}", rows), grpc.StatusCode.DEADLINE_EXCEEDED,
             "model cubic@1 (an imported graph) scoring 500 rows ran for",  # a half: 2 threads score 1,000
             "may take at most 2 s on this server (--import-run-timeout-s)")
    assert time.monotonic() - started < 30
    assert srv.alive()
    assert client.detect("cubic@1", rows[:4]).anomaly_scores.shape == (4,)  # small calls still score


def test_an_imported_graph_whose_probe_rows_run_too_long_is_refused(capped):
    srv, client, _ = capped
    _refused(lambda: client.import_model("endless", ENDLESS, threshold=1.0), grpc.StatusCode.DEADLINE_EXCEEDED,
             "onnx_model: scoring 64 probe rows ran for", "(--import-run-timeout-s)")
    assert srv.alive() and _versions(client, "endless") == []


def test_no_version_is_written_beyond_the_store_size_cap(tmp_path):
    srv = ServerProcess(tmp_path, "--max-store-mb", "0.0001")
    try:
        with Client(srv.address) as client:
            assert client.import_model("first", SQUARES, threshold=1.0).version == 1  # the store was empty
            before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*"))
            for call in (lambda: client.import_model("second", SQUARES, threshold=1.0),
                         lambda: client.start_training("second", ROWS[:100])):
                _refused(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "the model store holds",
                         "the most this server keeps (--max-store-mb 0.0001); delete old versions")
            assert srv.alive()
            assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*")) == before
    finally:
        srv.stop()


def _record(folder: Path, job_id: str, state: str, ended: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_id}.json").write_text(json.dumps({
        "id": job_id, "model_name": "m", "algorithm": "iforest", "params": {}, "state": state, "stage": "",
        "message": "", "model_version": 0, "rows": 1, "columns": 1, "create_time": ended - 5, "start_time": 0.0,
        "end_time": ended if state != "RUNNING" else 0.0, "description": "",
    }))


def test_finished_job_records_beyond_the_count_or_the_age_are_deleted_at_start_up(tmp_path):
    now = time.time()
    jobs, batch = tmp_path / "jobs", tmp_path / "batch-jobs"
    # Well-formed ids (a prefix and 16 hex digits), named here for what each record is.
    new, older, oldest, stale, running = (f"job-{i:016x}" for i in range(1, 6))
    for job_id, state, ended in ((new, "SUCCEEDED", now - 10), (older, "FAILED", now - 20),
                                 (oldest, "CANCELLED", now - 30), (stale, "SUCCEEDED", now - 3 * 86400),
                                 (running, "RUNNING", now - 40)):
        _record(jobs, job_id, state, ended)
    batch_new, batch_old, batch_stale = (f"batch-{i:016x}" for i in range(1, 4))
    for job_id, ended in ((batch_new, now - 10), (batch_old, now - 20), (batch_stale, now - 5 * 86400)):
        _record(batch, job_id, "SUCCEEDED", ended)
    srv = ServerProcess(tmp_path, "--keep-jobs", "3", "--job-ttl-days", "2")
    try:
        # The running one was interrupted by the restart: now the newest finished record, so it is kept.
        assert sorted(p.stem for p in jobs.glob("*.json")) == sorted([new, older, running])
        assert sorted(p.stem for p in batch.glob("*.json")) == sorted([batch_new, batch_old])
        with Client(srv.address) as client:
            _refused(lambda: client.train_stub.GetTrainingJob(
                train_pb2.GetTrainingJobRequest(id=stale),
                timeout=10), grpc.StatusCode.NOT_FOUND, stale)
            # Pruned with each new job: the first makes four finished records, the second drops the oldest.
            first = client.wait(client.start_training("m", ROWS[:100], algorithm="iforest").id)
            assert len(list(jobs.glob("*.json"))) == 4
            second = client.wait(client.start_training("m", ROWS[:100], algorithm="iforest").id)
            assert sorted(p.stem for p in jobs.glob("*.json")) == sorted([new, running, first.id, second.id])
        assert srv.alive()
    finally:
        srv.stop()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--max-queued-jobs", "0", "argument --max-queued-jobs: must be a whole number ≥ 1, got 0"),
    ("--max-versions-per-model", "1.5", "argument --max-versions-per-model: not a whole number: '1.5'"),
    ("--max-store-mb", "-1", "argument --max-store-mb: must be a number of MiB > 0, got -1"),
    ("--explain-timeout-s", "nan", "argument --explain-timeout-s: must be a number of seconds > 0, got nan"),
    ("--import-run-timeout-s", "0", "argument --import-run-timeout-s: must be a number of seconds > 0, got 0"),
    ("--keep-jobs", "-1", "argument --keep-jobs: must be a whole number ≥ 0, got -1"),
    ("--job-ttl-days", "inf", "argument --job-ttl-days: must be a number of days > 0, got inf"),
    ("--max-cache-mb", "lots", "argument --max-cache-mb: not a number of MiB: 'lots'"),
])
def test_bad_limit_values_are_refused_naming_the_flag(tmp_path, flag, value, message):
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--store", str(tmp_path), flag, value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"pynomaly serve: error: {message}"
    assert not (tmp_path / "models").exists()  # refused before anything started


def test_the_gateway_enforces_the_caps_on_the_ray_engine(tmp_path):
    require_ray()
    srv = ServerProcess(tmp_path, "--max-queued-jobs", "1", "--max-versions-per-model", "1",
                        "--explain-timeout-s", "0.3", engine="ray")
    try:
        with Client(srv.address, timeout=None) as client:
            assert client.import_model("full", SQUARES, threshold=1.0).version == 1
            _refused(lambda: client.import_model("full", SQUARES, threshold=1.0),
                     grpc.StatusCode.RESOURCE_EXHAUSTED, "model 'full' has 1 versions", "--max-versions-per-model 1")
            job = client.start_training("explained", np.random.default_rng(1).normal(size=(300, 8)))
            _refused(lambda: client.start_training("other", ROWS[:100]), grpc.StatusCode.RESOURCE_EXHAUSTED,
                     "1 training jobs are queued or running", "(--max-queued-jobs 1)")
            model = f"explained@{_wait(client, job.id, 300).model_version}"
            rows = np.random.default_rng(2).normal(size=(400, 8))
            _refused(lambda: client.explain(model, rows, method="kernel_shap"),
                     grpc.StatusCode.DEADLINE_EXCEEDED, "this server allows 0.3 s, --explain-timeout-s")
            assert srv.alive() and _versions(client, "full") == [1] and _versions(client, "other") == []
    finally:
        srv.stop()
