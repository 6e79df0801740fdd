"""Shared fixtures: a real `pynomaly serve` process on 127.0.0.1, small seeded data, the benchmark datasets."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pynomaly import Client

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PYNOMALY_DATASETS", REPO.parent / "shared" / "datasets"))


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """X, y of one benchmark set; skips (or fails, under PYNOMALY_REQUIRE_DATASETS=1) when the directory is absent."""
    path = DATASETS / f"{name}.npz"
    if not path.is_file():
        reason = (f"benchmark dataset {path} not found: set PYNOMALY_DATASETS to the directory holding the "
                  "ADBench .npz files (default ../shared/datasets)")
        if os.environ.get("PYNOMALY_REQUIRE_DATASETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with np.load(path, allow_pickle=False) as data:
        return data["X"], data["y"]


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback (`make test` runs the suite in one)."""
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_ray() -> None:
    """Ray's processes bind every interface: start them only inside a loopback-only network namespace."""
    reason = ("the Ray engine tests run only inside a network namespace with loopback alone (Ray binds every "
              "interface): run them with `make test`, which uses `unshare -n`")
    if not loopback_only():
        if os.environ.get("PYNOMALY_REQUIRE_RAY") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


RAY_MODULES = {"test_ray", "test_ray_serve_config", "test_s3_store"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """What starts Ray runs last, so no idle Ray cluster (a third of a core) slows the rest; and the tests that
    start a cluster of their own run before the session-wide `server[ray]` one, which lives to the end."""

    def order(item: pytest.Item) -> int:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("server") == "ray":
            return 2
        return int(params.get("engine") == "ray" or item.module.__name__ in RAY_MODULES)

    items.sort(key=order)  # stable: pytest's grouping by fixture instance is kept within each part


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[Any]:
    """An S3-compatible server (moto) on 127.0.0.1 with `bucket` created, and the AWS_* environment pointing at it
    (inherited by the server processes and their Ray workers); yields a boto3 client of it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with pytest.MonkeyPatch.context() as env:
            for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
                env.delenv(var, raising=False)
            env.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            client = boto3.client("s3")
            client.create_bucket(Bucket=bucket)
            yield client
    finally:
        server.stop()


class ServerProcess:
    """`python -m pynomaly.cli serve` on an ephemeral loopback port; `engine="ray"` starts a private Ray cluster.
    `http_address` is the REST API's host:port when `--http-listen` is among the flags (from the banner), else None.
    No shutdown delay unless the flags give one: the 5 s default keeps a server in load balancers' pools on SIGTERM,
    which no test's client needs (and would cost 5 s per stop); the tests of that delay set it."""

    def __init__(self, store: Path, *extra: str, engine: str = "embedded",
                 credentials: grpc.ChannelCredentials | None = None):
        # credentials: the channel's, for a server started with --tls-cert. `health_address`: the plaintext health
        # port's host:port when --health-listen is among the flags.
        self.store = store
        self.engine = engine
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pynomaly.cli", "serve", "--engine", engine, "--listen", "127.0.0.1:0",
             "--store", str(store), "--log-level", "warning",
             *([] if "--shutdown-delay-s" in extra else ["--shutdown-delay-s", "0"]), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.address: str | None = None
        self.http_address: str | None = None
        self.health_address: str | None = None
        try:
            self._read_banner(extra)
            assert self.address is not None
            self.channel = (grpc.secure_channel(self.address, credentials) if credentials is not None
                            else grpc.insecure_channel(self.address))
            status = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        except BaseException:  # a server that did not come up is not left running (with its Ray cluster)
            self.proc.kill()
            self.proc.communicate()
            raise

    def _read_banner(self, extra: tuple[str, ...]) -> None:
        assert self.proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited during start-up:\n" + "".join(lines))
            lines.append(line)
            if m := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
                self.address = m.group(1)
            if m := re.search(r"REST: .*https?://(127\.0\.0\.1:\d+)/", line):
                self.http_address = m.group(1)
            if m := re.search(r"probes: .* on (127\.0\.0\.1:\d+)", line):
                self.health_address = m.group(1)
            if self.address and (self.http_address or "--http-listen" not in extra) and (
                    self.health_address or not any(f.startswith("--health-listen") for f in extra)):
                return
        raise RuntimeError("server did not start in 60 s:\n" + "".join(lines))

    def alive(self) -> bool:
        check = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return self.proc.poll() is None and check.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self) -> str:
        self.channel.close()
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


