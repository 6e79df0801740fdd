"""uvicorn serving the ASGI app as a task of the running event loop (grpc.aio's), on a socket bound here: port 0
works and the bound port is known before anything starts, and a busy port fails start-up with the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn

from pynomaly.refs import is_digits

# Its INFO lines ("Started server process", "Finished server process") describe a process of its own: this is not.
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would take SIGINT/SIGTERM over while it runs and raise them again when it stops. They belong to
        # `pynomaly serve` (or Ray), which stops this server itself: HttpServer.stop.
        yield


def bind(listen: str) -> socket.socket:
    """A listening TCP socket on host:port ("[::1]:8000" for IPv6)."""
    host, _, port = listen.rpartition(":")
    if not host or not is_digits(port) or int(port) > 65535:
        raise OSError(f"cannot listen on {listen!r} (HTTP): expected host:port")
    host = host.strip("[]")
    # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto says TCP, and
    # with Nagle on, a response's body waits behind its headers for the client's delayed ACK: 40 ms a call.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {listen} (HTTP): {e}") from None
    return sock


class HttpServer:
    def __init__(self, app: Any, sock: socket.socket, host: str, ssl_context: ssl.SSLContext | None = None):
        # ssl_context: HTTPS with this context (server/tls.py's, which follows the certificate files).
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, proxy_headers=False,
                                server_header=False, http="httptools",
                                ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context else None)
        self._server = _Uvicorn(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None
        self.port: int = sock.getsockname()[1]
        self.address = f"{host}:{self.port}"  # as the listen address named the host, with the bound port
        self.scheme = "https" if ssl_context else "http"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="pynomaly-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # its exception, if it has one
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop taking connections, let requests under way finish for `grace` seconds, then close."""
        if self._task is None:
            self._sock.close()
            return
        self._server.config.timeout_graceful_shutdown = int(grace) if grace is not None else None
        self._server.should_exit = True
        await self._task
