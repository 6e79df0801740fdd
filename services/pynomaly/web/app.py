"""The ASGI app: every route the HTTP face serves, and Starlette's own refusals in the API's error body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from pynomaly.oip.inference import Inference
from pynomaly.web.oip import OipRoutes
from pynomaly.web.status import http_exception


def build_app(inference: Inference, max_body_bytes: int) -> Starlette:
    """The app over the protocol's operations; request bodies over `max_body_bytes` are refused (413)."""
    return Starlette(routes=OipRoutes(inference, max_body_bytes).routes(),
                     exception_handlers={HTTPException: http_exception})
