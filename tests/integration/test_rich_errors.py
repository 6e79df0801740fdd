"""The gRPC rich error model against the real server, both engines: each refusal carries google.rpc.Status details
(ErrorInfo's stable reason, BadRequest's field, ResourceInfo's resource) that grpcio-status decodes, the message
unchanged; the SDK raises them as typed exceptions; hyperparameters come back in their declared types."""

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import pynomaly
from pynomaly.v1 import common_pb2, detect_pb2, detect_pb2_grpc, train_pb2, train_pb2_grpc

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
MODEL_VERSION = "pynomaly.v1.ModelVersion"


def _m(X):
    X = np.asarray(X, dtype=np.float32)
    return common_pb2.Matrix(rows=X.shape[0], columns=X.shape[1], raw_values=X.tobytes())


def _details(e: grpc.RpcError) -> dict:
    status = rpc_status.from_call(e)
    assert status is not None, "no grpc-status-details-bin trailer"
    assert (status.code, status.message) == (e.code().value[0], e.details())
    found = {}
    for any_ in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.ResourceInfo):
            if any_.Is(kind.DESCRIPTOR):
                found[kind.DESCRIPTOR.name] = msg = kind()
                any_.Unpack(msg)
    assert set(found) >= {"ErrorInfo"} and found["ErrorInfo"].domain == "pynomaly.io"
    return found


ZEROS = _m(np.zeros((1, 5)))

# (case, request fields, code, reason, field or None, resource (type, name) or None, message part)
DETECT = [
    ("wrong width", dict(rows=_m(np.zeros((2, 4)))), INVALID, "WRONG_WIDTH", "rows", None,
     "rows: expected 5 columns (the model's feature count), got 4"),
    ("NaN", dict(rows=_m([[0, 0, np.nan, 0, 0]])), INVALID, "NON_FINITE_VALUE", "rows", None,
     "rows: row 0 column 2 is nan"),
    ("raw length", dict(rows=common_pb2.Matrix(rows=1, columns=5, raw_values=b"\0" * 19)), INVALID,
     "MALFORMED_MATRIX", "rows.raw_values", None, "rows.raw_values: 19 bytes, expected rows × columns × 4 = 20"),
    ("empty", dict(rows=common_pb2.Matrix(rows=0, columns=5)), INVALID, "EMPTY_INPUT", "rows", None,
     "rows: the matrix is empty"),
    ("threshold", dict(rows=ZEROS, threshold=float("nan")), INVALID, "NON_FINITE_VALUE", "threshold", None,
     "threshold must be finite"),
    ("malformed reference", dict(model="blobs@x", rows=ZEROS), INVALID, "INVALID_REFERENCE", "model", None,
     "the version after '@' must be a positive integer"),
    ("unknown model", dict(model="nosuchmodel", rows=ZEROS), NOT_FOUND, "UNKNOWN_MODEL", None,
     (MODEL_VERSION, "nosuchmodel"), "model 'nosuchmodel' not found"),
    ("unknown version", dict(model="blobs@99", rows=ZEROS), NOT_FOUND, "UNKNOWN_VERSION", None,
     (MODEL_VERSION, "blobs@99"), "model 'blobs' has no version 99"),
    ("unknown alias", dict(model="blobs:canary", rows=ZEROS), NOT_FOUND, "UNKNOWN_ALIAS", None,
     (MODEL_VERSION, "blobs:canary"), "model 'blobs' has no alias 'canary'"),
]

GOOD = _m(np.random.default_rng(0).normal(size=(50, 5)))
TRAIN = [
    ("unknown algorithm", dict(algorithm="forest"), "UNKNOWN_ALGORITHM", "algorithm",
     "algorithm: unknown algorithm 'forest'"),
    ("unknown hyperparameter", dict(params={"n_trees": struct_pb2.Value(number_value=5)}), "UNKNOWN_PARAMETER",
     "params.n_trees", "params: unknown hyperparameter 'n_trees' for algorithm 'iforest'"),
    ("out of range", dict(params={"n_estimators": struct_pb2.Value(number_value=0)}), "INVALID_PARAMETER",
     "params.n_estimators", "params.n_estimators: must be an integer in [1, 10000], got number 0"),
    ("null", dict(params={"n_estimators": struct_pb2.Value(null_value=0)}), "INVALID_PARAMETER",
     "params.n_estimators", "params.n_estimators: must be an integer, got null"),
    ("string", dict(params={"n_estimators": struct_pb2.Value(string_value="many")}), "INVALID_PARAMETER",
     "params.n_estimators", 'params.n_estimators: must be an integer, got string "many"'),
    # What a JavaScript client that spelt `number_value` sends: a Value with no kind set.
    ("no kind", dict(params={"n_estimators": struct_pb2.Value()}), "INVALID_PARAMETER", "params.n_estimators",
     "params.n_estimators: the google.protobuf.Value sets no kind; set one of null_value, number_value"),
    ("contamination", dict(contamination=0.7), "INVALID_CONTAMINATION", "contamination",
     "contamination must be in (0, 0.5], got 0.7"),
    ("model name", dict(model_name="no/slashes"), "INVALID_REFERENCE", "model_name",
     "model_name 'no/slashes' is invalid"),
]


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def _check(e, code, reason, field, resource, message):
    assert e.code() == code and message in e.details(), e.details()
    found = _details(e)
    assert found["ErrorInfo"].reason == reason
    if field is None:
        assert "BadRequest" not in found
    else:
        (violation,) = found["BadRequest"].field_violations
        assert (violation.field, violation.reason, violation.description) == (field, reason, e.details())
    if resource is None:
        assert "ResourceInfo" not in found
    else:
        info = found["ResourceInfo"]
        assert (info.resource_type, info.resource_name) == resource


