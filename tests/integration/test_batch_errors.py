"""Bad batch jobs on both engines: refused before any job exists with the exact status and message, or FAILED naming
the row; either way the server keeps serving and nothing is left under the output's name (nor a partial file)."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pynomaly.client import BatchError
from pynomaly.v1 import detect_pb2

FEATURES = [f"f{i}" for i in range(5)]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _frame(n: int = 100, seed: int = 31) -> pd.DataFrame:
    X = np.random.default_rng(seed).normal(size=(n, 5))
    return pd.DataFrame(X, columns=FEATURES).assign(key=np.arange(n))


@pytest.fixture(scope="module")
def inputs(server):
    """Every bad input, in the server's data root; `good.parquet`; an existing output and a directory in the way."""
    root, out = server.data_root, server.output_root
    _frame().to_parquet(root / "good.parquet")
    (root / "folder.parquet").mkdir()
    (root / "rows.txt").write_text("f0,f1\n1,2\n")
    (root / "broken.parquet").write_bytes(b"this is not parquet")
    _frame().drop(columns=["f4"]).to_parquet(root / "missing.parquet")
    _frame().assign(label="x").to_parquet(root / "extra.parquet")
    _frame().assign(f2="text").to_parquet(root / "text.parquet")
    _frame().rename(columns={"key": "anomaly_score"}).to_parquet(root / "clash.parquet")
    (root / "twice.csv").write_text("f0,f1,f2,f3,f4,f0\n1,2,3,4,5,6\n")
    (root / "empty.csv").write_text("f0,f1,f2,f3,f4\n")
    (root / "early.csv").write_text("f0,f1,f2,f3,f4\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,abc,4,5\n")
    os.symlink("/etc", root / "escape")
    (out / "exists.parquet").write_bytes(b"an earlier result")
    (out / "folder.csv").mkdir()
    (out / "blocker").write_text("a file where a directory would be")
    return root


CREATE_CASES = [
    ("unknown model", dict(model="ghost"), grpc.StatusCode.NOT_FOUND, "model 'ghost' not found"),
    ("unknown version", dict(model="blobs@99"), grpc.StatusCode.NOT_FOUND, "model 'blobs' has no version 99"),
    ("no model", dict(model=""), INVALID, "model is required"),
    ("no input", dict(input_uri=""), INVALID, "input_uri is required"),
    ("no output", dict(output_uri=""), INVALID, "output_uri is required"),
    ("missing file", dict(input_uri="nope.parquet"), INVALID, "input_uri: 'nope.parquet' does not exist"),
    ("a directory", dict(input_uri="folder.parquet"), INVALID,
     "input_uri: 'folder.parquet' is a directory, not a file"),
    ("unsupported extension", dict(input_uri="rows.txt"), INVALID,
     "input_uri: 'rows.txt': unsupported file type '.txt'; use one of .csv, .parquet"),
    ("unreadable file", dict(input_uri="broken.parquet"), INVALID, "input_uri: cannot read 'broken.parquet': "),
    ("missing feature column", dict(input_uri="missing.parquet"), INVALID,
     "input_uri: 'missing.parquet' lacks 1 of the model's feature columns: 'f4'"),
    ("extra column", dict(input_uri="extra.parquet", id_column="key"), INVALID,
     "input_uri: 'extra.parquet' has column(s) that are not features of the model: 'label'; name one as "
     "id_column, set pass_through to copy them all, or drop them"),
    ("extra column without an id column", dict(id_column=""), INVALID,
     "input_uri: 'good.parquet' has column(s) that are not features of the model: 'key'"),
    ("unknown id column", dict(id_column="row_id"), INVALID, "id_column: 'row_id' is not a column of 'good.parquet'"),
    ("non-numeric feature column", dict(input_uri="text.parquet"), INVALID,
     "input_uri: feature column 'f2' of 'text.parquet' is text, not numeric"),
    ("non-numeric cell in the first block", dict(input_uri="early.csv", id_column=""), INVALID,
     "input_uri: row 3: column 'f2' is 'abc', not a number"),
    ("a column named like the output's", dict(input_uri="clash.parquet", id_column="", pass_through=True),
     INVALID, "input_uri: column 'anomaly_score' of 'clash.parquet' would clash with the output's own"),
    ("two columns with one name", dict(input_uri="twice.csv", id_column=""), INVALID,
     "input_uri: 'twice.csv' has two columns named 'f0'"),
    ("no rows", dict(input_uri="empty.csv", id_column=""), INVALID, "input_uri: 'empty.csv' has no rows"),
    ("input outside the data root", dict(input_uri="../secret.parquet"), grpc.StatusCode.PERMISSION_DENIED,
     "input_uri: '../secret.parquet' is outside the server's --data-root"),
    ("input through a symlink out of the root", dict(input_uri="escape/passwd.csv"),
     grpc.StatusCode.PERMISSION_DENIED, "input_uri: 'escape/passwd.csv' is outside the server's --data-root"),
    ("absolute input outside the root", dict(input_uri="file:///etc/hosts.csv"), grpc.StatusCode.PERMISSION_DENIED,
     "input_uri: 'file:///etc/hosts.csv' is outside the server's --data-root"),
    ("unsupported scheme", dict(input_uri="http://example.com/rows.csv"), INVALID,
     "input_uri: unsupported scheme in 'http://example.com/rows.csv'"),
    ("output outside the output root", dict(output_uri="../../out.parquet"), grpc.StatusCode.PERMISSION_DENIED,
     "output_uri: '../../out.parquet' is outside the server's --output-root"),
    ("output already exists", dict(output_uri="exists.parquet"), grpc.StatusCode.ALREADY_EXISTS,
     "output_uri: 'exists.parquet' already exists; set overwrite to replace it"),
    ("output is a directory", dict(output_uri="folder.csv", overwrite=True), INVALID,
     "output_uri: 'folder.csv' is a directory, not a file"),
    ("output under a file", dict(output_uri="blocker/out.parquet"), INVALID,
     "output_uri: cannot write 'blocker/out.parquet': a parent of it is a file, not a directory"),
    ("unsupported output extension", dict(output_uri="out.json"), INVALID,
     "output_uri: 'out.json': unsupported file type '.json'; use one of .csv, .parquet"),
    ("non-finite threshold", dict(threshold=float("inf")), INVALID, "threshold must be finite, got inf"),
]


