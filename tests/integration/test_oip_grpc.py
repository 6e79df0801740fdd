"""The Open Inference Protocol's gRPC binding (`inference.GRPCInferenceService`) on the real server, both engines:
every RPC, FP32/FP64 as typed and raw contents, versions and aliases, requested outputs, the threshold parameter,
scores equal to Detect's, and every bad input with its exact status and message."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

import pynomaly
from pynomaly.oip.v2 import grpc_service_pb2 as pb
from pynomaly.oip.v2 import grpc_service_pb2_grpc

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DTYPES = {"FP32": np.float32, "FP64": np.float64, "BOOL": np.bool_}
FIELDS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "BOOL": "bool_contents"}


@pytest.fixture(scope="module")
def stub(server):
    return grpc_service_pb2_grpc.GRPCInferenceServiceStub(server.channel)


def infer_request(X, datatype="FP32", raw=False, version="", outputs=(), threshold=None, request_id=""):
    X = np.asarray(X, dtype=DTYPES[datatype])
    request = pb.ModelInferRequest(model_name="oip", model_version=version, id=request_id,
                                   outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=o) for o in outputs])
    request.inputs.add(name="rows", datatype=datatype, shape=X.shape)
    if raw:
        request.raw_input_contents.append(X.tobytes())
    else:
        getattr(request.inputs[0].contents, FIELDS[datatype]).extend(X.ravel().tolist())
    if threshold is not None:
        request.parameters["threshold"].double_param = threshold
    return request


def outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output's values as an array of its datatype, from raw_output_contents or the typed contents."""
    if response.raw_output_contents:
        assert not any(o.HasField("contents") for o in response.outputs), "raw and typed contents both set"
        return {o.name: np.frombuffer(raw, DTYPES[o.datatype])
                for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)}
    return {o.name: np.array(getattr(o.contents, FIELDS[o.datatype]), DTYPES[o.datatype]) for o in response.outputs}


def test_server_live_ready_and_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (meta.name, meta.version, list(meta.extensions)) == ("pynomaly", pynomaly.__version__, ["parameters"])


@pytest.mark.parametrize("version", ["", "1", "2", "production", "latest"])
def test_model_ready(stub, oip_model, version):
    assert stub.ModelReady(pb.ModelReadyRequest(name=oip_model, version=version)).ready


@pytest.mark.parametrize("version, resolved", [("", 2), ("2", 2), ("1", 1), ("production", 1)])
def test_model_metadata_comes_from_the_model_card(stub, client, oip_model, version, resolved):
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=oip_model, version=version))
    card = client.get_model(f"oip@{resolved}")
    assert (meta.name, list(meta.versions), meta.platform) == ("oip", ["1", "2"], "onnx_onnxv1")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("rows", "FP32", [-1, 5])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("anomaly_score", "FP32", [-1]), ("is_anomaly", "BOOL", [-1])]
    assert dict(meta.properties) == {
        "version": str(resolved), "algorithm": "iforest", "threshold": repr(card.threshold),
        "feature_names": json.dumps(list(card.feature_names)), "aliases": json.dumps(list(card.aliases)),
        "input_datatypes": "FP32,FP64",
    }


@pytest.mark.parametrize("version, resolved", [("", 2), ("1", 1), ("production", 1)])
@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_scores_equal_detect(stub, client, oip_model, blobs, datatype, raw, version, resolved):
    X = blobs[1]
    response = stub.ModelInfer(infer_request(X, datatype, raw, version=version, request_id="req-7"))
    detect = client.detect(f"oip@{resolved}", X.astype(DTYPES[datatype]))  # Detect in the same precision
    assert (response.model_name, response.model_version, response.id) == ("oip", str(resolved), "req-7")
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("anomaly_score", datatype, [len(X)]), ("is_anomaly", "BOOL", [len(X)])]
    assert bool(response.raw_output_contents) == raw, "raw outputs exactly when the inputs were raw"
    got = outputs(response)
    assert got["anomaly_score"].dtype == DTYPES[datatype]
    np.testing.assert_array_equal(got["anomaly_score"], detect.anomaly_scores.astype(DTYPES[datatype]))
    np.testing.assert_array_equal(got["is_anomaly"], detect.is_anomaly)
    assert detect.is_anomaly[-10:].all()
    assert response.parameters["threshold"].double_param == detect.threshold


