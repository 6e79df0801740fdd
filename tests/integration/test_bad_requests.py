"""Requests that once got the wrong answer (issue 13: INTERNAL, UNKNOWN, accepted though invalid, misleading), one
table over every service: the exact status, a message naming the problem, the server still serving, the store
unchanged. Each request goes as bytes through a generic call, so undecodable bytes sit in the same table as
well-formed messages; test_errors.py keeps the per-RPC tables of the inputs that were always refused well."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from pynomaly.oip.v2 import grpc_service_pb2 as oip_pb2
from pynomaly.v1 import common_pb2, detect_pb2, explain_pb2, model_pb2, train_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT
TRAIN, MODEL, DETECT = "/pynomaly.v1.TrainService/", "/pynomaly.v1.ModelService/", "/pynomaly.v1.DetectService/"
EXPLAIN, OIP = "/pynomaly.v1.ExplainService/", "/inference.GRPCInferenceService/"
GOOD = np.random.default_rng(3).normal(size=(20, 5)).astype(np.float32)
ROWS = common_pb2.Matrix(rows=20, columns=5, raw_values=GOOD.tobytes())
LONG_ID = "job-" + "0" * 296  # 300 characters: once reached the file system as a file name
TRUNCATED = b"\x0a\x05ab"  # field 1, length 5, then 2 bytes: no message parses from it


def _train(**fields):
    return train_pb2.CreateTrainingJobRequest(**{"model_name": "bad", "algorithm": "iforest", "matrix": ROWS,
                                                 **fields})


def _num(v: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=v)


def _batch(**fields):
    return detect_pb2.CreateBatchDetectJobRequest(**{"model": "blobs", "input_uri": "rows.csv",
                                                     "output_uri": "out.csv", **fields})


# (case, method, how it is called, the request (a message, bytes, or a list of them for a stream), code, fragment)
CASES = [
    # INTERNAL once: the protobuf → dict conversion raised before validation
    ("hyperparameter NaN", TRAIN + "CreateTrainingJob", "unary", _train(params={"n_estimators": _num(np.nan)}),
     INVALID, "params.n_estimators: must be a finite number, got nan"),
    ("hyperparameter +inf", TRAIN + "CreateTrainingJob", "unary", _train(params={"max_samples": _num(np.inf)}),
     INVALID, "params.max_samples: must be a finite number, got inf"),
    ("hyperparameter -inf in a list", TRAIN + "CreateTrainingJob", "unary", _train(params={
        "max_features": struct_pb2.Value(list_value=struct_pb2.ListValue(values=[_num(1.0), _num(-np.inf)]))}),
     INVALID, "params.max_features[1]: must be a finite number, got -inf"),
    # INTERNAL once: the path reached the file system
    ("data_uri with NUL", TRAIN + "CreateTrainingJob", "unary", _train(matrix=None, data_uri="rows\0.csv"),
     INVALID, "data_uri: 'rows\\x00.csv' contains a NUL character"),
    ("data_uri 300-character name", TRAIN + "CreateTrainingJob", "unary",
     _train(matrix=None, data_uri="x" * 296 + ".csv"), INVALID, ".csv': File name too long"),
    ("batch input_uri with NUL", DETECT + "CreateBatchDetectJob", "unary", _batch(input_uri="rows\0.csv"),
     INVALID, "input_uri: 'rows\\x00.csv' contains a NUL character"),
    ("batch output_uri 300-character name", DETECT + "CreateBatchDetectJob", "unary",
     _batch(output_uri="y" * 296 + ".csv"), INVALID, ".csv': File name too long"),
    ("GetTrainingJob 300-character id", TRAIN + "GetTrainingJob", "unary", train_pb2.GetTrainingJobRequest(id=LONG_ID),
     INVALID, "… (300 characters) is not a training job id: expected 'job-' and 16 hexadecimal digits"),
    ("WatchTrainingJob 300-character id", TRAIN + "WatchTrainingJob", "unary_stream",
     train_pb2.WatchTrainingJobRequest(id=LONG_ID), INVALID, "is not a training job id"),
    ("CancelTrainingJob id that is a path", TRAIN + "CancelTrainingJob", "unary",
     train_pb2.CancelTrainingJobRequest(id="../models"), INVALID, "id '../models' is not a training job id"),
    ("GetBatchDetectJob 300-character id", DETECT + "GetBatchDetectJob", "unary",
     detect_pb2.GetBatchDetectJobRequest(id="batch-" + "0" * 294), INVALID,
     "is not a batch job id: expected 'batch-' and 16 hexadecimal digits"),
    ("WatchBatchDetectJob training job id", DETECT + "WatchBatchDetectJob", "unary_stream",
     detect_pb2.WatchBatchDetectJobRequest(id="job-0123456789abcdef"), INVALID,
     "id 'job-0123456789abcdef' is not a batch job id"),
    ("version ²", DETECT + "Detect", "unary", detect_pb2.DetectRequest(model="blobs@²", rows=ROWS), INVALID,
     "model 'blobs@²': the version after '@' must be a positive integer (ASCII digits, at most 18)"),
    ("version of 5000 digits", DETECT + "Detect", "unary", detect_pb2.DetectRequest(model="blobs@" + "1" * 5000,
                                                                                      rows=ROWS),
     INVALID, "the version after '@' must be a positive integer"),
    ("OIP model_version ²", OIP + "ModelInfer", "unary", oip_pb2.ModelInferRequest(model_name="blobs",
                                                                                   model_version="²"),
     INVALID, "model_version '²' is invalid"),
    ("undecodable DetectStream message", DETECT + "DetectStream", "stream_stream", [TRUNCATED], INVALID,
     "the request is not a valid pynomaly.v1.DetectStreamRequest message"),
    ("undecodable second DetectStream message", DETECT + "DetectStream", "stream_stream",
     [detect_pb2.DetectStreamRequest(request=detect_pb2.DetectRequest(model="blobs", rows=ROWS)), TRUNCATED],
     INVALID, "the request is not a valid pynomaly.v1.DetectStreamRequest message"),
    # accepted once though invalid: `re.match` with `$` before a trailing newline; non-ASCII digits
    ("model name ending in a newline", TRAIN + "CreateTrainingJob", "unary", _train(model_name="nl\n"), INVALID,
     "model_name 'nl\\n' is invalid"),
    ("alias ending in a newline", MODEL + "SetModelAlias", "unary",
     model_pb2.SetModelAliasRequest(name="blobs", alias="prod\n", version=1), INVALID, "alias 'prod\\n' is invalid"),
    ("alias name ending in a newline", MODEL + "SetModelAlias", "unary",
     model_pb2.SetModelAliasRequest(name="blobs\n", alias="prod", version=1), INVALID, "name 'blobs\\n' is invalid"),
    ("alias of non-ASCII digits", MODEL + "SetModelAlias", "unary",
     model_pb2.SetModelAliasRequest(name="blobs", alias="١٢", version=1), INVALID, "alias '١٢' is invalid"),
    ("reference alias ending in a newline", MODEL + "GetModelVersion", "unary",
     model_pb2.GetModelVersionRequest(model="blobs:prod\n"), INVALID, "model alias 'prod\\n' is invalid"),
    ("version ١ (Arabic-Indic one)", DETECT + "Detect", "unary", detect_pb2.DetectRequest(model="blobs@١", rows=ROWS),
     INVALID, "model 'blobs@١': the version after '@' must be a positive integer"),
    ("delete version ١", MODEL + "DeleteModelVersion", "unary", model_pb2.DeleteModelVersionRequest(model="blobs@١"),
     INVALID, "the version after '@' must be a positive integer"),
    # UNKNOWN "Unexpected <class 'DecodeError'>" once: undecodable bytes on unary RPCs, every service
    ("undecodable Detect", DETECT + "Detect", "unary", TRUNCATED, INVALID,
     "the request is not a valid pynomaly.v1.DetectRequest message"),
    ("undecodable CreateTrainingJob", TRAIN + "CreateTrainingJob", "unary", b"\xff", INVALID,
     "the request is not a valid pynomaly.v1.CreateTrainingJobRequest message"),
    ("undecodable SetModelAlias", MODEL + "SetModelAlias", "unary", TRUNCATED, INVALID,
     "the request is not a valid pynomaly.v1.SetModelAliasRequest message"),
    ("undecodable Explain", EXPLAIN + "Explain", "unary", TRUNCATED, INVALID,
     "the request is not a valid pynomaly.v1.ExplainRequest message"),
    ("undecodable WatchTrainingJob", TRAIN + "WatchTrainingJob", "unary_stream", TRUNCATED, INVALID,
     "the request is not a valid pynomaly.v1.WatchTrainingJobRequest message"),
    ("undecodable OIP ModelInfer", OIP + "ModelInfer", "unary", TRUNCATED, INVALID,
     "the request is not a valid inference.ModelInferRequest message"),
    ("undecodable health Check", "/grpc.health.v1.Health/Check", "unary", TRUNCATED, INVALID,
     "the request is not a valid grpc.health.v1.HealthCheckRequest message"),
    # a streaming servicer that writes through context.write (not an async generator)
    ("undecodable health Watch", "/grpc.health.v1.Health/Watch", "unary_stream", TRUNCATED, INVALID,
     "the request is not a valid grpc.health.v1.HealthCheckRequest message"),
    # misleading messages once
    ("header-only CSV", TRAIN + "CreateTrainingJob", "unary", _train(matrix=None, data_uri="header-only.csv"),
     INVALID, "data_uri: header-only.csv has no rows"),
    ("random-bytes .npz", TRAIN + "CreateTrainingJob", "unary", _train(matrix=None, data_uri="random.npz"), INVALID,
     "data_uri: random.npz is not a valid .npz file"),
    # an algorithm that learns from labels, trained without them
    ("devnet without labels", TRAIN + "CreateTrainingJob", "unary", _train(algorithm="devnet"), INVALID,
     "labels: algorithm 'devnet' learns from labels; send them in labels (rows sent inline)"),
]


def _bytes(request) -> bytes:
    return request if isinstance(request, bytes) else request.SerializeToString()


def _call(channel: grpc.Channel, method: str, kind: str, request) -> None:
    """Send `request` as bytes and consume the whole answer; raw bytes come back (no deserializer)."""
    if kind == "unary":
        channel.unary_unary(method)(_bytes(request), timeout=30)
    elif kind == "unary_stream":
        list(channel.unary_stream(method)(_bytes(request), timeout=30))
    else:
        list(channel.stream_stream(method)(iter([_bytes(r) for r in request]), timeout=30))


def _snapshot(server, channel: grpc.Channel) -> tuple:
    """What a refused request must not change: every path under the store, the models and the jobs."""
    paths = sorted(os.path.relpath(os.path.join(d, f), server.store) for d, _, fs in os.walk(server.store)
                   for f in fs)
    models = channel.unary_unary(MODEL + "ListModels")(model_pb2.ListModelsRequest().SerializeToString(), timeout=30)
    jobs = channel.unary_unary(TRAIN + "ListTrainingJobs")(b"", timeout=30)
    batches = channel.unary_unary(DETECT + "ListBatchDetectJobs")(b"", timeout=30)
    return paths, model_pb2.ListModelsResponse.FromString(models), jobs, batches


@pytest.mark.parametrize("case, method, kind, request_, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_request(server, trained, case, method, kind, request_, code, message):
    (server.data_root / "header-only.csv").write_text("a,b,c,d,e\n")
    (server.data_root / "random.npz").write_bytes(np.random.default_rng(0).bytes(256))
    (server.data_root / "rows.csv").write_text("a,b,c,d,e\n" + "0,0,0,0,0\n" * 3)
    before = _snapshot(server, server.channel)
    with pytest.raises(grpc.RpcError) as e:
        _call(server.channel, method, kind, request_)
    details = e.value.details()
    assert (e.value.code(), message in details) == (code, True), details
    for leak in ("Unexpected", "Traceback", "DecodeError", "pickle", "internal error"):
        assert leak not in details
    assert server.alive()
    assert _snapshot(server, server.channel) == before


def test_a_good_stream_message_is_answered_before_the_bad_one(server, trained):
    """The stream answers what it could decode, then the status for what it could not."""
    good = detect_pb2.DetectStreamRequest(request=detect_pb2.DetectRequest(model=trained, rows=ROWS))
    call = server.channel.stream_stream(DETECT + "DetectStream")(iter([good.SerializeToString(), TRUNCATED]),
                                                                   timeout=30)
    answers = []
    with pytest.raises(grpc.RpcError) as e:
        for raw in call:
            answers.append(detect_pb2.DetectStreamResponse.FromString(raw))
    assert len(answers) == 1 and len(answers[0].response.anomaly_scores) == 20
    assert e.value.code() == INVALID
    assert e.value.details() == "the request is not a valid pynomaly.v1.DetectStreamRequest message"


def test_explain_request_is_decoded_when_valid(server, trained):
    """The decoding guard passes valid bytes through untouched: the same call with a valid message answers."""
    raw = server.channel.unary_unary(EXPLAIN + "Explain")(
        explain_pb2.ExplainRequest(model=trained, rows=ROWS).SerializeToString(), timeout=60)
    assert len(explain_pb2.ExplainResponse.FromString(raw).rows) == 20
