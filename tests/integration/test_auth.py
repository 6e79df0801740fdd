"""Bearer tokens on a real `pynomaly serve --auth-tokens`: gRPC and HTTP refuse a call without a valid token
(UNAUTHENTICATED / 401) or without the scope it needs (PERMISSION_DENIED / 403, naming the scope); health stays open,
reflection as --auth-reflection says; the token file is reloaded when it changes; a bad file fails start-up in one
line; every RPC the server serves has a scope in pynomaly.auth.METHOD_SCOPES."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from pynomaly import Client
from pynomaly.auth import METHOD_SCOPES
from pynomaly.oip.v2 import grpc_service_pb2 as oip_pb2
from pynomaly.oip.v2 import grpc_service_pb2_grpc as oip_grpc
from pynomaly.v1 import detect_pb2, model_pb2, train_pb2, train_pb2_grpc

from conftest import ServerProcess

TOKENS = {
    "detect": "detect-token-000000000001",
    "train": "train-token-0000000000002",
    "admin": "admin-token-0000000000003",
    "all": "all-scopes-token-00000004",
    "explain": "explain-token-00000000005",
}
TOKEN_FILE = f"""# Pynomaly tokens: TOKEN SCOPE[,SCOPE]
{TOKENS['detect']} detect
{TOKENS['train']}  train   # trailing comment

