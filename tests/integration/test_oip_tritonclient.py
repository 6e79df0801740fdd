"""Interop with a real client of the Open Inference Protocol: tritonclient, over gRPC and over HTTP, against the
real server on both engines. tritonclient runs in an environment of its own (it pins protobuf < 7), so each call
is tests/oip_clients/triton.py run there as a subprocess that prints JSON; its scores must equal Detect's."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from conftest import REPO

SCRIPT = REPO / "tests" / "oip_clients" / "triton.py"


def triton(python, protocol: str, url: str, rows, tmp_path, *flags: str) -> dict:
    path = tmp_path / "rows.npy"
    np.save(path, np.asarray(rows))
    done = subprocess.run([str(python), str(SCRIPT), protocol, url, str(path), *flags], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


CASES = [  # (id, flags, the version they resolve to)
    ("latest", [], 2),
    ("version", ["--version", "1"], 1),
    ("alias FP64", ["--version", "production", "--datatype", "FP64"], 1),
]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("case, flags, resolved", CASES, ids=[c[0] for c in CASES])
def test_tritonclient_scores_equal_detect(server, client, oip_model, blobs, tritonclient_python, tmp_path,
                                          protocol, case, flags, resolved):
    url = server.address if protocol == "grpc" else server.http_address
    report = triton(tritonclient_python, protocol, url, blobs[1], tmp_path, *flags)
    assert (report["live"], report["ready"], report["model_ready"]) == (True, True, True)
    assert report["server_metadata"]["name"] == "pynomaly"
    meta = report["model_metadata"]
    assert (meta["name"], meta["versions"], meta["platform"]) == ("oip", ["1", "2"], "onnx_onnxv1")
    assert [int(d) for d in meta["inputs"][0]["shape"]] == [-1, 5]
    if protocol == "http":  # Triton's own proto has no ModelMetadataResponse.properties: its gRPC stubs drop them
        assert meta["properties"]["version"] == str(resolved)
    assert report["response"] == {"model_name": "oip", "model_version": str(resolved), "id": "t-1"}
    datatype = "FP64" if "FP64" in flags else "FP32"
    dtype = np.float64 if datatype == "FP64" else np.float32
    detect = client.detect(f"oip@{resolved}", blobs[1].astype(dtype))  # Detect in the same precision
    score, flag = report["outputs"]["anomaly_score"], report["outputs"]["is_anomaly"]
    assert (score["datatype"], score["shape"], flag["datatype"], flag["shape"]) == (datatype, [50], "BOOL", [50])
    np.testing.assert_array_equal(np.array(score["data"], dtype), detect.anomaly_scores)
    assert flag["data"] == detect.is_anomaly.tolist()
    not_found = "StatusCode.NOT_FOUND" if protocol == "grpc" else "404"
    invalid = "StatusCode.INVALID_ARGUMENT" if protocol == "grpc" else "400"
    assert report["errors"] == {
        "unknown model": {"status": not_found, "message": "model 'nosuch' not found"},
        "unknown version": {"status": not_found, "message": "model 'oip' has no version 99"},
        "bad datatype": {"status": invalid, "message": "rows: datatype 'INT32' is not supported; send FP32 or FP64"},
    }
    assert server.alive()


@pytest.mark.parametrize("protocol, flags", [("grpc", []), ("http", []), ("http", ["--json-tensors"])],
                         ids=["grpc", "http-binary", "http-json"])
def test_tritonclient_requested_output_and_threshold(server, client, oip_model, blobs, tritonclient_python,
                                                     tmp_path, protocol, flags):
    url = server.address if protocol == "grpc" else server.http_address
    report = triton(tritonclient_python, protocol, url, blobs[1], tmp_path, "--outputs", "is_anomaly",
                    "--threshold", "0.01", *flags)
    assert list(report["outputs"]) == ["is_anomaly"]
    detect = client.detect("oip", blobs[1].astype(np.float32), threshold=0.01)
    assert report["outputs"]["is_anomaly"]["data"] == detect.is_anomaly.tolist()