@pytest.mark.parametrize("wanted", [["is_anomaly"], ["anomaly_score"], ["is_anomaly", "anomaly_score"]])
@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
def test_requested_outputs_only_and_in_that_order(stub, client, oip_model, blobs, wanted, raw):
    response = stub.ModelInfer(infer_request(blobs[1][:7], raw=raw, outputs=wanted))
    assert [o.name for o in response.outputs] == wanted
    assert len(response.raw_output_contents) == (len(wanted) if raw else 0)
    detect = client.detect("oip", blobs[1][:7].astype(np.float32))
    got = outputs(response)
    for name, expected in (("anomaly_score", detect.anomaly_scores), ("is_anomaly", detect.is_anomaly)):
        if name in wanted:
            np.testing.assert_array_equal(got[name], expected)


@pytest.mark.parametrize("parameter", [pb.InferParameter(double_param=0.02), pb.InferParameter(int64_param=0),
                                       pb.InferParameter(uint64_param=1)], ids=["double", "int64", "uint64"])
def test_threshold_parameter_overrides_the_models(stub, client, oip_model, blobs, parameter):
    threshold = float(getattr(parameter, parameter.WhichOneof("parameter_choice")))
    request = infer_request(blobs[1])
    request.parameters["threshold"].CopyFrom(parameter)
    response = stub.ModelInfer(request)
    got = outputs(response)
    detect = client.detect("oip", blobs[1].astype(np.float32), threshold=threshold)
    np.testing.assert_array_equal(got["is_anomaly"], got["anomaly_score"] > threshold)
    np.testing.assert_array_equal(got["is_anomaly"], detect.is_anomaly)
    assert response.parameters["threshold"].double_param == threshold


def test_unknown_parameters_are_ignored(stub, oip_model, blobs):
    request = infer_request(blobs[1][:3])
    request.parameters["priority"].int64_param = 1
    request.inputs[0].parameters["anything"].string_param = "x"
    assert [o.name for o in stub.ModelInfer(request).outputs] == ["anomaly_score", "is_anomaly"]


GOOD = np.random.default_rng(1).normal(size=(2, 5))


def _set(**fields):
    def change(r):
        for k, v in fields.items():
            setattr(r, k, v)
    return change


def _input(**fields):
    def change(r):
        t = r.inputs[0]
        for k, v in fields.items():
            if k == "shape":
                del t.shape[:]
                t.shape.extend(v)
            elif k == "contents":
                t.ClearField("contents")
                t.contents.CopyFrom(v)
            else:
                setattr(t, k, v)
    return change


def _typed(values, datatype="FP32"):
    return _input(datatype=datatype, contents=pb.InferTensorContents(**{FIELDS.get(datatype, "int_contents"): values}))


def _raw(*blobs):
    def change(r):
        r.inputs[0].ClearField("contents")
        r.raw_input_contents.extend(blobs)
    return change


def _rows(X, datatype="FP32"):
    X = np.asarray(X, dtype=DTYPES[datatype])
    return lambda r: (_input(shape=X.shape)(r), _typed(X.ravel().tolist(), datatype)(r))


