"""TLS and mutual TLS on a real `pynomaly serve` (gRPC and the HTTP app), with a throwaway CA made here: plaintext and
a wrong CA refused, a client certificate required under mutual TLS, certificates reloaded without a restart, the
plaintext health-only port for probes, the CLI and SDK client options, and the Ray engine once."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tls_ca import CA, serial

from pynomaly import Client
from pynomaly.v1 import train_pb2, train_pb2_grpc

from conftest import ServerProcess, require_ray


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca, other = CA(d / "ca"), CA(d / "other", "other-ca")
    server_cert, server_key = ca.issue("server", server=True, cert_path=d / "tls.crt", key_path=d / "tls.key")
    client_cert, client_key = ca.issue("client", server=False)
    stranger_cert, stranger_key = other.issue("stranger", server=False)
    return {"ca": ca.cert_path, "other_ca": other.cert_path, "cert": server_cert, "key": server_key,
            "client_cert": client_cert, "client_key": client_key, "stranger_cert": stranger_cert,
            "stranger_key": stranger_key, "dir": d, "_ca": ca}  # type: ignore[dict-item]


def creds(ca: Path, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes() if key else None,
                                        cert.read_bytes() if cert else None)


def algorithms(address: str, credentials: grpc.ChannelCredentials | None) -> int:
    """How many algorithms the server lists over a new channel (raises grpc.RpcError when refused)."""
    channel = (grpc.secure_channel(address, credentials) if credentials is not None
               else grpc.insecure_channel(address))
    with channel:
        stub = train_pb2_grpc.TrainServiceStub(channel)
        return len(stub.ListAlgorithms(train_pb2.ListAlgorithmsRequest(), timeout=10).algorithms)


def refused(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        algorithms(address, credentials)
    return e.value.code()  # type: ignore[attr-defined, no-any-return]


def https_get(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, context=context, timeout=10) as r:
        return r.status, json.loads(r.read())


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def served_serial(address: str, ca: Path, alpn: str, cert: Path | None = None, key: Path | None = None) -> int:
    """The serial number of the certificate the server presents to a new TLS connection."""
    host, _, port = address.rpartition(":")
    context = client_context(ca, cert, key)
    context.set_alpn_protocols([alpn])
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return serial(ssl.DER_cert_to_PEM_cert(der).encode())


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pynomaly.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("store"), "--tls-cert", str(pki["cert"]), "--tls-key",
                        str(pki["key"]), "--http-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
                        credentials=creds(pki["ca"]))
    yield srv
    srv.stop()


def test_tls_refuses_plaintext_and_a_wrong_ca(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    assert algorithms(tls_server.address, creds(pki["ca"])) > 5
    assert refused(tls_server.address, None) == grpc.StatusCode.UNAVAILABLE
    assert refused(tls_server.address, creds(pki["other_ca"])) == grpc.StatusCode.UNAVAILABLE
    with Client(tls_server.address, tls_ca=pki["ca"]) as client:
        assert len(client.list_algorithms()) > 5
    assert tls_server.alive()


def test_https(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    url = f"https://{tls_server.http_address}/v2/health/ready"
    assert https_get(url, client_context(pki["ca"])) == (200, {"ready": True})
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        https_get(url, client_context(pki["other_ca"]))
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):  # plain HTTP to a TLS socket
        urllib.request.urlopen(f"http://{tls_server.http_address}/v2/health/ready", timeout=10).read()
    assert https_get(url, client_context(pki["ca"]))[0] == 200


def test_plaintext_health_port_for_probes(tls_server: ServerProcess) -> None:
    assert tls_server.health_address is not None
    with grpc.insecure_channel(tls_server.health_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == serving
        assert health.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=10).status == serving
        with pytest.raises(grpc.RpcError) as e:  # health only: nothing else is served in plaintext
            train_pb2_grpc.TrainServiceStub(channel).ListAlgorithms(train_pb2.ListAlgorithmsRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_cli_tls_ca_flag_and_env(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    out = cli("algorithms", "--server", tls_server.address, "--tls-ca", str(pki["ca"]))
    assert out.returncode == 0, out.stderr
    assert "iforest" in out.stdout
    out = cli("algorithms", "--server", tls_server.address, env={"PYNOMALY_TLS_CA": str(pki["ca"])})
    assert out.returncode == 0, out.stderr
    out = cli("algorithms", "--server", tls_server.address, env={"PYNOMALY_TLS_CA": ""})
    assert out.returncode == 1
    assert out.stderr.startswith("error: UNAVAILABLE") and len(out.stderr.splitlines()) == 1, out.stderr


def test_certificate_reloaded_without_restart(tls_server: ServerProcess, pki: dict[str, Path]) -> None:
    ca: CA = pki["_ca"]  # type: ignore[assignment]
    before = serial(pki["cert"].read_bytes())
    assert served_serial(tls_server.address, pki["ca"], "h2") == before
    assert served_serial(tls_server.http_address or "", pki["ca"], "http/1.1") == before
    ca.issue("server", server=True, cert_path=pki["cert"], key_path=pki["key"])  # rotated in place
    after = serial(pki["cert"].read_bytes())
    assert after != before
    assert served_serial(tls_server.address, pki["ca"], "h2") == after
    assert served_serial(tls_server.http_address or "", pki["ca"], "http/1.1") == after
    assert algorithms(tls_server.address, creds(pki["ca"])) > 5  # a new connection shakes hands with the new pair
    assert https_get(f"https://{tls_server.http_address}/v2/health/live", client_context(pki["ca"]))[0] == 200
    # A broken pair (a key that is not the certificate's) is not taken: the last good one keeps serving.
    pki["key"].write_bytes(pki["client_key"].read_bytes())
    try:
        assert served_serial(tls_server.address, pki["ca"], "h2") == after
        assert served_serial(tls_server.http_address or "", pki["ca"], "http/1.1") == after
    finally:
        ca.issue("server", server=True, cert_path=pki["cert"], key_path=pki["key"])
    assert algorithms(tls_server.address, creds(pki["ca"])) > 5
    assert tls_server.proc.poll() is None


def test_mutual_tls(pki: dict[str, Path], tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "store", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]),
                        "--tls-client-ca", str(pki["ca"]), "--http-listen", "127.0.0.1:0",
                        credentials=creds(pki["ca"], pki["client_cert"], pki["client_key"]))
    try:
        assert algorithms(srv.address, creds(pki["ca"], pki["client_cert"], pki["client_key"])) > 5
        assert refused(srv.address, creds(pki["ca"])) == grpc.StatusCode.UNAVAILABLE  # no client certificate
        assert refused(srv.address, creds(pki["ca"], pki["stranger_cert"], pki["stranger_key"])) == \
            grpc.StatusCode.UNAVAILABLE  # signed by another CA
        with Client(srv.address, tls_ca=pki["ca"], tls_cert=pki["client_cert"], tls_key=pki["client_key"]) as c:
            assert len(c.list_algorithms()) > 5
        url = f"https://{srv.http_address}/v2/health/ready"
        assert https_get(url, client_context(pki["ca"], pki["client_cert"], pki["client_key"]))[0] == 200
        for context in (client_context(pki["ca"]), client_context(pki["ca"], pki["stranger_cert"],
                                                                  pki["stranger_key"])):
            with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
                https_get(url, context)
        out = cli("algorithms", "--server", srv.address, "--tls-ca", str(pki["ca"]), "--tls-cert",
                  str(pki["client_cert"]), "--tls-key", str(pki["client_key"]))
        assert out.returncode == 0, out.stderr
        out = cli("algorithms", "--server", srv.address, "--tls-ca", str(pki["ca"]), "--tls-cert",
                  str(pki["client_cert"]))
        assert (out.returncode, out.stderr) == (2, "error: --tls-cert and --tls-key go together: give both, or "
                                                   "neither\n")
        assert srv.alive()
    finally:
        srv.stop()


@pytest.mark.parametrize(("flags", "message"), [
    (["--tls-cert", "{cert}"], "error: --tls-cert and --tls-key go together: give both, or neither"),
    (["--tls-client-ca", "{ca}"], "error: --tls-client-ca needs --tls-cert and --tls-key"),
    (["--tls-cert", "{cert}", "--tls-key", "{dir}/missing.key"], "error: cannot read the TLS files: "),
    (["--tls-cert", "{cert}", "--tls-key", "{client_key}"], "error: --tls-cert {cert} / --tls-key {client_key} / "
                                                            "--tls-client-ca: not a usable certificate, key or CA: "),
    (["--tls-cert", "{cert}", "--tls-key", "{key}", "--tls-client-ca", "{dir}/tls.key"],
     "error: --tls-cert {cert} / --tls-key {key} / --tls-client-ca: not a usable certificate, key or CA"),
])
def test_bad_tls_files_fail_start_up_in_one_line(pki: dict[str, Path], tmp_path: Path, flags: list[str],
                                                 message: str) -> None:
    paths = {k: str(v) for k, v in pki.items()}
    out = cli("serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "store"),
              *[f.format(**paths) for f in flags])
    assert out.returncode == 1
    assert out.stderr.startswith(message.format(**paths)), out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert not (tmp_path / "store").exists()  # nothing started


def test_ray_engine_tls_and_tokens(pki: dict[str, Path], tmp_path: Path) -> None:
    """The Ray engine's Gateway takes the same settings through AppArgs: TLS, and a token's scope."""
    require_ray()
    tokens = tmp_path / "tokens"
    tokens.write_text("detect-token-0123456789 detect\n")
    srv = ServerProcess(tmp_path / "store", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]),
                        "--auth-tokens", str(tokens), "--min-replicas", "1", "--max-replicas", "1",
                        engine="ray", credentials=creds(pki["ca"]))
    try:
        assert refused(srv.address, None) == grpc.StatusCode.UNAVAILABLE
        assert refused(srv.address, creds(pki["ca"])) == grpc.StatusCode.UNAUTHENTICATED
        with Client(srv.address, tls_ca=pki["ca"], token="detect-token-0123456789") as client:
            assert len(client.list_algorithms()) > 5
            with pytest.raises(grpc.RpcError) as e:
                client.start_training("m", [[0.0, 1.0], [1.0, 0.0]] * 10)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
            assert "'train'" in e.value.details()  # type: ignore[attr-defined]
        assert srv.alive()
    finally:
        srv.stop()


def test_reload_after_atomic_secret_swap(pki: dict[str, Path], tmp_path: Path) -> None:
    """A mounted Kubernetes Secret changes by swapping a symlink (..data): the server follows the link."""
    ca: CA = pki["_ca"]  # type: ignore[assignment]
    first, second = tmp_path / "v1", tmp_path / "v2"
    for d in (first, second):
        d.mkdir()
        ca.issue("server", server=True, cert_path=d / "tls.crt", key_path=d / "tls.key")
    (tmp_path / "..data").symlink_to(first)
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).symlink_to(tmp_path / "..data" / name)
    srv = ServerProcess(tmp_path / "store", "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key",
                        str(tmp_path / "tls.key"), credentials=creds(pki["ca"]))
    try:
        assert served_serial(srv.address, pki["ca"], "h2") == serial((first / "tls.crt").read_bytes())
        (tmp_path / "..data_tmp").symlink_to(second)
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        time.sleep(0.01)
        assert served_serial(srv.address, pki["ca"], "h2") == serial((second / "tls.crt").read_bytes())
    finally:
        srv.stop()
