"""Readiness follows the model store, liveness does not (what the Helm chart's gRPC probes ask): while the store
cannot be read, grpc.health.v1 answers NOT_SERVING for "" and the API services, the Open Inference Protocol's
ready endpoints answer not ready, and "liveness" stays SERVING; once the store is back, so is the pod."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pynomaly import Client
from pynomaly.oip.v2 import grpc_service_pb2, grpc_service_pb2_grpc

from conftest import ServerProcess, moto_s3, require_ray

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
API = ("", "pynomaly.v1.DetectService", "pynomaly.v1.TrainService", "inference.GRPCInferenceService")


def statuses(srv: ServerProcess) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(srv.channel)
    return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            for name in (*API, "liveness")}


def rest_ready(srv: ServerProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://{srv.http_address}/v2/health/ready", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        assert json.loads(e.read()) == {"ready": False}
        return e.code


def wait_for(srv: ServerProcess, status: int, seconds: float = 20) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while (got := statuses(srv))[""] != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


@pytest.mark.parametrize("engine", ["embedded", "ray"])
def test_a_store_that_vanishes_makes_the_server_unready_not_dead(tmp_path, engine):
    if engine == "ray":
        require_ray()
    store = tmp_path / "store"
    srv = ServerProcess(store, "--store-check-seconds", "0.2", "--http-listen", "127.0.0.1:0", engine=engine)
    try:
        assert statuses(srv) == dict.fromkeys((*API, "liveness"), SERVING)
        assert rest_ready(srv) == 200
        with Client(srv.address, timeout=60) as client:
            client.train("kept", np.random.default_rng(0).normal(size=(100, 3)), algorithm="hbos")
        (store / "models").rename(tmp_path / "away")  # the volume goes away under the running server

        assert wait_for(srv, NOT_SERVING) == {**dict.fromkeys(API, NOT_SERVING), "liveness": SERVING}
        assert rest_ready(srv) == 503
        oip = grpc_service_pb2_grpc.GRPCInferenceServiceStub(srv.channel)
        assert oip.ServerReady(grpc_service_pb2.ServerReadyRequest(), timeout=5).ready is False
        assert oip.ServerLive(grpc_service_pb2.ServerLiveRequest(), timeout=5).live is True

        (tmp_path / "away").rename(store / "models")
        assert wait_for(srv, SERVING) == dict.fromkeys((*API, "liveness"), SERVING)
        assert rest_ready(srv) == 200
        with Client(srv.address, timeout=60) as client:
            assert client.get_model("kept").version == 1, "nothing was lost while the store was away"
    finally:
        output = srv.stop()
    assert "cannot be read (FileNotFoundError" in output and "readable again: ready" in output, output


def test_an_s3_bucket_that_goes_away_makes_the_server_unready(tmp_path):
    bucket = "pynomaly-ready"
    with moto_s3(bucket) as s3:
        srv = ServerProcess(f"s3://{bucket}/{uuid.uuid4().hex}", "--store-check-seconds", "0.2")  # type: ignore[arg-type]
        try:
            assert statuses(srv)[""] == SERVING
            s3.delete_bucket(Bucket=bucket)
            assert wait_for(srv, NOT_SERVING)["liveness"] == SERVING
            s3.create_bucket(Bucket=bucket)
            assert wait_for(srv, SERVING)[""] == SERVING
        finally:
            output = srv.stop()
    assert f"model store ObjectStore('s3://{bucket}/" in output, output
    assert "cannot be read (FileNotFoundError" in output, output
    assert "readable again" in output, output


@pytest.mark.parametrize(("value", "message"), [
    ("0", "argument --store-check-seconds: must be a positive number of seconds, got 0"),
    ("-1", "argument --store-check-seconds: must be a positive number of seconds, got -1"),
    ("inf", "argument --store-check-seconds: must be a positive number of seconds, got inf"),
    ("soon", "argument --store-check-seconds: not a number of seconds: 'soon'"),
])
def test_a_bad_store_check_interval_is_refused_before_anything_starts(tmp_path, value, message):
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--store", str(tmp_path / "s"),
                           "--store-check-seconds", value], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "s").exists(), "nothing was created"
