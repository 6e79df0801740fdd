"""Bad input on every path: the exact status code, a message naming the problem, and a server that keeps serving."""

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from pynomaly.v1 import (
    common_pb2,
    detect_pb2,
    detect_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    train_pb2,
    train_pb2_grpc,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def _m(X):
    X = np.asarray(X, dtype=np.float32)
    return common_pb2.Matrix(rows=X.shape[0], columns=X.shape[1], raw_values=X.tobytes())


def _m64(X):
    X = np.asarray(X, dtype=np.float64)
    return common_pb2.Matrix(rows=X.shape[0], columns=X.shape[1], raw_double_values=X.tobytes())


def _num(v):
    return struct_pb2.Value(number_value=v)


GOOD = np.random.default_rng(0).normal(size=(50, 5))

DETECT_CASES = [
    ("wrong column count", dict(rows=_m(np.zeros((2, 4)))), INVALID,
     "rows: expected 5 columns (the model's feature count), got 4"),
    ("NaN", dict(rows=_m([[0, 0, np.nan, 0, 0]])), INVALID, "rows: row 0 column 2 is nan; values must be finite"),
    ("inf", dict(rows=_m([[0, 0, 0, 0, 0], [0, np.inf, 0, 0, 0]])), INVALID, "rows: row 1 column 1 is inf"),
    ("empty matrix", dict(rows=common_pb2.Matrix(rows=0, columns=5)), INVALID, "rows: the matrix is empty"),
    ("no rows field", dict(), INVALID, "rows: the matrix is empty (0 rows × 0 columns)"),
    ("values length", dict(rows=common_pb2.Matrix(rows=2, columns=5, values=[1.0] * 9)), INVALID,
     "rows.values: 9 values, expected rows × columns = 10"),
    ("raw length", dict(rows=common_pb2.Matrix(rows=1, columns=5, raw_values=b"\0" * 19)), INVALID,
     "rows.raw_values: 19 bytes, expected rows × columns × 4 = 20"),
    ("non-finite threshold", dict(rows=_m(np.zeros((1, 5))), threshold=float("nan")), INVALID,
     "threshold must be finite"),
    ("unknown model", dict(model="nosuchmodel", rows=_m(np.zeros((1, 5)))), NOT_FOUND,
     "model 'nosuchmodel' not found"),
    ("unknown version", dict(model="blobs@99", rows=_m(np.zeros((1, 5)))), NOT_FOUND,
     "model 'blobs' has no version 99"),
    ("unknown alias", dict(model="blobs:canary", rows=_m(np.zeros((1, 5)))), NOT_FOUND,
     "model 'blobs' has no alias 'canary'"),
    ("malformed reference", dict(model="blobs@x", rows=_m(np.zeros((1, 5)))), INVALID,
     "the version after '@' must be a positive integer"),
    ("missing model", dict(model="", rows=_m(np.zeros((1, 5)))), INVALID, "model is required"),
]


@pytest.mark.parametrize("case, fields, code, message", DETECT_CASES, ids=[c[0] for c in DETECT_CASES])
def test_detect_rejects(server, trained, case, fields, code, message):
    stub = detect_pb2_grpc.DetectServiceStub(server.channel)
    request = detect_pb2.DetectRequest(**{"model": trained, **fields})
    with pytest.raises(grpc.RpcError) as e:
        stub.Detect(request, timeout=10)
    assert e.value.code() == code
    assert message in e.value.details()
    assert server.alive()


TRAIN_CASES = [
    ("unknown algorithm", dict(algorithm="forest"), INVALID,
     "algorithm: unknown algorithm 'forest'; available: "),
    ("missing algorithm", dict(algorithm=""), INVALID, "algorithm is required; available: "),
    ("unknown hyperparameter", dict(params={"n_trees": _num(5)}), INVALID,
     "params: unknown hyperparameter 'n_trees' for algorithm 'iforest'"),
    ("hyperparameter out of range", dict(params={"n_estimators": _num(0)}), INVALID,
     "params.n_estimators: must be an integer in [1, 10000], got number 0"),
    ("hyperparameter of the wrong type", dict(params={"bootstrap": _num(1)}), INVALID,
     "params.bootstrap: must be true or false"),
    ("bad model name", dict(model_name="no/slashes"), INVALID, "model_name 'no/slashes' is invalid"),
    ("contamination", dict(contamination=0.7), INVALID, "contamination must be in (0, 0.5], got 0.7"),
    ("no data", dict(matrix=None), INVALID, "data: set either matrix or data_uri"),
    ("empty matrix", dict(matrix=common_pb2.Matrix(rows=0, columns=5)), INVALID, "matrix: the matrix is empty"),
    ("NaN in training data", dict(matrix=_m(np.where(np.eye(50, 5) > 0, np.nan, GOOD))), INVALID,
     "matrix: row 0 column 0 is nan"),
    ("one row", dict(matrix=_m(GOOD[:1])), INVALID, "training needs at least 2 rows, got 1"),
    ("float64 beyond float32's range", dict(matrix=_m64(np.where(np.eye(50, 5) > 0, 1e300, GOOD))), INVALID,
     "matrix: row 0 column 0 is 1e+300; values must be within float32's range (|x| ≤ 3.40282e+38) — 5 values out "
     "of range in all"),
    ("float and double matrix fields", dict(matrix=common_pb2.Matrix(rows=1, columns=5, values=[0.0] * 5,
                                                                     raw_double_values=b"\0" * 40)), INVALID,
     "matrix: set exactly one of values, raw_values, double_values or raw_double_values; got values and "
     "raw_double_values"),
    ("univariate detector on 5 columns", dict(algorithm="mad"), INVALID,
     "matrix: algorithm 'mad' trains on exactly 1 feature(s), got 5 columns"),
    ("feature name count", dict(feature_names=["a", "b"]), INVALID, "feature_names: 2 names for 5 columns"),
    ("duplicate feature names", dict(feature_names=list("aabcd")), INVALID, "names must be non-empty and unique"),
    ("data_uri missing file", dict(matrix=None, data_uri="nope.csv"), INVALID,
     "data_uri: 'nope.csv' does not exist or is not a file"),
    ("data_uri outside the data root", dict(matrix=None, data_uri="file:///etc/passwd"),
     grpc.StatusCode.PERMISSION_DENIED, "data_uri: 'file:///etc/passwd' is outside the server's data root"),
    ("data_uri other scheme", dict(matrix=None, data_uri="s3://bucket/x.csv"), INVALID,
     "data_uri: unsupported scheme"),
    ("data_uri unreadable file", dict(matrix=None, data_uri="broken.parquet"), INVALID,
     "data_uri: cannot read broken.parquet"),
]


@pytest.mark.parametrize("case, fields, code, message", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_create_training_job_rejects(server, case, fields, code, message):
    (server.data_root / "broken.parquet").write_bytes(b"this is not parquet")
    stub = train_pb2_grpc.TrainServiceStub(server.channel)
    base = dict(model_name="bad", algorithm="iforest", matrix=_m(GOOD))
    base.update(fields)
    request = train_pb2.CreateTrainingJobRequest(**{k: v for k, v in base.items() if v is not None})
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateTrainingJob(request, timeout=10)
    assert e.value.code() == code
    assert message in e.value.details()
    assert server.alive()
    assert not any(j.model_name == "bad" for j in stub.ListTrainingJobs(train_pb2.ListTrainingJobsRequest()).jobs)


def test_data_uri_inside_the_data_root_trains(client, server):
    import pandas as pd

    pd.DataFrame(GOOD, columns=list("vwxyz")).to_csv(server.data_root / "good.csv", index=False)
    stub = train_pb2_grpc.TrainServiceStub(server.channel)
    job = stub.CreateTrainingJob(train_pb2.CreateTrainingJobRequest(
        model_name="from-uri", algorithm="hbos", data_uri="file://good.csv")).job
    assert client.wait(job.id).model_version == 1
    assert list(client.get_model("from-uri").feature_names) == list("vwxyz")


def test_oversized_payload(server, trained):
    stub = detect_pb2_grpc.DetectServiceStub(server.channel)
    big = _m(np.zeros((450_000, 5)))  # 9 MB; the server's limit is 8 MiB
    with pytest.raises(grpc.RpcError) as e:
        stub.Detect(detect_pb2.DetectRequest(model=trained, rows=big), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in e.value.details()
    assert server.alive()


MODEL_CASES = [
    ("GetModelVersion", model_pb2.GetModelVersionRequest(model="ghost"), NOT_FOUND, "model 'ghost' not found"),
    ("DeleteModelVersion", model_pb2.DeleteModelVersionRequest(model="blobs"), INVALID,
     "name an explicit version to delete, e.g. 'blobs@1'"),
    ("DeleteModelVersion", model_pb2.DeleteModelVersionRequest(model="ghost@1"), NOT_FOUND, "model 'ghost' not found"),
    ("SetModelAlias", model_pb2.SetModelAliasRequest(name="blobs", alias="prod", version=42), NOT_FOUND,
     "model 'blobs' has no version 42"),
    ("SetModelAlias", model_pb2.SetModelAliasRequest(name="blobs", alias="7", version=1), INVALID, "all digits"),
    ("DeleteModelAlias", model_pb2.DeleteModelAliasRequest(name="blobs", alias="nope"), NOT_FOUND,
     "model 'blobs' has no alias 'nope'"),
    ("ListModelVersions", model_pb2.ListModelVersionsRequest(name="ghost"), NOT_FOUND, "model 'ghost' not found"),
    ("ImportModel", model_pb2.ImportModelRequest(name="x"), INVALID, "onnx_model is required"),
]


@pytest.mark.parametrize("method, request_, code, message", MODEL_CASES, ids=[f"{c[0]}-{c[3]}" for c in MODEL_CASES])
def test_model_service_rejects(server, trained, method, request_, code, message):
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub, method)(request_, timeout=10)
    assert e.value.code() == code
    assert message in e.value.details()
    assert server.alive()


@pytest.mark.parametrize("method", ["GetTrainingJob", "CancelTrainingJob"])
def test_unknown_job(server, method):
    stub = train_pb2_grpc.TrainServiceStub(server.channel)
    request = getattr(train_pb2, f"{method}Request")(id="job-0123456789abcdef")
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub, method)(request, timeout=10)
    assert e.value.code() == NOT_FOUND
    assert "training job 'job-0123456789abcdef' not found" in e.value.details()


def test_watch_unknown_job(server):
    stub = train_pb2_grpc.TrainServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as e:
        list(stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id="job-00000000deadbeef"), timeout=10))
    assert e.value.code() == NOT_FOUND
    assert "training job 'job-00000000deadbeef' not found" in e.value.details()


def test_a_server_fault_is_internal_with_an_error_id_and_no_traceback(server, client):
    """A version whose graph is unreadable (damaged on disk after it was written): the loader fails inside the
    server — on a Ray Scorer replica for the Ray engine — and the client sees INTERNAL with an id to find the log
    entry, never the exception text or a remote traceback."""
    card = client.train("damaged", GOOD, algorithm="hbos")
    (server.store / "models" / "damaged" / "versions" / str(card.version) / "model.onnx").write_bytes(b"garbage")
    stub = detect_pb2_grpc.DetectServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.Detect(detect_pb2.DetectRequest(model=f"damaged@{card.version}", rows=_m(GOOD[:1])), timeout=30)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    details = e.value.details()
    assert details.startswith("internal error (error id ") and details.endswith("; see the server log)")
    assert "Traceback" not in details and "onnx" not in details.lower()
    assert server.alive()