@pytest.fixture(scope="session", params=["embedded", "ray"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The platform under test: every test that uses it runs against both engines, the same assertions."""
    if request.param == "ray":
        require_ray()
    data_root, output_root = tmp_path_factory.mktemp("data-root"), tmp_path_factory.mktemp("output-root")
    srv = ServerProcess(tmp_path_factory.mktemp("store"), "--data-root", str(data_root), "--output-root",
                        str(output_root), "--max-message-mb", "8", "--http-listen", "127.0.0.1:0",
                        engine=request.param)
    srv.data_root = data_root  # type: ignore[attr-defined]
    srv.output_root = output_root  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.address, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Seeded training rows (N(0,1), 400 × 5) and scoring rows with 10 planted outliers at the end."""
    rng = np.random.default_rng(7)
    train = rng.normal(size=(400, 5))
    score = np.vstack([rng.normal(size=(40, 5)), rng.uniform(5, 8, size=(10, 5))])
    return train, score


@pytest.fixture(scope="session")
def trained(client: Client, blobs: tuple[np.ndarray, np.ndarray]) -> str:
    """A small IForest model 'blobs' trained once per session; returns its reference."""
    card = client.train("blobs", blobs[0], algorithm="iforest", params={"n_estimators": 50, "random_state": 0})
    return f"{card.name}@{card.version}"


@pytest.fixture(scope="session")
def oip_model(client: Client, blobs: tuple[np.ndarray, np.ndarray]) -> str:
    """Model 'oip' for the Open Inference Protocol tests: versions 1 and 2 (two different forests) and the alias
    'production' on version 1; returns its name."""
    client.train("oip", blobs[0], algorithm="iforest", params={"n_estimators": 40, "random_state": 0})
    client.train("oip", blobs[0], algorithm="iforest", params={"n_estimators": 25, "random_state": 1})
    client.set_alias("oip", "production", 1)
    return "oip"


@pytest.fixture(scope="session")
def tritonclient_python() -> Path:
    """The interpreter of the tritonclient environment (built once under the repository, then reused). Without
    PyPI it cannot be built: the tests using it are skipped with the reason, or fail under CI=true."""
    from benchmarks import tritonclient_env

    try:
        return tritonclient_env.python()
    except (subprocess.CalledProcessError, OSError) as e:
        reason = (f"cannot build the tritonclient environment ({tritonclient_env.TRITONCLIENT}): "
                  f"{getattr(e, 'stderr', None) or e}")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def assert_scores_close(served: np.ndarray, native: np.ndarray, rtol: float = 1e-5) -> None:
    """Relative error ≤ rtol per row, with the denominator floored at 1e-6 × the largest |score|.

    The floor matters only for scores that are 0 up to rounding: PyOD's IForest subtracts a training-score
    percentile, so the row that defines it scores exactly 0.0 natively and ±1e-17 in any other summation
    order. This is the export check's own metric (pynomaly.verification.compare).
    """
    from pynomaly.verification import compare

    served, native = np.asarray(served), np.asarray(native, dtype=np.float64)
    assert served.shape == native.shape
    max_abs, max_rel = compare(served, native)
    assert max_rel <= rtol, f"max relative error {max_rel:.3g} > {rtol:g} (max abs {max_abs:.3g})"


# onnxruntime's vectorised float64 kernels (Eigen's sums, exponentials and logarithms) round a row's values by
# where the row sits in the batch's buffer: the same row alone and inside a batch differed by 1-4096 float64 ulps,
# 2.6e-13 relative at most (LOF over 20 features), over every case of the export tests' table.
BATCH_TOLERANCE = 1e-12


def assert_same_scores(got: np.ndarray, expected: np.ndarray) -> None:
    """The same rows' scores from two batches (a row alone, another order or batch size): bit for bit once rounded
    to float32 (as float32 requests are served), and to float64 rounding (BATCH_TOLERANCE) as float64 requests
    are."""
    from pynomaly.verification import compare

    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(expected, np.float32))
    assert compare(got, np.asarray(expected, np.float64))[1] <= BATCH_TOLERANCE