@pytest.mark.parametrize("case, fields, code, reason, field, resource, message", DETECT, ids=[c[0] for c in DETECT])
def test_detect_details(server, channel, trained, case, fields, code, reason, field, resource, message):
    request = detect_pb2.DetectRequest(**{"model": trained, **fields})
    with pytest.raises(grpc.RpcError) as e:
        detect_pb2_grpc.DetectServiceStub(channel).Detect(request, timeout=30)
    _check(e.value, code, reason, field, resource, message)
    assert server.alive()


@pytest.mark.parametrize("case, fields, reason, field, message", TRAIN, ids=[c[0] for c in TRAIN])
def test_train_details(server, channel, case, fields, reason, field, message):
    request = train_pb2.CreateTrainingJobRequest(**{"model_name": "rich", "algorithm": "iforest", "matrix": GOOD,
                                                     **fields})
    with pytest.raises(grpc.RpcError) as e:
        train_pb2_grpc.TrainServiceStub(channel).CreateTrainingJob(request, timeout=30)
    _check(e.value, INVALID, reason, field, None, message)


@pytest.mark.parametrize("stub, rpc, request_type, resource_type, job_id", [
    (train_pb2_grpc.TrainServiceStub, "GetTrainingJob", train_pb2.GetTrainingJobRequest, "pynomaly.v1.TrainingJob",
     "job-0123456789abcdef"),
    (detect_pb2_grpc.DetectServiceStub, "GetBatchDetectJob", detect_pb2.GetBatchDetectJobRequest,
     "pynomaly.v1.BatchDetectJob", "batch-0123456789abcdef"),
])
def test_unknown_jobs(channel, stub, rpc, request_type, resource_type, job_id):
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub(channel), rpc)(request_type(id=job_id), timeout=30)
    kind = "training job" if resource_type.endswith("TrainingJob") else "batch job"
    _check(e.value, NOT_FOUND, "UNKNOWN_JOB", None, (resource_type, job_id), f"{kind} {job_id!r} not found")
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub(channel), rpc)(request_type(id="../etc"), timeout=30)
    _check(e.value, INVALID, "INVALID_REFERENCE", "id", None, "id '../etc' is not a")


def test_sdk_raises_typed_exceptions(client, trained):
    with pytest.raises(pynomaly.InvalidArgumentError) as e:
        client.detect(trained, np.zeros((2, 4)))
    error = e.value
    assert isinstance(error, pynomaly.ApiError) and isinstance(error, grpc.RpcError)
    assert error.code() == INVALID and error.reason == "WRONG_WIDTH" and error.domain == "pynomaly.io"
    assert error.details() == "rows: expected 5 columns (the model's feature count), got 4"
    assert str(error) == f"INVALID_ARGUMENT: {error.details()}"
    assert error.field_violations == [pynomaly.FieldViolation("rows", error.details(), "WRONG_WIDTH")]
    assert error.resource is None
    with pytest.raises(pynomaly.NotFoundError) as e:
        client.get_model("blobs:canary")
    assert (e.value.reason, e.value.resource) == ("UNKNOWN_ALIAS", (MODEL_VERSION, "blobs:canary"))
    with pytest.raises(pynomaly.NotFoundError) as e:  # a response stream fails typed as well
        client.wait("job-0123456789abcdef")
    assert (e.value.reason, e.value.resource) == ("UNKNOWN_JOB", ("pynomaly.v1.TrainingJob", "job-0123456789abcdef"))
    with pytest.raises(grpc.RpcError) as e:  # code written for bare grpc errors keeps working
        client.start_training("rich", np.zeros((10, 3)), params={"n_estimators": None})
    assert e.value.code() == INVALID
    assert e.value.details() == "params.n_estimators: must be an integer, got null"


def test_params_come_back_in_their_declared_types(client, trained):
    card = client.get_model(trained)
    params = client.params(card)
    assert params["n_estimators"] == 50 and type(params["n_estimators"]) is int
    assert type(params["random_state"]) is int and type(params["max_samples"]) is str  # "auto"
    assert card.params["n_estimators"].number_value == 50.0  # the wire still carries a double
    (iforest,) = [a for a in client.list_algorithms() if a.name == "iforest"]
    defaults = client.params(iforest)
    assert defaults["n_estimators"] == 100 and type(defaults["n_estimators"]) is int
    assert type(defaults["bootstrap"]) is bool
    job = client.start_training("typed", np.random.default_rng(1).normal(size=(40, 3)),
                                params={"n_estimators": 10.0, "random_state": 0})
    assert client.params(job) == {"n_estimators": 10, "random_state": 0}
    assert type(client.params(job)["n_estimators"]) is int
    client.wait(job.id)