BAD_INFER = [
    ("unknown model", _set(model_name="nosuch"), NOT_FOUND, "model 'nosuch' not found"),
    ("unknown version", _set(model_version="9"), NOT_FOUND, "model 'oip' has no version 9"),
    ("unknown alias", _set(model_version="canary"), NOT_FOUND, "model 'oip' has no alias 'canary'"),
    ("version zero", _set(model_version="0"), INVALID, "model_version: version numbers start at 1, got '0'"),
    ("malformed alias", _set(model_version="no/such"), INVALID, "model_version 'no/such' is invalid"),
    ("no model name", _set(model_name=""), INVALID, "model_name is required"),
    ("malformed model name", _set(model_name="oip@1"), INVALID, "model_name 'oip@1' is invalid"),
    ("no input", lambda r: r.ClearField("inputs"), INVALID,
     "inputs: the model takes one input tensor, 'rows'; got 0"),
    ("two inputs", lambda r: r.inputs.add().CopyFrom(r.inputs[0]), INVALID,
     "inputs: the model takes one input tensor, 'rows'; got 2"),
    ("input name", _input(name="X"), INVALID, "inputs[0].name: unknown input 'X'; the model's input is 'rows'"),
    ("INT32", _typed([1] * 10, "INT32"), INVALID, "rows: datatype 'INT32' is not supported; send FP32 or FP64"),
    ("BYTES", _input(datatype="BYTES", contents=pb.InferTensorContents(bytes_contents=[b"1"] * 10)), INVALID,
     "rows: datatype 'BYTES' is not supported; send FP32 or FP64"),
    ("unknown datatype", _input(datatype="FLOAT"), INVALID,
     "rows: datatype 'FLOAT' is not a datatype of the protocol; send FP32 or FP64"),
    ("rank 1", _input(shape=[10]), INVALID, "rows: shape [10] has 1 dimension(s); expected 2, [rows, features]"),
    ("rank 3", _input(shape=[1, 2, 5]), INVALID, "rows: shape [1, 2, 5] has 3 dimension(s); expected 2"),
    ("negative dimension", _input(shape=[-1, 5]), INVALID, "rows: shape [-1, 5] has a negative dimension"),
    ("width", _rows(np.zeros((2, 4))), INVALID, "rows: expected 5 columns (the model's feature count), got 4"),
    ("value count", _input(shape=[3, 5]), INVALID,
     "rows: inputs[0].contents.fp32_contents holds 10 values; shape [3, 5] takes 15"),
    ("contents field", _input(contents=pb.InferTensorContents(fp64_contents=[0.0] * 10)), INVALID,
     "inputs[0].contents.fp64_contents: a FP32 tensor's values go in contents.fp32_contents"),
    ("raw size", _raw(b"\0" * 39), INVALID,
     "rows: raw_input_contents[0] holds 39 bytes; shape [2, 5] of FP32 takes 40"),
    ("raw count", _raw(b"\0" * 40, b"\0" * 40), INVALID,
     "raw_input_contents: 2 entries for 1 input(s); give one per input, in the order of inputs"),
    ("raw and contents", lambda r: r.raw_input_contents.append(b"\0" * 40), INVALID,
     "inputs[0].contents: the request has raw_input_contents, so no input may set contents (set: fp32_contents)"),
    ("NaN", _rows([[0, 0, 0, 0, 0], [0, 0, np.nan, 0, 0]]), INVALID,
     "rows: row 1 column 2 is nan; values must be finite (no NaN or inf)"),
    ("inf FP64", _rows([[np.inf, 0, 0, 0, 0]], "FP64"), INVALID, "rows: row 0 column 0 is inf; values must be finite"),
    ("FP64 beyond float32", _rows([[0, 0, 0, 1e39, 0]], "FP64"), INVALID,
     "rows: row 0 column 3 is 1e+39; values must be within float32's range (|x| ≤ 3.40282e+38)"),
    ("empty", _rows(np.zeros((0, 5))), INVALID, "rows: the matrix is empty (0 rows × 5 columns)"),
    ("unknown output", lambda r: r.outputs.add(name="score"), INVALID,
     "outputs[0].name: unknown output 'score'; the model's outputs are 'anomaly_score' and 'is_anomaly'"),
    ("output twice", lambda r: (r.outputs.add(name="is_anomaly"), r.outputs.add(name="is_anomaly")), INVALID,
     "outputs[1].name: output 'is_anomaly' is requested twice"),
    ("threshold string", lambda r: setattr(r.parameters["threshold"], "string_param", "high"), INVALID,
     "parameters.threshold: must be a number, got string \"high\""),
    ("threshold bool", lambda r: setattr(r.parameters["threshold"], "bool_param", True), INVALID,
     "parameters.threshold: must be a number, got bool true"),
    ("threshold NaN", lambda r: setattr(r.parameters["threshold"], "double_param", float("nan")), INVALID,
     "threshold must be finite, got nan"),
    ("over the size limit", _raw(b"\0" * (9 << 20)), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "Received message larger than max"),
]


@pytest.mark.parametrize("case, change, code, message", BAD_INFER, ids=[c[0] for c in BAD_INFER])
def test_model_infer_rejects(server, stub, oip_model, case, change, code, message):
    request = infer_request(GOOD)
    change(request)
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request, timeout=30)
    assert e.value.code() == code
    assert message in e.value.details()
    assert server.alive() and stub.ServerLive(pb.ServerLiveRequest()).live
    assert len(stub.ModelInfer(infer_request(GOOD)).outputs) == 2


BAD_MODEL = [
    ("unknown model", "nosuch", "", NOT_FOUND, "model 'nosuch' not found"),
    ("unknown version", "oip", "7", NOT_FOUND, "model 'oip' has no version 7"),
    ("unknown alias", "oip", "canary", NOT_FOUND, "model 'oip' has no alias 'canary'"),
    ("no name", "", "", INVALID, "name is required"),
    ("malformed version", "oip", "-1", INVALID, "version '-1' is invalid"),
]


@pytest.mark.parametrize("rpc", ["ModelReady", "ModelMetadata"])
@pytest.mark.parametrize("case, name, version, code, message", BAD_MODEL, ids=[c[0] for c in BAD_MODEL])
def test_model_rpcs_reject(server, stub, oip_model, rpc, case, name, version, code, message):
    request = getattr(pb, f"{rpc}Request")(name=name, version=version)
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub, rpc)(request, timeout=10)
    assert e.value.code() == code
    assert message in e.value.details()
    assert server.alive()
