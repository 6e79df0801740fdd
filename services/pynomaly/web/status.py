"""Domain errors become HTTP statuses here, and only here: the HTTP face of the one error table (server/status.py
is the gRPC face). Error bodies are the Open Inference Protocol's error object, {"error": "..."}, plus the error's
stable reason (pynomaly.errors.REASONS) as "reason", the one ErrorInfo field gRPC clients read too; an internal
error carries an id that is in the server log, never a traceback."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pynomaly import errors

log = logging.getLogger("pynomaly.web")


class UnsupportedMediaType(errors.InvalidArgument):
    """A body in a media type or content coding the route does not read (HTTP only: gRPC has one encoding)."""


# google.rpc's mapping of the gRPC codes onto HTTP, plus 413 for a body over the limit and 415 for its media type.
STATUSES: dict[type[errors.PynomalyError], int] = {
    UnsupportedMediaType: 415,
    errors.InvalidArgument: 400,
    errors.FailedPrecondition: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.PayloadTooLarge: 413,
    errors.ResourceExhausted: 429,
    errors.Unavailable: 503,
    errors.DeadlineExceeded: 504,
}


def to_status(e: Exception, route: str) -> tuple[int, str]:
    for cls in type(e).__mro__:
        if cls in STATUSES:
            return STATUSES[cls], str(e)
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error in %s (error id %s)", route, error_id, exc_info=e)
    return 500, f"internal error (error id {error_id}; see the server log)"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   reason: str | None = None) -> Response:
    return json_response({"error": message, "reason": reason} if reason else {"error": message}, status, headers)


Endpoint = Callable[..., Awaitable[Response]]


def http_errors(endpoint: Endpoint) -> Endpoint:
    """Wrap a route's endpoint so that every exception becomes an error response from the table."""
    name = endpoint.__qualname__

    @functools.wraps(endpoint)
    async def wrapped(*args: Any) -> Response:
        try:
            return await endpoint(*args)
        except Exception as e:
            status, message = to_status(e, name)
            return error_response(status, message, reason=e.reason if isinstance(e, errors.PynomalyError) else None)

    return wrapped


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) in the same error body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route {request.url.path}; the API is under /v2 (the Open Inference Protocol)"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        message = exc.detail
    return error_response(exc.status_code, message, dict(exc.headers or {}))
