"""The Open Inference Protocol's REST binding on `--http-listen` of the real server, both engines: every route,
JSON tensors flat and nested, the binary tensor data extension both ways, versions and aliases, requested outputs,
the threshold parameter, scores equal to Detect's, and every bad input with its exact status and error body."""

from __future__ import annotations

import http.client
import json
import struct

import numpy as np
import pytest

import pynomaly

JSON = {"Content-Type": "application/json"}


def call(server, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, lower-cased headers, body) of one request on a fresh connection."""
    host, port = server.http_address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def get(server, path: str):
    status, headers, body = call(server, "GET", path)
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def infer(server, document, path="/v2/models/oip/infer"):
    status, headers, body = call(server, "POST", path, json.dumps(document).encode(), JSON)
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def rows_input(X, datatype="FP32", nested=False):
    X = np.asarray(X, dtype=np.float32 if datatype == "FP32" else np.float64)
    return {"name": "rows", "datatype": datatype, "shape": list(X.shape),
            "data": X.tolist() if nested else X.ravel().tolist()}


def test_server_routes(server):
    assert get(server, "/v2") == (200, {"name": "pynomaly", "version": pynomaly.__version__,
                                        "extensions": ["binary_tensor_data", "parameters"]})
    assert get(server, "/v2/health/live") == (200, {"live": True})
    assert get(server, "/v2/health/ready") == (200, {"ready": True})


@pytest.mark.parametrize("path", ["/v2/models/oip", "/v2/models/oip/versions/2", "/v2/models/oip/versions/1",
                                  "/v2/models/oip/versions/production", "/v2/models/oip/versions/latest"])
def test_model_ready_and_metadata(server, client, oip_model, path):
    assert get(server, f"{path}/ready") == (200, {"name": "oip", "ready": True})
    status, meta = get(server, path)
    resolved = 1 if path.endswith(("/1", "/production")) else 2
    card = client.get_model(f"oip@{resolved}")
    assert status == 200
    assert meta == {
        "name": "oip", "versions": ["1", "2"], "platform": "onnx_onnxv1",
        "inputs": [{"name": "rows", "datatype": "FP32", "shape": [-1, 5]}],
        "outputs": [{"name": "anomaly_score", "datatype": "FP32", "shape": [-1]},
                    {"name": "is_anomaly", "datatype": "BOOL", "shape": [-1]}],
        "properties": {"version": str(resolved), "algorithm": "iforest", "threshold": repr(card.threshold),
                       "feature_names": json.dumps(list(card.feature_names)),
                       "aliases": json.dumps(list(card.aliases)), "input_datatypes": "FP32,FP64"},
    }


@pytest.mark.parametrize("version, resolved", [("", 2), ("1", 1), ("production", 1)])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_json_scores_equal_detect(server, client, oip_model, blobs, datatype, nested, version, resolved):
    X = blobs[1]
    path = f"/v2/models/oip/versions/{version}/infer" if version else "/v2/models/oip/infer"
    status, response = infer(server, {"id": "r1", "inputs": [rows_input(X, datatype, nested)]}, path)
    assert status == 200
    dtype = np.float32 if datatype == "FP32" else np.float64
    detect = client.detect(f"oip@{resolved}", X.astype(dtype))  # Detect in the same precision
    assert {k: response[k] for k in ("model_name", "model_version", "id", "parameters")} == {
        "model_name": "oip", "model_version": str(resolved), "id": "r1", "parameters": {"threshold": detect.threshold}}
    score, flag = response["outputs"]
    assert (score["name"], score["datatype"], score["shape"]) == ("anomaly_score", datatype, [len(X)])
    assert (flag["name"], flag["datatype"], flag["shape"]) == ("is_anomaly", "BOOL", [len(X)])
    np.testing.assert_array_equal(np.array(score["data"], dtype), detect.anomaly_scores)
    assert flag["data"] == detect.is_anomaly.tolist()


def _binary_request(X, datatype="FP32", outputs=None, parameters=None):
    X = np.asarray(X, dtype=np.float32 if datatype == "FP32" else np.float64)
    raw = X.tobytes()
    document = {"inputs": [{"name": "rows", "datatype": datatype, "shape": list(X.shape),
                            "parameters": {"binary_data_size": len(raw)}}]}
    if outputs is not None:
        document["outputs"] = outputs
    if parameters is not None:
        document["parameters"] = parameters
    header = json.dumps(document).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def _split(headers, body):
    n = int(headers["inference-header-content-length"])
    return json.loads(body[:n]), body[n:]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_binary_extension_in_and_out(server, client, oip_model, blobs, datatype):
    X = blobs[1]
    body, headers = _binary_request(X, datatype, parameters={"binary_data_output": True})
    status, response_headers, response_body = call(server, "POST", "/v2/models/oip/infer", body, headers)
    assert status == 200 and response_headers["content-type"] == "application/octet-stream"
    document, blobs_out = _split(response_headers, response_body)
    dtype = np.float32 if datatype == "FP32" else np.float64
    sizes = [o["parameters"]["binary_data_size"] for o in document["outputs"]]
    assert sizes == [len(X) * np.dtype(dtype).itemsize, len(X)] and len(blobs_out) == sum(sizes)
    assert not any("data" in o for o in document["outputs"])
    scores = np.frombuffer(blobs_out[: sizes[0]], dtype)
    flags = np.frombuffer(blobs_out[sizes[0] :], np.bool_)
    detect = client.detect("oip", X.astype(dtype))
    np.testing.assert_array_equal(scores, detect.anomaly_scores.astype(dtype))
    np.testing.assert_array_equal(flags, detect.is_anomaly)


def test_binary_input_json_output_and_per_output_choice(server, client, oip_model, blobs):
    X = blobs[1][:6]
    detect = client.detect("oip", X.astype(np.float32))
    body, headers = _binary_request(X)  # no binary_data_output: JSON outputs
    status, response_headers, response_body = call(server, "POST", "/v2/models/oip/infer", body, headers)
    assert status == 200 and "inference-header-content-length" not in response_headers
    assert json.loads(response_body)["outputs"][1]["data"] == detect.is_anomaly.tolist()
    outputs = [{"name": "is_anomaly", "parameters": {"binary_data": True}}, {"name": "anomaly_score"}]
    body, headers = _binary_request(X, outputs=outputs)
    status, response_headers, response_body = call(server, "POST", "/v2/models/oip/infer", body, headers)
    document, blob = _split(response_headers, response_body)
    assert [o["name"] for o in document["outputs"]] == ["is_anomaly", "anomaly_score"]
    assert np.frombuffer(blob, np.bool_).tolist() == detect.is_anomaly.tolist()
    np.testing.assert_array_equal(np.array(document["outputs"][1]["data"], np.float32), detect.anomaly_scores)


@pytest.mark.parametrize("wanted", [["is_anomaly"], ["anomaly_score"], ["is_anomaly", "anomaly_score"]])
def test_requested_outputs_only_and_in_that_order(server, oip_model, blobs, wanted):
    status, response = infer(server, {"inputs": [rows_input(blobs[1][:4])], "outputs": [{"name": n} for n in wanted]})
    assert status == 200 and [o["name"] for o in response["outputs"]] == wanted


@pytest.mark.parametrize("threshold", [0.02, 0, -1])
def test_threshold_parameter_overrides_the_models(server, client, oip_model, blobs, threshold):
    document = {"inputs": [rows_input(blobs[1])], "parameters": {"threshold": threshold, "priority": 3}}
    status, response = infer(server, document)
    assert status == 200 and response["parameters"] == {"threshold": threshold}
    scores, flags = (np.array(o["data"]) for o in response["outputs"])
    np.testing.assert_array_equal(flags, scores > threshold)
    assert flags.tolist() == client.detect("oip", blobs[1].astype(np.float32), threshold=threshold).is_anomaly.tolist()


def _doc(**changes):
    document = {"inputs": [rows_input(np.zeros((2, 5)))]}
    document.update(changes)
    return json.dumps(document).encode()


def _input(**changes):
    return _doc(inputs=[{**rows_input(np.zeros((2, 5))), **changes}])


def _binary(declared: int, sent: int):
    header = json.dumps({"inputs": [{"name": "rows", "datatype": "FP32", "shape": [2, 5],
                                     "parameters": {"binary_data_size": declared}}]}).encode()
    return header + b"\0" * sent, {**JSON, "Inference-Header-Content-Length": str(len(header))}


INFER = "/v2/models/oip/infer"
BAD = [
    ("unknown model", "POST", "/v2/models/nosuch/infer", _doc(), JSON, 404, "model 'nosuch' not found"),
    ("unknown version", "POST", "/v2/models/oip/versions/9/infer", _doc(), JSON, 404, "model 'oip' has no version 9"),
    ("unknown alias", "POST", "/v2/models/oip/versions/canary/infer", _doc(), JSON, 404,
     "model 'oip' has no alias 'canary'"),
    ("version zero", "POST", "/v2/models/oip/versions/0/infer", _doc(), JSON, 400,
     "model_version: version numbers start at 1, got '0'"),
    ("malformed model name", "POST", "/v2/models/oip!/infer", _doc(), JSON, 400, "model_name 'oip!' is invalid"),
    ("metadata of an unknown model", "GET", "/v2/models/nosuch", None, {}, 404, "model 'nosuch' not found"),
    ("ready of an unknown version", "GET", "/v2/models/oip/versions/9/ready", None, {}, 404,
     "model 'oip' has no version 9"),
    ("ready of an unknown alias", "GET", "/v2/models/oip/versions/canary/ready", None, {}, 404,
     "model 'oip' has no alias 'canary'"),
    ("malformed JSON", "POST", INFER, b'{"inputs": [', JSON, 400, "request body: not valid JSON (Expecting value"),
    ("not an object", "POST", INFER, b"[]", JSON, 400, "request body: must be a JSON object"),
    ("no inputs", "POST", INFER, b"{}", JSON, 400, "inputs: required, a list of input tensors"),
    ("input not an object", "POST", INFER, _doc(inputs=[3]), JSON, 400, "inputs[0]: must be a JSON object"),
    ("input without a name", "POST", INFER, _input(name=None), JSON, 400, "inputs[0].name: required, a string"),
    ("shape not integers", "POST", INFER, _input(shape=["2", 5]), JSON, 400,
     "inputs[0].shape: required, a list of integers"),
    ("no data", "POST", INFER, _doc(inputs=[{"name": "rows", "datatype": "FP32", "shape": [1, 5]}]), JSON, 400,
     "inputs[0].data: required"),
    ("input name", "POST", INFER, _input(name="input-0"), JSON, 400,
     "inputs[0].name: unknown input 'input-0'; the model's input is 'rows'"),
    ("INT32", "POST", INFER, _input(datatype="INT32"), JSON, 400,
     "rows: datatype 'INT32' is not supported; send FP32 or FP64"),
    ("BYTES", "POST", INFER, _input(datatype="BYTES", data=["a"] * 10), JSON, 400,
     "rows: datatype 'BYTES' is not supported; send FP32 or FP64"),
    ("rank 1", "POST", INFER, _input(shape=[10]), JSON, 400, "rows: shape [10] has 1 dimension(s); expected 2"),
    ("width", "POST", INFER, _input(shape=[2, 4], data=[0] * 8), JSON, 400,
     "rows: expected 5 columns (the model's feature count), got 4"),
    ("value count", "POST", INFER, _input(data=[0] * 9), JSON, 400,
     "rows: inputs[0].data holds 9 values; shape [2, 5] takes 10"),
    ("nested unlike the shape", "POST", INFER, _input(shape=[5, 2], data=[[0] * 5] * 2), JSON, 400,
     "rows: inputs[0].data is nested as [2, 5], but the shape is [5, 2]"),
    ("nested unevenly", "POST", INFER, _input(data=[[0] * 5, [0] * 4]), JSON, 400,
     "rows: inputs[0].data is nested unevenly"),
    ("strings", "POST", INFER, _input(data=["0"] * 10), JSON, 400, "rows: inputs[0].data must hold numbers only"),
    ("NaN", "POST", INFER, b'{"inputs":[{"name":"rows","datatype":"FP32","shape":[1,5],"data":[0,NaN,0,0,0]}]}',
     JSON, 400, "rows: row 0 column 1 is nan; values must be finite"),
    ("data and binary", "POST", INFER, _input(parameters={"binary_data_size": 40}), JSON, 400,
     "inputs[0]: has both data and parameters.binary_data_size; send one"),
    ("binary short", "POST", INFER, *_binary(40, 39), 400,
     "inputs[0].parameters.binary_data_size: 40 is not a size within the 39 bytes of binary data left"),
    ("binary left over", "POST", INFER, *_binary(36, 40), 400,
     "binary data: 40 bytes follow the JSON, but the inputs' binary_data_size add up to 36"),
    ("binary size of the wrong shape", "POST", INFER, *_binary(36, 36), 400,
     "rows: the binary data of inputs[0] holds 36 bytes; shape [2, 5] of FP32 takes 40"),
    ("header length", "POST", INFER, _doc(), {**JSON, "Inference-Header-Content-Length": "x"}, 400,
     "Inference-Header-Content-Length: 'x' is not a length within the body's"),
    ("unknown output", "POST", INFER, _doc(outputs=[{"name": "score"}]), JSON, 400,
     "outputs[0].name: unknown output 'score'; the model's outputs are 'anomaly_score' and 'is_anomaly'"),
    ("threshold string", "POST", INFER, _doc(parameters={"threshold": "high"}), JSON, 400,
     "parameters.threshold: must be a number, got string \"high\""),
    ("threshold bool", "POST", INFER, _doc(parameters={"threshold": True}), JSON, 400,
     "parameters.threshold: must be a number, got bool true"),
    ("binary_data_output", "POST", INFER, _doc(parameters={"binary_data_output": "yes"}), JSON, 400,
     "parameters.binary_data_output: must be true or false"),
    ("content type", "POST", INFER, _doc(), {"Content-Type": "text/plain"}, 415,
     "Content-Type 'text/plain' is not read here; send application/json"),
    ("form content type", "POST", INFER, _doc(), {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "Content-Type 'application/x-www-form-urlencoded' is not read here"),
    ("content encoding", "POST", INFER, _doc(), {**JSON, "Content-Encoding": "gzip"}, 415,
     "Content-Encoding 'gzip' is not supported; send the body uncompressed"),
    ("over the size limit", "POST", INFER, b" " * (9 << 20), JSON, 413,
     "request body: more than the server's limit of 8,388,608 bytes (--max-message-mb)"),
    ("unknown route", "GET", "/v3/models", None, {}, 404,
     "no route /v3/models; the API is under /v2 (the Open Inference Protocol)"),
    ("method", "GET", INFER, None, {}, 405, "method GET is not allowed on /v2/models/oip/infer; use POST"),
]


@pytest.mark.parametrize("case, method, path, body, headers, status, message", BAD, ids=[c[0] for c in BAD])
def test_rejects(server, oip_model, case, method, path, body, headers, status, message):
    got, response_headers, response_body = call(server, method, path, body, headers)
    assert got == status
    assert response_headers["content-type"] == "application/json"
    error = json.loads(response_body)
    # Starlette's own refusals (no route, no such method) have no reason; every domain error has one.
    assert list(error) == (["error"] if case in ("unknown route", "method") else ["error", "reason"]), error
    assert message in error["error"], error
    assert "Traceback" not in error["error"]
    assert get(server, "/v2/health/live") == (200, {"live": True})
    assert infer(server, {"inputs": [rows_input(np.zeros((1, 5)))]})[0] == 200


def test_keep_alive_connection_serves_many_calls(server, oip_model, blobs):
    host, port = server.http_address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for i in range(20):
            conn.request("POST", INFER, json.dumps({"id": str(i), "inputs": [rows_input(blobs[1][i : i + 1])]}), JSON)
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["id"] == str(i)
    finally:
        conn.close()


def test_binary_bool_output_is_one_byte_per_row(server, oip_model):
    wanted = [{"name": "is_anomaly", "parameters": {"binary_data": True}}]
    body, headers = _binary_request(np.zeros((3, 5)), outputs=wanted)
    status, response_headers, response_body = call(server, "POST", INFER, body, headers)
    document, blob = _split(response_headers, response_body)
    assert status == 200 and document["outputs"][0]["parameters"] == {"binary_data_size": 3} and len(blob) == 3
    assert set(struct.unpack("3B", blob)) <= {0, 1}