@pytest.mark.parametrize("case, fields, code, message", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create_batch_detect_job_rejects(server, client, trained, inputs, case, fields, code, message):
    request = {"model": trained, "input_uri": "good.parquet", "output_uri": "never.parquet", "id_column": "key",
               **fields}
    before = sorted(os.listdir(server.output_root))
    jobs = len(client.list_batch_jobs())
    with pytest.raises(grpc.RpcError) as e:
        client.detect_stub.CreateBatchDetectJob(detect_pb2.CreateBatchDetectJobRequest(**request), timeout=30)
    assert e.value.code() == code
    assert message in e.value.details()
    assert sorted(os.listdir(server.output_root)) == before  # nothing written, not even a partial file
    assert (server.output_root / "exists.parquet").read_bytes() == b"an earlier result"
    assert len(client.list_batch_jobs()) == jobs  # no job was created
    assert server.alive()


def _late(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    frame = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    frame.loc[row, column] = value
    return frame


# (input file, how it is written, the job's message). Parquet files have row groups of 20,000 rows; the CSV block
# pyarrow parses first (4 MiB) holds ~38,000 of these rows, so row 60,000 is found while the job runs.
FAILED_CASES = [
    ("nan.parquet", lambda f: _late(f, 50_000, "f3", np.nan),
     "input_uri: row 50000 (row group 2): column 'f3' is nan; values must be finite (no NaN or inf)"),
    ("inf.parquet", lambda f: _late(f, 20_000, "f0", -np.inf),
     "input_uri: row 20000 (row group 1): column 'f0' is -inf; values must be finite (no NaN or inf)"),
    ("huge.parquet", lambda f: _late(f, 69_999, "f1", 1e300),
     "input_uri: row 69999 (row group 3): column 'f1' is 1e+300; values must be within float32's range "
     "(|x| ≤ 3.40282e+38)"),
    ("null.parquet", lambda f: _late(f, 7, "f4", None),
     "input_uri: row 7 (row group 0): column 'f4' has no value (empty, NA, NaN or null)"),
    ("late-text.csv", lambda f: _late(f, 60_000, "f2", "oops"),
     "input_uri: row 60000: column 'f2' is 'oops', not a number"),
    ("late-empty.csv", lambda f: _late(f, 60_001, "f0", None),
     "input_uri: row 60001: column 'f0' has no value (empty, NA, NaN or null)"),
]


@pytest.mark.parametrize("name, make, message", FAILED_CASES, ids=[c[0] for c in FAILED_CASES])
def test_a_bad_row_fails_the_job_naming_it(server, client, trained, name, make, message):
    frame = make(_frame(70_000, seed=37))
    if name.endswith(".csv"):
        frame.to_csv(server.data_root / name, index=False)
    elif name == "null.parquet":  # pandas writes NaN as null
        frame.to_parquet(server.data_root / name, row_group_size=20_000)
    else:  # from numpy: NaN stays NaN
        table = pa.table({c: pa.array(frame[c].to_numpy()) for c in frame.columns})
        pq.write_table(table, server.data_root / name, row_group_size=20_000)
    out = f"from-{name}.parquet"
    with pytest.raises(BatchError) as e:
        client.batch_detect(trained, name, out, id_column="key", wait_timeout=300)
    job = e.value.job
    assert job.state == detect_pb2.BATCH_DETECT_JOB_STATE_FAILED
    assert job.message.startswith(message), job.message
    assert [p for p in os.listdir(server.output_root) if out in p] == []
    assert server.alive()
    assert client.get_batch_job(job.id).state == detect_pb2.BATCH_DETECT_JOB_STATE_FAILED


def test_get_cancel_and_watch_of_an_unknown_job(server, client):
    for call, request in [(client.detect_stub.GetBatchDetectJob, detect_pb2.GetBatchDetectJobRequest),
                          (client.detect_stub.CancelBatchDetectJob, detect_pb2.CancelBatchDetectJobRequest),
                          (lambda r, timeout: list(client.detect_stub.WatchBatchDetectJob(r, timeout=timeout)),
                           detect_pb2.WatchBatchDetectJobRequest)]:
        with pytest.raises(grpc.RpcError) as e:
            call(request(id="batch-0000000000000000"), timeout=10)
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                       "batch job 'batch-0000000000000000' not found")
        with pytest.raises(grpc.RpcError) as e:
            call(request(id=""), timeout=10)
        assert (e.value.code(), e.value.details()) == (INVALID, "id is required")
    assert server.alive()