{TOKENS['admin']} admin
{TOKENS['all']} detect,explain,train,admin
{TOKENS['explain']} explain
"""


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens"
    path.write_text(TOKEN_FILE)
    return path


@pytest.fixture(scope="module")
def auth_server(token_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("store"), "--auth-tokens", str(token_file), "--http-listen",
                        "127.0.0.1:0")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def model(auth_server: ServerProcess) -> str:
    rows = np.random.default_rng(0).normal(size=(200, 3))
    with Client(auth_server.address, token=TOKENS["train"]) as client:
        card = client.train("auth", rows, algorithm="iforest", params={"n_estimators": 10, "random_state": 0})
    return f"{card.name}@{card.version}"


def refusal(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()  # type: ignore[attr-defined]


def with_token(token: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")] if token is not None else []


def test_no_token_and_bad_token_are_unauthenticated(auth_server: ServerProcess) -> None:
    stub = train_pb2_grpc.TrainServiceStub(auth_server.channel)
    request = train_pb2.ListAlgorithmsRequest()
    assert refusal(lambda: stub.ListAlgorithms(request, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED, "missing bearer token: send the header 'authorization: Bearer TOKEN'")
    assert refusal(lambda: stub.ListAlgorithms(request, timeout=10, metadata=with_token("not-a-token-at-all"))) == (
        grpc.StatusCode.UNAUTHENTICATED, "invalid token")
    assert refusal(lambda: stub.ListAlgorithms(request, timeout=10, metadata=[("authorization", "Basic abc")]))[0] \
        == grpc.StatusCode.UNAUTHENTICATED
    # Streaming RPCs too, before their requests are read.
    assert refusal(lambda: list(stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id="x"), timeout=10)))[0] \
        == grpc.StatusCode.UNAUTHENTICATED
    with Client(auth_server.address, token="") as client:  # "" and no PYNOMALY_TOKEN: no header
        code, _ = refusal(lambda: list(client.detect_stub.DetectStream(iter([detect_pb2.DetectStreamRequest()]),
                                                                       timeout=10)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    assert auth_server.alive()


def test_scopes(auth_server: ServerProcess, model: str) -> None:
    X = np.random.default_rng(1).normal(size=(5, 3))
    with Client(auth_server.address, token=TOKENS["detect"]) as client:
        assert client.detect(model, X).anomaly_scores.shape == (5,)
        assert [c.name for c in client.list_models()] == ["auth"]  # reading: any valid token
        assert len(client.list_algorithms()) > 5
        code, message = refusal(lambda: client.start_training("m", X))
        assert (code, message) == (grpc.StatusCode.PERMISSION_DENIED, "the token lacks the scope 'train' that "
                                   "/pynomaly.v1.TrainService/CreateTrainingJob needs")
        code, message = refusal(lambda: client.explain(model, X))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'explain'" in message
        code, message = refusal(lambda: client.set_alias("auth", "production", 1))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'admin'" in message
    with Client(auth_server.address, token=TOKENS["train"]) as client:
        code, message = refusal(lambda: client.list_batch_jobs())
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'detect'" in message
        code, message = refusal(lambda: client.delete_model(model))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'admin'" in message
    with Client(auth_server.address, token=TOKENS["explain"]) as client:
        assert client.explain(model, X).contributions.shape == (5, 3)
    with Client(auth_server.address, token=TOKENS["admin"]) as client:
        assert client.set_alias("auth", "production", 1).version == 1
        code, message = refusal(lambda: client.detect(model, X))  # admin is not every scope
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'detect'" in message
    assert auth_server.alive()


def test_open_inference_protocol_methods(auth_server: ServerProcess, model: str) -> None:
    stub = oip_grpc.GRPCInferenceServiceStub(auth_server.channel)
    assert stub.ServerLive(oip_pb2.ServerLiveRequest(), timeout=10).live  # open, like health
    assert stub.ServerReady(oip_pb2.ServerReadyRequest(), timeout=10).ready
    name = model.split("@")[0]
    assert refusal(lambda: stub.ModelMetadata(oip_pb2.ModelMetadataRequest(name=name), timeout=10))[0] == \
        grpc.StatusCode.UNAUTHENTICATED
    assert stub.ModelMetadata(oip_pb2.ModelMetadataRequest(name=name), timeout=10,
                              metadata=with_token(TOKENS["train"])).name == name
    infer = oip_pb2.ModelInferRequest(model_name=name, inputs=[oip_pb2.ModelInferRequest.InferInputTensor(
        name="rows", datatype="FP64", shape=[1, 3], contents=oip_pb2.InferTensorContents(fp64_contents=[0, 0, 0]))])
    code, message = refusal(lambda: stub.ModelInfer(infer, timeout=10, metadata=with_token(TOKENS["train"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "'detect'" in message
    answer = stub.ModelInfer(infer, timeout=10, metadata=with_token(TOKENS["detect"]))
    assert answer.model_name == name


def test_health_open(auth_server: ServerProcess) -> None:
    health = health_pb2_grpc.HealthStub(auth_server.channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()


def list_services(channel: grpc.Channel, token: str | None = None) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=10, metadata=with_token(token))
    return [s.name for s in next(responses).list_services_response.service]


def test_reflection_open_by_default(auth_server: ServerProcess) -> None:
    assert "pynomaly.v1.DetectService" in list_services(auth_server.channel)


def test_every_served_rpc_has_a_scope(auth_server: ServerProcess) -> None:
    """Asks the server itself which services and methods it serves: a new RPC without a row in METHOD_SCOPES (it
    would be refused to every token) fails here."""
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(auth_server.channel))
    served = {f"/{name}/{m.name}" for name in list_services(auth_server.channel)
              for m in pool.FindServiceByName(name).methods}
    assert len(served) > 30
    assert sorted(served - METHOD_SCOPES.keys()) == []


def test_reflection_needs_a_token_when_asked(token_file: Path, tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "store", "--auth-tokens", str(token_file), "--auth-reflection", "token")
    try:
        code, _ = refusal(lambda: list_services(srv.channel))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "grpc.health.v1.Health" in list_services(srv.channel, TOKENS["detect"])  # any valid token
        assert srv.alive()  # health stays open
    finally:
        srv.stop()


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"content-type": "application/json",
                                              **({"authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_http(auth_server: ServerProcess, model: str) -> None:
    base = f"http://{auth_server.http_address}/v2"
    assert http("GET", base + "/health/ready")[::2] == (200, {"ready": True})
    assert http("GET", base + "/health/live")[::2] == (200, {"live": True})
    name = model.split("@")[0]
    status, headers, body = http("GET", f"{base}/models/{name}")
    assert (status, headers["www-authenticate"], body) == (401, 'Bearer realm="pynomaly"', {
        "error": "missing bearer token: send the header 'authorization: Bearer TOKEN'"})
    status, headers, body = http("GET", f"{base}/models/{name}", "wrong-token-0000000000000")
    assert (status, headers["www-authenticate"], body) == (401, 'Bearer realm="pynomaly", error="invalid_token"',
                                                           {"error": "invalid token"})
    assert http("GET", f"{base}/models/{name}", TOKENS["explain"])[0] == 200
    infer = {"inputs": [{"name": "rows", "datatype": "FP64", "shape": [1, 3], "data": [0, 0, 0]}]}
    status, headers, body = http("POST", f"{base}/models/{name}/infer", TOKENS["train"], infer)
    assert (status, headers["www-authenticate"]) == (403, 'Bearer realm="pynomaly", error="insufficient_scope"')
    assert body == {"error": "the token lacks the scope 'detect' that /inference.GRPCInferenceService/ModelInfer "
                             "needs"}
    status, _, body = http("POST", f"{base}/models/{name}/infer", TOKENS["detect"], infer)
    assert status == 200 and body["model_name"] == name


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pynomaly.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_cli_reads_pynomaly_token(auth_server: ServerProcess, model: str) -> None:
    out = cli("models", "--server", auth_server.address, "list", env={"PYNOMALY_TOKEN": ""})
    assert (out.returncode, out.stderr) == (1, "error: UNAUTHENTICATED: missing bearer token: send the header "
                                               "'authorization: Bearer TOKEN'\n")
    out = cli("models", "--server", auth_server.address, "list", env={"PYNOMALY_TOKEN": TOKENS["detect"]})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("auth@1\t")
    out = cli("models", "--server", auth_server.address, "delete", model, env={"PYNOMALY_TOKEN": TOKENS["detect"]})
    assert (out.returncode, out.stderr) == (1, "error: PERMISSION_DENIED: the token lacks the scope 'admin' that "
                                               "/pynomaly.v1.ModelService/DeleteModelVersion needs\n")


def test_token_file_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    old, new = "old-token-0000000000000001", "new-token-0000000000000002"
    path.write_text(f"{old} detect\n")
    srv = ServerProcess(tmp_path / "store", "--auth-tokens", str(path))
    try:
        request, stub = train_pb2.ListAlgorithmsRequest(), train_pb2_grpc.TrainServiceStub(srv.channel)
        assert stub.ListAlgorithms(request, timeout=10, metadata=with_token(old)).algorithms
        assert refusal(lambda: stub.ListAlgorithms(request, timeout=10, metadata=with_token(new)))[0] == \
            grpc.StatusCode.UNAUTHENTICATED
        tmp = tmp_path / "tokens.tmp"
        tmp.write_text(f"{new} detect,train\n")
        os.replace(tmp, path)
        deadline = time.monotonic() + 10
        while True:  # read again within a second (pynomaly.auth.Tokens checks the file at most once a second)
            try:
                stub.ListAlgorithms(request, timeout=10, metadata=with_token(new))
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "the new token file was not read within 10 s"
                time.sleep(0.2)
        assert refusal(lambda: stub.ListAlgorithms(request, timeout=10, metadata=with_token(old)))[0] == \
            grpc.StatusCode.UNAUTHENTICATED
        # A broken file is not taken: the tokens read before stay in force.
        path.write_text(f"{new} detect,bogus\n")
        time.sleep(1.5)
        assert stub.ListAlgorithms(request, timeout=10, metadata=with_token(new)).algorithms
        assert "unknown scope 'bogus'" in srv.stop()
    finally:
        if srv.proc.poll() is None:
            srv.stop()


@pytest.mark.parametrize(("content", "message"), [
    (None, "error: --auth-tokens {path}: cannot read the token file: No such file or directory"),
    ("", "error: --auth-tokens {path}: no tokens (one `TOKEN SCOPE[,SCOPE...]` a line)"),
    ("# only a comment\n\n", "error: --auth-tokens {path}: no tokens (one `TOKEN SCOPE[,SCOPE...]` a line)"),
    ("# tokens\nabcdefghijklmnop0123 detect,read\n",
     "error: --auth-tokens {path}, line 2: unknown scope 'read' (scopes: detect, explain, train, admin)"),
    ("abcdefghijklmnop0123 detect\n\nabcdefghijklmnop0123 train\n",
     "error: --auth-tokens {path}, line 3: duplicate token (each token appears once, with all its scopes)"),
    ("abcdefghijklmnop0123\n", "error: --auth-tokens {path}, line 1: expected TOKEN SCOPE[,SCOPE...] (scopes: "
                               "detect, explain, train, admin)"),
    ("short detect\n", "error: --auth-tokens {path}, line 1: a token must have at least 16 characters "
                       "(e.g. `openssl rand -hex 32`)"),
])
def test_bad_token_file_fails_start_up_in_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    out = cli("serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "store"), "--auth-tokens", str(path),
              env={})
    assert (out.returncode, out.stderr) == (1, message.format(path=path) + "\n")
    assert not (tmp_path / "store").exists()


def test_scope_table_names_only_known_scopes() -> None:
    from pynomaly.auth import ANY, OPEN, REFLECTION, SCOPES

    assert set(METHOD_SCOPES.values()) <= {*SCOPES, ANY, OPEN, REFLECTION}
    for service in (model_pb2.DESCRIPTOR.services_by_name["ModelService"],):
        writes = {"DeleteModelVersion", "SetModelAlias", "DeleteModelAlias", "ImportModel"}
        assert {m.name for m in service.methods if METHOD_SCOPES[f"/{service.full_name}/{m.name}"] == "admin"} >= \
            writes
