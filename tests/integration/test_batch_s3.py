"""Batch jobs reading and writing S3-compatible object storage (moto's S3 server on 127.0.0.1, through the standard
AWS variables), with the model store there too: the output is one multipart upload, completed only at the end, so
a cancelled or failed job leaves no object and no upload behind."""

from __future__ import annotations

import io
import time
import uuid

import grpc
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from pynomaly import Client
from pynomaly.client import BatchError
from pynomaly.v1 import detect_pb2

from conftest import ServerProcess, moto_s3, require_ray

BUCKET = "pynomaly-batch"
FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def s3():
    with moto_s3(BUCKET) as client:
        yield client


@pytest.fixture(scope="module", params=["embedded", "ray"])
def engine(request) -> str:
    if request.param == "ray":
        require_ray()
    return request.param


@pytest.fixture(scope="module")
def platform(engine, s3):
    """A server whose model store is in the bucket, a model, and the inputs uploaded: rows.parquet (5,000 rows,
    with an id), big.parquet (1,000,000 rows), nan.parquet (a null at row 70,000)."""
    prefix = uuid.uuid4().hex[:8]
    store = f"s3://{BUCKET}/{prefix}/store"
    server = ServerProcess(store, engine=engine)  # type: ignore[arg-type]  # a URL where a directory goes
    rng = np.random.default_rng(43)
    with Client(server.address, timeout=60) as client:
        client.train("s3model", pd.DataFrame(rng.normal(size=(300, 4)), columns=FEATURES), algorithm="hbos")
        frames = {
            "rows": pd.DataFrame(rng.normal(size=(5_000, 4)), columns=FEATURES).assign(id=np.arange(5_000)),
            "big": pd.DataFrame(rng.normal(size=(1_000_000, 4)), columns=FEATURES),
            "nan": pd.DataFrame(rng.normal(size=(100_000, 4)), columns=FEATURES),
        }
        frames["nan"].loc[70_000, "c"] = np.nan  # pandas writes it as null
        for name, frame in frames.items():
            buffer = io.BytesIO()
            frame.to_parquet(buffer, row_group_size=50_000)
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/in/{name}.parquet", Body=buffer.getvalue())
        yield server, client, f"s3://{BUCKET}/{prefix}", frames
    server.stop()


def _keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def _uploads(s3, key: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])]


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_s3_in_s3_out(s3, platform, suffix):
    server, client, base, frames = platform
    out = f"{base}/out/scores.{suffix}"
    job = client.batch_detect("s3model", f"{base}/in/rows.parquet", out, id_column="id")
    assert job.state == detect_pb2.BATCH_DETECT_JOB_STATE_SUCCEEDED and job.rows_done == 5_000
    body = s3.get_object(Bucket=BUCKET, Key=out.split("/", 3)[3])["Body"].read()
    table = pq.read_table(io.BytesIO(body)) if suffix == "parquet" else pd.read_csv(io.BytesIO(body))
    expected = client.detect("s3model", frames["rows"][FEATURES])
    scores = np.asarray(table["anomaly_score"])
    np.testing.assert_array_equal(scores.astype(expected.anomaly_scores.dtype), expected.anomaly_scores)
    assert list(np.asarray(table["id"])) == list(range(5_000))
    if suffix == "parquet":
        assert table.schema.metadata[b"pynomaly.model_version"] == str(job.model_version).encode()
    # An existing object is refused unless overwrite is set.
    with pytest.raises(grpc.RpcError) as e:
        client.start_batch_detect("s3model", f"{base}/in/rows.parquet", out, id_column="id")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details() == f"output_uri: {out!r} already exists; set overwrite to replace it"
    again = client.batch_detect("s3model", f"{base}/in/rows.parquet", out, id_column="id", overwrite=True,
                                threshold=1e9)
    assert again.anomalies == 0 and _uploads(s3, out.split("/", 3)[3]) == []


def test_cancel_aborts_the_multipart_upload(s3, platform):
    server, client, base, _ = platform
    key = f"{base}/out/cancelled.csv".split("/", 3)[3]
    job = client.start_batch_detect("s3model", f"{base}/in/big.parquet", f"s3://{BUCKET}/{key}", pass_through=True)
    deadline = time.monotonic() + 300
    while not _uploads(s3, key):  # the output goes up in parts as it is written...
        assert client.get_batch_job(job.id).state != detect_pb2.BATCH_DETECT_JOB_STATE_SUCCEEDED
        assert time.monotonic() < deadline, "no multipart upload started"
        time.sleep(0.05)
    with pytest.raises(ClientError):  # ...and nothing is under the key while it does
        s3.head_object(Bucket=BUCKET, Key=key)
    assert client.cancel_batch_job(job.id).state == detect_pb2.BATCH_DETECT_JOB_STATE_CANCELLED
    assert _uploads(s3, key) == [] and key not in _keys(s3, key)
    assert server.alive()


def test_a_failed_job_leaves_no_object(s3, platform):
    server, client, base, _ = platform
    key = f"{base}/out/failed.parquet".split("/", 3)[3]
    with pytest.raises(BatchError) as e:
        client.batch_detect("s3model", f"{base}/in/nan.parquet", f"s3://{BUCKET}/{key}")
    assert e.value.job.message == ("input_uri: row 70000 (row group 1): column 'c' has no value (empty, NA, NaN or "
                                   "null)")
    assert _uploads(s3, key) == [] and _keys(s3, key) == []


@pytest.mark.parametrize("field, uri, code, message", [
    ("input_uri", "{base}/in/nope.parquet", grpc.StatusCode.INVALID_ARGUMENT,
     "input_uri: '{base}/in/nope.parquet' does not exist"),
    ("output_uri", "s3://no-such-bucket/out.parquet", grpc.StatusCode.INVALID_ARGUMENT,
     "output_uri: bucket 'no-such-bucket' does not exist"),
    ("output_uri", "{base}/store/models/s3model/evil.parquet", grpc.StatusCode.PERMISSION_DENIED,
     "output_uri: '{base}/store/models/s3model/evil.parquet' is inside the model store"),
    ("input_uri", "{base}/in", grpc.StatusCode.INVALID_ARGUMENT, "input_uri: '{base}/in' is a directory, not a file"),
    ("output_uri", "s3://bucket-only", grpc.StatusCode.INVALID_ARGUMENT,
     "output_uri: 's3://bucket-only' names a bucket, not an object (s3://bucket/key)"),
])
def test_s3_locations_are_checked(s3, platform, field, uri, code, message):
    server, client, base, _ = platform
    request = {"input_uri": f"{base}/in/rows.parquet", "output_uri": f"{base}/out/never.parquet",
               field: uri.format(base=base)}
    with pytest.raises(grpc.RpcError) as e:
        client.start_batch_detect("s3model", id_column="id", **request)
    assert (e.value.code(), e.value.details()) == (code, message.format(base=base))
    assert "never.parquet" not in " ".join(_keys(s3, base.split("/", 3)[3]))
    assert server.alive()
