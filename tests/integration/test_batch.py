"""Batch scoring over the real server, on both engines: CSV and Parquet both ways, scores equal to Detect's for the
same rows, ids and passed-through columns kept in order, the model version in the job and in the Parquet metadata,
progress, listing, and cancel leaving no file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from pynomaly.v1 import detect_pb2, train_pb2

N = 70_000  # more than one chunk (65,536 rows): chunk boundaries are crossed
FEATURES = [f"f{i}" for i in range(5)]
SUCCEEDED = detect_pb2.BATCH_DETECT_JOB_STATE_SUCCEEDED
CANCELLED = detect_pb2.BATCH_DETECT_JOB_STATE_CANCELLED


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """N rows of the blobs model's features, with planted outliers, a string key in the middle and a note column;
    the features in another order than the model's."""
    rng = np.random.default_rng(23)
    X = rng.normal(size=(N, 5))
    X[::997] = rng.uniform(5, 8, size=(len(X[::997]), 5))
    frame = pd.DataFrame(X, columns=FEATURES)[["f3", "f0", "f1", "f4", "f2"]]
    frame.insert(2, "key", [f"r{i}" for i in range(N)])
    return frame


@pytest.fixture(scope="module")
def files(server, frame):
    """The inputs, in the server's data root: rows.{csv,parquet} (features + key), extra.csv (+ a note column).
    The Parquet file has row groups of 20,000 rows."""
    root = server.data_root
    frame.to_parquet(root / "rows.parquet", row_group_size=20_000)
    frame.to_csv(root / "rows.csv", index=False)
    frame.assign(note=np.where(np.arange(N) % 3 == 0, "checked", "new")).to_csv(root / "extra.csv", index=False)
    return root


@pytest.fixture(scope="module")
def expected(client, trained, frame):
    """Detect's answer for the same rows, in the model's feature order."""
    return client.detect(trained, frame[FEATURES].to_numpy())


def _read(path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types={"key": pa.string()}))


def _leftovers(root, name: str) -> list[str]:
    """Anything under the output root named after `name`: the file itself, or a partial one."""
    return sorted(p.name for p in root.iterdir() if name in p.name)


@pytest.mark.parametrize("source, target", [("parquet", "parquet"), ("csv", "csv"), ("csv", "parquet"),
                                            ("parquet", "csv")])
def test_scores_equal_detect_and_ids_stay_in_order(server, client, trained, files, frame, expected, source, target):
    out = f"ids-{source}-to-{target}.{target}"
    job = client.batch_detect(trained, f"rows.{source}", out, id_column="key")
    name, version = trained.split("@")
    assert (job.state, job.model, job.model_name, job.model_version) == (SUCCEEDED, trained, name, int(version))
    assert job.rows_done == job.rows_total == N
    assert job.anomalies == int(expected.is_anomaly.sum()) > 0
    assert job.threshold == expected.threshold
    assert job.message == f"scored {N} rows with {trained}: {job.anomalies} anomalous"
    table = _read(server.output_root / out)
    assert table.column_names == ["key", "anomaly_score", "is_anomaly"]
    assert table["key"].to_pylist() == frame["key"].tolist()
    # The scores in the scoring's dtype (float32 in Parquet; CSV holds their shortest decimal text).
    scores = table["anomaly_score"].to_numpy()
    assert scores.dtype == (expected.anomaly_scores.dtype if target == "parquet" else np.float64)
    np.testing.assert_array_equal(scores.astype(expected.anomaly_scores.dtype), expected.anomaly_scores)
    np.testing.assert_array_equal(table["is_anomaly"].to_numpy(), expected.is_anomaly)
    if target == "parquet":
        metadata = pq.read_schema(server.output_root / out).metadata
        assert metadata[b"pynomaly.model_name"] == name.encode()
        assert metadata[b"pynomaly.model_version"] == version.encode()
        assert metadata[b"pynomaly.job_id"] == job.id.encode()
    assert _leftovers(server.output_root, out) == [out]


