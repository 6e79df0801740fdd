"""The ASGI app: every route the HTTP face serves, and Starlette's own refusals in the API's error body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from pynomaly.auth import Tokens
from pynomaly.oip.inference import Inference
from pynomaly.web.auth import TokenAuth
from pynomaly.web.oip import OipRoutes
from pynomaly.web.status import http_exception


def build_app(inference: Inference, max_body_bytes: int, tokens: Tokens | None = None) -> Starlette:
    """The app over the protocol's operations; request bodies over `max_body_bytes` are refused (413); with
    `tokens`, every route but health needs a bearer token (web/auth.py)."""
    return Starlette(routes=OipRoutes(inference, max_body_bytes).routes(),
                     exception_handlers={HTTPException: http_exception},
                     middleware=[Middleware(TokenAuth, tokens=tokens)] if tokens is not None else None)
