"""A Node.js client (@grpc/grpc-js + @grpc/proto-loader, loading proto/ at run time) trains, detects, explains and
calls the Open Inference Protocol's ModelInfer on the embedded server, and reads the rich error model's details from
failed calls; its results must equal the Python SDK's for the same rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from client_parity import assert_like_the_sdk
from conftest import REPO, ServerProcess

NODE_DIR = REPO / "tests" / "node"


@pytest.fixture(scope="session")
def node_client() -> Path:
    """tests/node with its packages installed from the npm registry (`npm ci`, once per lock file)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "Node.js and npm are needed for the Node client test (Debian: apt-get install nodejs npm)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.is_file() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    return NODE_DIR / "client.mjs"


@pytest.mark.parametrize("server", ["embedded"], indirect=True)
def test_node_client_trains_detects_explains_and_infers(server: ServerProcess, node_client: Path, tmp_path: Path,
                                                 blobs: tuple[np.ndarray, np.ndarray]) -> None:
    train = blobs[0].astype(np.float32)
    score = blobs[1].astype(np.float32)
    request = tmp_path / "input.json"
    request.write_text(json.dumps({"name": "node-blobs", "train": train.tolist(), "score": score.tolist()}))

    run = subprocess.run(["node", str(node_client), server.address, str(request)], capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)

    # The job ran with the parameters the Node client sent as google.protobuf.Value numbers.
    assert result["job"]["state"] == "TRAINING_JOB_STATE_SUCCEEDED"
    assert result["job"]["params"] == {"n_estimators": {"numberValue": 50, "kind": "numberValue"},
                                       "random_state": {"numberValue": 0, "kind": "numberValue"}}
    version = result["job"]["model_version"]
    expected, wrong_width, unknown = assert_like_the_sdk(result, server.address, "node-blobs", version, score)

    # The Open Inference Protocol: the same scores and flags, in the input's datatype.
    oip = result["oip"]
    assert (oip["model_name"], oip["model_version"]) == ("node-blobs", str(version))
    assert oip["outputs"]["anomaly_score"]["datatype"] == "FP32"
    assert oip["outputs"]["anomaly_score"]["shape"] == [len(score)]
    np.testing.assert_array_equal(np.array(oip["outputs"]["anomaly_score"]["data"], dtype=np.float32),
                                  expected.anomaly_scores)
    assert oip["outputs"]["is_anomaly"] == {"datatype": "BOOL", "shape": [len(score)],
                                            "data": expected.is_anomaly.tolist()}

    # The rich error model, decoded from grpc-status-details-bin: the same reason, field and message as the SDK's.
    assert result["wrong_width"] == {
        "code": "INVALID_ARGUMENT", "message": "rows: expected 5 columns (the model's feature count), got 4",
        "reason": "WRONG_WIDTH", "domain": "pynomaly.io", "violations": ["rows"]}
    assert wrong_width.reason == "WRONG_WIDTH"
    assert wrong_width.details() == result["wrong_width"]["message"]
    assert result["unknown_model"] == {
        "code": "NOT_FOUND", "message": "model 'node-blobs-missing' not found", "reason": "UNKNOWN_MODEL",
        "domain": "pynomaly.io", "violations": []}
    assert unknown.reason == "UNKNOWN_MODEL"
