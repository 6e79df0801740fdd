"""Bearer tokens and scopes (`pynomaly serve --auth-tokens FILE`): the one table of what each RPC needs, and the token
file, reloaded when it changes. The gRPC interceptor (server/auth.py) and the HTTP middleware (web/auth.py) both
ask `Tokens.authorize`, so the two front ends refuse the same calls with the same messages.

The file holds one `TOKEN SCOPE[,SCOPE...]` a line; `#` starts a comment, blank lines are skipped. Tokens are kept
only as SHA-256 digests and looked up by digest: the time a lookup takes depends on the digest of what the client
sent, not on how much of a real token it guessed (the effect hmac.compare_digest gives one comparison).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

from pynomaly.errors import PermissionDenied, Unauthenticated

log = logging.getLogger("pynomaly.server")

SCOPES = ("detect", "explain", "train", "admin")
OPEN = "open"  # no token needed: health checks, liveness
ANY = "any"  # any valid token, whatever its scopes: reading what exists (models, algorithms, metadata)
REFLECTION = "reflection"  # OPEN, or ANY with --auth-reflection=token
MIN_TOKEN_LENGTH = 16

_TRAIN, _MODEL, _DETECT = "/pynomaly.v1.TrainService/", "/pynomaly.v1.ModelService/", "/pynomaly.v1.DetectService/"
_OIP = "/inference.GRPCInferenceService/"

# What each RPC needs: the one table, for every service both engines serve (a test checks it names them all).
# The HTTP routes are the Open Inference Protocol's, and map onto its gRPC methods here (web/auth.py).
METHOD_SCOPES: dict[str, str] = {
    _TRAIN + "CreateTrainingJob": "train",
    _TRAIN + "GetTrainingJob": "train",
    _TRAIN + "ListTrainingJobs": "train",
    _TRAIN + "CancelTrainingJob": "train",
    _TRAIN + "WatchTrainingJob": "train",
    _TRAIN + "ListAlgorithms": ANY,
    _MODEL + "ListModels": ANY,
    _MODEL + "ListModelVersions": ANY,
    _MODEL + "GetModelVersion": ANY,
    _MODEL + "DeleteModelVersion": "admin",
    _MODEL + "SetModelAlias": "admin",
    _MODEL + "DeleteModelAlias": "admin",
    _MODEL + "ImportModel": "admin",
    _MODEL + "DownloadModel": "admin",  # the graph itself leaves the platform
    _DETECT + "Detect": "detect",
    _DETECT + "DetectStream": "detect",
    _DETECT + "CreateBatchDetectJob": "detect",
    _DETECT + "GetBatchDetectJob": "detect",
    _DETECT + "ListBatchDetectJobs": "detect",
    _DETECT + "CancelBatchDetectJob": "detect",
    _DETECT + "WatchBatchDetectJob": "detect",
    "/pynomaly.v1.ExplainService/Explain": "explain",
    _OIP + "ServerLive": OPEN,
    _OIP + "ServerReady": OPEN,
    _OIP + "ModelReady": ANY,
    _OIP + "ServerMetadata": ANY,
    _OIP + "ModelMetadata": ANY,
    _OIP + "ModelInfer": "detect",
    "/grpc.health.v1.Health/Check": OPEN,
    "/grpc.health.v1.Health/Watch": OPEN,
    "/grpc.health.v1.Health/List": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": REFLECTION,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": REFLECTION,
}


def required(method: str, reflection_open: bool = True) -> str | None:
    """The scope `method` needs (or OPEN, ANY); None for a method the table does not know (refused: fail closed)."""
    need = METHOD_SCOPES.get(method)
    if need == REFLECTION:
        return OPEN if reflection_open else ANY
    return need


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse(text: str, path: str) -> dict[bytes, frozenset[str]]:
    """Token digests and their scopes; ValueError naming the file and line of the first problem."""
    tokens: dict[bytes, frozenset[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"--auth-tokens {path}, line {number}"
        if len(fields) != 2:
            raise ValueError(f"{where}: expected TOKEN SCOPE[,SCOPE...] (scopes: {', '.join(SCOPES)})")
        token, scopes = fields[0], fields[1].split(",")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{where}: a token must have at least {MIN_TOKEN_LENGTH} characters "
                             "(e.g. `openssl rand -hex 32`)")
        if unknown := [s for s in scopes if s not in SCOPES]:
            raise ValueError(f"{where}: unknown scope {unknown[0]!r} (scopes: {', '.join(SCOPES)})")
        if _digest(token) in tokens:
            raise ValueError(f"{where}: duplicate token (each token appears once, with all its scopes)")
        tokens[_digest(token)] = frozenset(scopes)
    if not tokens:
        raise ValueError(f"--auth-tokens {path}: no tokens (one `TOKEN SCOPE[,SCOPE...]` a line)")
    return tokens


class Tokens:
    """The token file, read again when it changes (checked at most every `check_seconds`). A changed file that does
    not parse is logged and the tokens read before stay in force; a file that cannot be read at start-up is an
    error (ValueError, one line)."""

    def __init__(self, path: str | Path, reflection_open: bool = True, check_seconds: float = 1.0):
        self.path = Path(path)
        self.reflection_open = reflection_open
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        try:
            self._stamp = self._stat()
            self._tokens = parse(self.path.read_text(), str(path))
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--auth-tokens {path}: cannot read the token file: "
                             f"{getattr(e, 'strerror', None) or e}") from None
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int, int]:
        s = os.stat(self.path)  # follows symlinks: a mounted Secret's update swaps a link
        return s.st_mtime_ns, s.st_size, s.st_ino

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._check_seconds:
            return
        with self._lock:
            self._checked = now
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return
                self._stamp = stamp
                self._tokens = parse(self.path.read_text(), str(self.path))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                log.error("token file changed but cannot be used (the tokens read before stay in force): %s", e)
                return
            log.info("token file %s reloaded (%d tokens)", self.path, len(self._tokens))

    def authorize(self, method: str, authorization: str | None) -> None:
        """Raise Unauthenticated / PermissionDenied unless the `authorization` header value ("Bearer TOKEN") lets
        the caller call `method` (a gRPC method path, "/package.Service/Method")."""
        need = required(method, self.reflection_open)
        if need == OPEN:
            return
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token: send the header 'authorization: Bearer TOKEN'")
        self._refresh()
        scopes = self._tokens.get(_digest(token.strip()))
        if scopes is None:
            raise Unauthenticated("invalid token")
        if need is None:
            raise PermissionDenied(f"{method} has no scope in the server's table, so no token may call it")
        if need != ANY and need not in scopes:
            raise PermissionDenied(f"the token lacks the scope {need!r} that {method} needs")
