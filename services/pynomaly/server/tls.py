"""TLS for the gRPC server and the HTTP app (`--tls-cert`, `--tls-key`, `--tls-client-ca`), with certificates
reloaded when their files change: cert-manager or a Secret update rotates them under a running server, no restart.

Both front ends check the files' (mtime, size, inode) at each new TLS handshake — a few stat calls, nothing read
while they stay the same — and load the new pair only once it is complete and consistent (the key matches the
certificate; the files did not change while being read). A pair that does not load keeps the previous one serving
and is logged once; established connections keep the certificate they shook hands with.

- gRPC: `grpc.dynamic_ssl_server_credentials`, whose fetcher gRPC calls before each handshake.
- HTTP (uvicorn): one `ssl.SSLContext` whose SNI callback (OpenSSL calls it at every ClientHello, with or without a
  server name) moves the connection to a fresh context built from the new files.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

log = logging.getLogger("pynomaly.server")

Stamp = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Material:
    """One consistent set of files' contents, checked by OpenSSL, and the SSLContext (server side) built from it."""

    cert: bytes
    key: bytes
    client_ca: bytes | None
    context: ssl.SSLContext


class CertFiles:
    """The server's certificate files, reloaded when they change. Thread-safe: gRPC calls `refresh` from its own
    threads, the HTTP app from the event loop."""

    def __init__(self, cert: str | Path, key: str | Path, client_ca: str | Path | None = None):
        self.paths = (Path(cert), Path(key), *([Path(client_ca)] if client_ca else []))
        self.mutual = client_ca is not None
        self._lock = threading.Lock()
        self._tried: Stamp | None = None
        self.version = 0  # +1 at each successful load
        stamp = self._stamp()
        material = self._load(stamp)
        if isinstance(material, str):
            raise ValueError(material)
        self.material, self._tried = material, stamp

    def _stamp(self) -> Stamp:
        stats = [os.stat(p) for p in self.paths]
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)

    def _load(self, stamp: Stamp) -> Material | str:
        """The files' material, or what is wrong with them (one line)."""
        cert, key, *ca = self.paths
        try:
            data = [p.read_bytes() for p in self.paths]
            context = server_context(cert, key, ca[0] if ca else None)
            if self._stamp() != stamp:
                return "the files changed while being read"
        except ssl.SSLError as e:
            return f"--tls-cert {cert} / --tls-key {key} / --tls-client-ca: not a usable certificate, key or CA: " \
                   f"{e.reason or e}"
        except OSError as e:
            return f"cannot read the TLS files: {e}"
        return Material(data[0], data[1], data[2] if ca else None, context)

    def refresh(self) -> bool:
        """Load the files again if they changed since last tried; True when new material was loaded."""
        try:
            stamp = self._stamp()
        except OSError as e:
            with self._lock:
                if self._tried is not None:
                    log.warning("TLS files unreadable, keeping the certificate loaded before: %s", e)
                    self._tried = None
            return False
        if stamp == self._tried:
            return False
        with self._lock:
            if stamp == self._tried:
                return False
            self._tried = stamp
            material = self._load(stamp)
            if isinstance(material, str):
                log.warning("TLS files changed but cannot be loaded (keeping the certificate loaded before): %s",
                            material)
                if "changed while" in material:
                    self._tried = None  # try again at the next handshake
                return False
            self.material = material
            self.version += 1
            log.info("TLS certificate reloaded from %s", self.paths[0])
            return True

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Server credentials whose certificate (and client CA) follow the files."""
        seen = self.version

        def fetch() -> Any:  # called by gRPC before each handshake; None: keep the current configuration
            nonlocal seen
            self.refresh()
            if self.version == seen:
                return None
            seen = self.version
            return _grpc_config(self.material)

        return grpc.dynamic_ssl_server_credentials(_grpc_config(self.material), fetch,
                                                   require_client_authentication=self.mutual)

    def http_context(self) -> ssl.SSLContext:
        """The HTTP server's SSLContext: each new connection moves to the context of the files' latest material."""
        first = self.material.context

        def on_hello(connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                     context: ssl.SSLContext) -> None:
            self.refresh()
            if self.material.context is not first:
                connection.context = self.material.context

        first.sni_callback = on_hello
        return first


def server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """A TLS server context (HTTP/1.1); with `client_ca`, clients must present a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


def _grpc_config(material: Material) -> Any:
    return grpc.ssl_server_certificate_configuration([(material.key, material.cert)], material.client_ca)

