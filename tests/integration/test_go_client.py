"""A Go client (tests/go/client.go) built from stubs that the stock protoc-gen-go and protoc-gen-go-grpc generate from
proto/ as it is, trains, detects and explains on the embedded server, and reads the gRPC rich error model's details
(ErrorInfo reason, BadRequest field) from failed calls. Its results must equal the Python SDK's for the same rows.

The tools: protoc, protoc-gen-go, protoc-gen-go-grpc, go, and Go's grpc, protobuf and genproto libraries, built in
GOPATH mode from Debian's packages, so nothing is fetched (INSTALL below; .ci/run installs them). Missing tools skip
this test, or fail it under PYNOMALY_REQUIRE_STUBS=1 (CI).
"""

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

PROTO_ROOT = REPO / "proto"
GO_LIBRARIES = Path(os.environ.get("PYNOMALY_GO_LIBRARIES", "/usr/share/gocode"))  # Debian's golang-*-dev sources
INSTALL = ("apt-get install protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-go golang-google-grpc-dev "
           "golang-google-protobuf-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev")
LIBRARIES = ("google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto",
             "github.com/golang/protobuf")
# github.com/golang/protobuf before 1.4 (Debian's golang-github-golang-protobuf-1-3-dev) marshals with its own tables
# and panics on messages that protoc-gen-go 1.28 generates; 1.4+ is a wrapper over google.golang.org/protobuf.
OLD_GOLANG_PROTOBUF = "src/github.com/golang/protobuf/proto/table_marshal.go"


def missing(reason: str) -> None:
    if os.environ.get("PYNOMALY_REQUIRE_STUBS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go client, compiled against freshly generated stubs."""
    tools = {name: shutil.which(name) for name in ("protoc", "protoc-gen-go", "protoc-gen-go-grpc", "go")}
    for name, path in tools.items():
        if path is None:
            missing(f"{name} not found: the Go client test needs it (Debian: {INSTALL})")
    for library in LIBRARIES:
        if not (GO_LIBRARIES / "src" / library).is_dir():
            missing(f"{library} not found under {GO_LIBRARIES} (Debian: {INSTALL}; or set PYNOMALY_GO_LIBRARIES)")
    if (GO_LIBRARIES / OLD_GOLANG_PROTOBUF).exists():
        missing(f"github.com/golang/protobuf under {GO_LIBRARIES} is older than 1.4 (Debian: {INSTALL})")
    gopath = tmp_path_factory.mktemp("gopath")
    src = gopath / "src"
    (src / "pynomaly-go-client").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "go" / "client.go", src / "pynomaly-go-client" / "main.go")
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    generate = subprocess.run([tools["protoc"], f"-I{PROTO_ROOT}", f"--plugin=protoc-gen-go={tools['protoc-gen-go']}",
                               f"--plugin=protoc-gen-go-grpc={tools['protoc-gen-go-grpc']}", f"--go_out={src}",
                               f"--go-grpc_out={src}", *protos], capture_output=True, text=True, timeout=120)
    assert generate.returncode == 0, generate.stderr
    binary = gopath / "client"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}:{GO_LIBRARIES}", "GOFLAGS": "",
           "CGO_ENABLED": "0"}
    build = subprocess.run([tools["go"], "build", "-o", str(binary), "pynomaly-go-client"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-4000:]
    return binary


@pytest.mark.parametrize("server", ["embedded"], indirect=True)
def test_go_client_trains_detects_explains_and_reads_error_details(
        server: ServerProcess, go_client: Path, tmp_path: Path, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    train = blobs[0].astype(np.float32)
    score = blobs[1].astype(np.float32)
    request = tmp_path / "input.json"
    request.write_text(json.dumps({"name": "go-blobs", "train": train.tolist(), "score": score.tolist()}))

    run = subprocess.run([str(go_client), server.address, str(request)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)

    assert result["job"]["state"] == "TRAINING_JOB_STATE_SUCCEEDED"
    assert result["job"]["params"] == {"n_estimators": 50, "random_state": 0}
    version = result["job"]["model_version"]
    _, wrong_width, unknown = assert_like_the_sdk(result, server.address, "go-blobs", version, score)

    # The rich error model, as Go's status.Details() decodes it: the same reason, field and message as the SDK's.
    width = result["wrong_width"]
    assert width["code"] == "InvalidArgument"
    assert (width["reason"], width["domain"]) == ("WRONG_WIDTH", "pynomaly.io")
    assert width["message"] == wrong_width.details()
    assert width["message"] == "rows: expected 5 columns (the model's feature count), got 4"
    assert [field for field, _ in width["violations"]] == ["rows"]
    assert wrong_width.reason == "WRONG_WIDTH"

    missing_model = result["unknown_model"]
    assert missing_model["code"] == "NotFound"
    assert missing_model["reason"] == "UNKNOWN_MODEL" == unknown.reason
    assert missing_model["message"] == unknown.details() == "model 'go-blobs-missing' not found"