def test_pass_through_copies_every_column_and_a_threshold_override(server, client, trained, files, frame,
                                                                  expected):
    job = client.batch_detect(trained, "extra.csv", "passed.parquet", pass_through=True, threshold=0.0)
    assert job.state == SUCCEEDED and job.threshold == 0.0 and job.pass_through
    table = pq.read_table(server.output_root / "passed.parquet")
    columns = [*frame.columns, "note"]
    assert table.column_names == [*columns, "anomaly_score", "is_anomaly"]
    got = table.select(columns).to_pandas()
    pd.testing.assert_frame_equal(got, frame.assign(note=np.where(np.arange(N) % 3 == 0, "checked", "new")))
    np.testing.assert_array_equal(table["anomaly_score"].to_numpy(), expected.anomaly_scores)
    np.testing.assert_array_equal(table["is_anomaly"].to_numpy(), expected.anomaly_scores > 0.0)
    assert pq.read_schema(server.output_root / "passed.parquet").metadata[b"pynomaly.threshold"] == b"0.0"


def test_watch_get_and_list(server, client, trained, files):
    job = client.start_batch_detect(trained, "rows.parquet", "watched.parquet", id_column="key")
    assert job.state == detect_pb2.BATCH_DETECT_JOB_STATE_QUEUED and job.rows_total == N and job.rows_done == 0
    events = list(client.watch_batch_job(job.id, timeout=300))
    assert events[-1].state == SUCCEEDED and events[-1].rows_done == N and events[-1].eta_seconds == 0
    done = [e.rows_done for e in events]
    assert done == sorted(done)
    assert all(e.state == detect_pb2.BATCH_DETECT_JOB_STATE_RUNNING for e in events[1:-1])
    got = client.get_batch_job(job.id)
    assert got == events[-1] and got.rows_per_second > 0 and got.end_time.seconds >= got.start_time.seconds > 0
    assert client.list_batch_jobs()[0].id == job.id
    assert job.id in [j.id for j in client.list_batch_jobs(trained.split("@")[0])]
    assert client.list_batch_jobs("no-such-model") == []
    # Batch jobs are not training jobs: their records are kept apart.
    training = client.train_stub.ListTrainingJobs(train_pb2.ListTrainingJobsRequest()).jobs
    assert not any(j.id.startswith("batch-") for j in training)


@pytest.fixture(scope="module")
def big(server):
    """1,000,000 rows: long enough to cancel while it runs, on either engine."""
    rng = np.random.default_rng(29)
    frame = pd.DataFrame(rng.normal(size=(1_000_000, 5)), columns=FEATURES).assign(key=np.arange(1_000_000))
    frame.to_parquet(server.data_root / "big.parquet", row_group_size=100_000)
    return "big.parquet"


def test_cancel_stops_the_job_and_leaves_no_file(server, client, trained, big):
    job = client.start_batch_detect(trained, big, "cancelled.csv", pass_through=True)
    for event in client.watch_batch_job(job.id, timeout=300):
        if event.rows_done > 0:
            break
    assert event.state == detect_pb2.BATCH_DETECT_JOB_STATE_RUNNING and 0 < event.rows_done < 1_000_000
    cancelled = client.cancel_batch_job(job.id)
    assert cancelled.state == CANCELLED and cancelled.message == "cancelled by a client"
    # Cancel returns once the work has stopped: nothing under the final name, no partial file either.
    assert _leftovers(server.output_root, "cancelled.csv") == []
    assert [e.state for e in client.watch_batch_job(job.id, timeout=30)] == [CANCELLED]
    assert client.cancel_batch_job(job.id) == client.get_batch_job(job.id)  # cancelling again changes nothing
    assert server.alive()
    assert client.detect(trained, np.zeros((1, 5))).model_version == job.model_version


def test_cancelling_a_finished_job_returns_it_unchanged(client, trained, files):
    job = client.batch_detect(trained, "rows.csv", "finished.csv", id_column="key")
    assert client.cancel_batch_job(job.id) == client.get_batch_job(job.id) == job
