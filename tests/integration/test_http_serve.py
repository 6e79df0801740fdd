"""`pynomaly serve --http-listen`: the HTTP app lives in the gRPC server's process and event loop, stops with it on
SIGINT/SIGTERM (uvicorn must not take those signals over), and a bad or busy address fails start-up clearly."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys

import pytest

from conftest import ServerProcess


def _get(address: str, path: str) -> int:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_one_signal_stops_both_servers_cleanly(tmp_path, sig):
    srv = ServerProcess(tmp_path / "store", "--http-listen", "127.0.0.1:0")
    assert srv.http_address and _get(srv.http_address, "/v2/health/ready") == 200
    host, port = srv.http_address.split(":")
    idle = http.client.HTTPConnection(host, int(port), timeout=10)  # a keep-alive connection left open
    idle.request("GET", "/v2/health/live")
    assert idle.getresponse().read() == b'{"live":true}'
    srv.channel.close()
    srv.proc.send_signal(sig)
    out, _ = srv.proc.communicate(timeout=30)
    idle.close()
    assert srv.proc.returncode == 0, out
    assert "Traceback" not in out
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()


@pytest.mark.parametrize("listen, message", [
    ("nohostport", "error: cannot listen on 'nohostport' (HTTP): expected host:port"),
    ("{busy}", "error: cannot listen on {busy} (HTTP): [Errno 98] Address already in use"),
])
def test_a_bad_or_busy_http_address_fails_start_up(tmp_path, listen, message):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path),
             "--http-listen", listen.format(busy=address), "--log-level", "warning"],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert message.format(busy=address) in done.stderr
