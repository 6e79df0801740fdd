"""Job records and models survive a server restart; a job cut off by a crash is reported, not lost."""

import time

import numpy as np

from pynomaly import Client
from pynomaly.store import LocalStore
from pynomaly.v1 import train_pb2

from conftest import ServerProcess

X = np.random.default_rng(5).normal(size=(200, 4))


def test_restart_keeps_jobs_and_models(tmp_path):
    store = tmp_path / "store"
    first = ServerProcess(store, "--train-workers", "1")
    try:
        with Client(first.address) as c:
            card = c.train("persist", X, algorithm="hbos")
            job_id = card.job_id
            before = c.detect("persist", X[:10]).anomaly_scores
    finally:
        first.stop()

    # What a crash mid-training leaves: a record still RUNNING and a half-written version in staging.
    LocalStore(store).save_job({
        "id": "job-00000000deadbeef", "model_name": "persist", "algorithm": "iforest", "params": {}, "state": "RUNNING",
        "stage": "fit", "message": "", "model_version": 0, "rows": 200, "columns": 4,
        "create_time": time.time(), "start_time": time.time(), "end_time": 0.0,
    })
    (store / ".staging" / "half").mkdir()
    (store / ".staging" / "half" / "model.onnx").write_bytes(b"partial")
    # ... and temporary JSON files a kill left before their rename (aliases, job records).
    leftovers = [store / "models" / "persist" / ".aliases.json.0123abcd.tmp", store / "jobs" / ".job-x.json.4567.tmp"]
    for path in leftovers:
        path.write_bytes(b'{"half')

    second = ServerProcess(store)
    try:
        with Client(second.address) as c:
            job = c.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id)).job
            assert job.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED and job.model_version == 1
            crashed = c.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id="job-00000000deadbeef")).job
            assert crashed.state == train_pb2.TRAINING_JOB_STATE_FAILED
            assert "interrupted by a server restart" in crashed.message
            np.testing.assert_array_equal(c.detect("persist", X[:10]).anomaly_scores, before)
            assert [m.version for m in c.list_models()] == [1]
        assert not any((store / ".staging").iterdir())
        assert not any(path.exists() for path in leftovers)
    finally:
        second.stop()
