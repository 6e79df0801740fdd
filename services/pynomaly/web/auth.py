"""The HTTP face of token auth: `Authorization: Bearer TOKEN`, checked against the same tokens and the same scope
table as gRPC (pynomaly.auth) by mapping each route onto its Open Inference Protocol gRPC method. 401 (with
WWW-Authenticate) without a valid token, 403 for a missing scope; the health routes stay open for probes."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly.auth import Tokens
from pynomaly.errors import PermissionDenied, PynomalyError
from pynomaly.web.status import error_response, to_status

_OIP = "/inference.GRPCInferenceService/"


def method_of(http_method: str, path: str) -> str:
    """The gRPC method whose scope an HTTP route needs."""
    path = path.rstrip("/")
    if path == "/v2/health/live":
        return _OIP + "ServerLive"
    if path == "/v2/health/ready":
        return _OIP + "ServerReady"
    if path.startswith("/v2/models/"):
        if http_method == "POST" and path.endswith("/infer"):
            return _OIP + "ModelInfer"
        return _OIP + ("ModelReady" if path.endswith("/ready") else "ModelMetadata")
    return _OIP + "ServerMetadata"  # /v2, and any other path: a valid token, then the route's own answer (404)


def _api(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class TokenAuth:
    """ASGI middleware in front of every route (with `console`: of the API's, /v2)."""

    def __init__(self, app: ASGIApp, tokens: Tokens, console: bool = False):
        self.app = app
        self.tokens = tokens
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.console and not _api(scope["path"])):
            await self.app(scope, receive, send)  # the console's routes: its own middleware (console/access.py)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        method = method_of(scope["method"], scope["path"])
        try:
            self.tokens.authorize(method, header)
        except PynomalyError as e:
            status, message = to_status(e, scope["path"])
            if isinstance(e, PermissionDenied):
                challenge = 'Bearer realm="pynomaly", error="insufficient_scope"'
            elif header is None:
                challenge = 'Bearer realm="pynomaly"'
            else:
                challenge = 'Bearer realm="pynomaly", error="invalid_token"'
            await error_response(status, message, {"WWW-Authenticate": challenge})(scope, receive, send)
            return
        await self.app(scope, receive, send)
