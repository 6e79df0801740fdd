"""Who may do what in the console: the server's bearer tokens and scopes (pynomaly.auth), carried by a cookie, and
CSRF protection on every form.

Each console route maps onto the gRPC method whose scope it needs (`method_of`), so the console refuses what the
API refuses, with the API's messages. A browser cannot send `Authorization: Bearer` on a page load: /login takes
the token once and keeps it in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); the token file is read on
every request, so revoking a token there ends its console session too. A request with an Authorization header uses
that instead.

CSRF: every form carries a token derived from the browser's session cookie (HMAC over a secret of the process, or of
PYNOMALY_CONSOLE_SECRET where several processes serve one console); htmx sends it as X-CSRF-Token. Cookies are
SameSite=Strict besides.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly.auth import Tokens
from pynomaly.errors import PermissionDenied, PynomalyError, Unauthenticated

TOKEN_COOKIE = "pynomaly_token"
SESSION_COOKIE = "pynomaly_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

_TRAIN, _MODEL, _DETECT = "/pynomaly.v1.TrainService/", "/pynomaly.v1.ModelService/", "/pynomaly.v1.DetectService/"
_EXPLAIN = "/pynomaly.v1.ExplainService/Explain"
OPEN_PATHS = ("/login", "/logout", "/favicon.ico")


def method_of(http_method: str, path: str) -> str | None:
    """The gRPC method whose scope a console route needs; None for the open ones (sign-in, assets)."""
    if path in OPEN_PATHS or path.startswith("/static/"):
        return None
    post = http_method == "POST"
    if path.startswith("/models/"):
        if post and "/versions/" in path:
            return _MODEL + "DeleteModelVersion"
        if post and path.endswith("/delete"):
            return _MODEL + "DeleteModelAlias"
        if post:
            return _MODEL + "SetModelAlias"
        return _MODEL + "ListModelVersions"
    if path.startswith("/train"):
        return _TRAIN + ("CreateTrainingJob" if post else "ListAlgorithms")
    if path.startswith("/jobs"):
        if post and path.startswith("/jobs/batch/"):
            return _DETECT + "CancelBatchDetectJob"
        if path.startswith("/jobs/batch/"):
            return _DETECT + "GetBatchDetectJob"
        return _TRAIN + ("CancelTrainingJob" if post else "ListTrainingJobs")
    if path.startswith("/score/batch"):
        return _DETECT + "CreateBatchDetectJob" if post else _MODEL + "ListModels"
    if path.startswith("/score"):
        return _DETECT + "Detect" if post else _MODEL + "ListModels"
    if path.startswith("/results/"):
        return _EXPLAIN if "/explain" in path else _DETECT + "Detect"
    return _MODEL + "ListModels"  # "/", and any other path: a valid token, then the route's own answer (404)


def bearer(request: Request | Scope) -> str | None:
    """The Authorization header's value, or the console's token cookie as one."""
    headers = request.headers if isinstance(request, Request) else Request(request).headers
    header = headers.get("authorization")
    if header is not None:
        return header
    token = (request.cookies if isinstance(request, Request) else Request(request).cookies).get(TOKEN_COOKIE)
    return f"Bearer {token}" if token else None


def allowed(request: Request, method: str) -> bool:
    """May this request's caller call `method`? (What a page shows of what the token may not do: nothing.)"""
    tokens: Tokens | None = request.app.state.tokens if hasattr(request.app.state, "tokens") else None
    if tokens is None:
        return True
    try:
        tokens.authorize(method, bearer(request))
    except PynomalyError:
        return False
    return True


class ConsoleAuth:
    """ASGI middleware in front of the console's routes (everything but /v2, which web/auth.py guards). Without a
    valid token a page load goes to /login (htmx: HX-Redirect); a missing scope is a 403 page naming it."""

    def __init__(self, app: ASGIApp, tokens: Tokens, forbidden: Callable[[Request, int, str], Response]):
        self.app = app
        self.tokens = tokens
        self.forbidden = forbidden  # the console's error page (pages.error_page)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/v2" or scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        method = method_of(scope["method"], scope["path"])
        if method is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            self.tokens.authorize(method, bearer(request))
        except Unauthenticated as e:
            await _sign_in(request, str(e))(scope, receive, send)
            return
        except PermissionDenied as e:
            await self.forbidden(request, 403, str(e))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _sign_in(request: Request, message: str) -> Response:
    target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), "")
    if request.headers.get("hx-request"):
        return Response(message, 401, {"HX-Redirect": target})
    return RedirectResponse(target, 303)


# --- CSRF ---


def _secret() -> bytes:
    configured = os.environ.get("PYNOMALY_CONSOLE_SECRET", "")
    return configured.encode() if configured else secrets.token_bytes(32)


_SECRET = _secret()


def session_id(request: Request) -> tuple[str, bool]:
    """The browser's session id (its cookie), and whether it is new (the response must set the cookie)."""
    sid = request.cookies.get(SESSION_COOKIE, "")
    if len(sid) == 32 and all(c in "0123456789abcdef" for c in sid):
        return sid, False
    return secrets.token_hex(16), True


def csrf_token(sid: str) -> str:
    return hmac.new(_SECRET, sid.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str | None) -> None:
    """PermissionDenied unless the form's (or X-CSRF-Token's) token is this browser session's."""
    sid = request.cookies.get(SESSION_COOKIE, "")
    token = request.headers.get(CSRF_HEADER) or submitted or ""
    if not sid or not hmac.compare_digest(token, csrf_token(sid)):
        raise PermissionDenied("the form's CSRF token is missing or out of date: reload the page and submit again")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
