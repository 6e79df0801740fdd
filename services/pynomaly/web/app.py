"""The ASGI app: every route the HTTP face serves, and Starlette's own refusals in the API's error body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from pynomaly.auth import Tokens
from pynomaly.oip.inference import Inference
from pynomaly.web.auth import TokenAuth
from pynomaly.web.oip import OipRoutes
from pynomaly.web.status import http_exception


def build_app(inference: Inference, max_body_bytes: int, tokens: Tokens | None = None,
              console: bool = True) -> Starlette:
    """The app over the protocol's operations (/v2) and, with `console`, the web console (everything else); request
    bodies over `max_body_bytes` are refused (413); with `tokens`, every route but health, sign-in and the
    console's assets needs a bearer token (web/auth.py; the console's pages take it from a cookie)."""
    routes: list[BaseRoute] = [*OipRoutes(inference, max_body_bytes).routes()]
    middleware = [Middleware(TokenAuth, tokens=tokens, console=console)] if tokens is not None else []
    handler = http_exception
    if console:
        from pynomaly.web.console import Console
        from pynomaly.web.console import routes as console_routes
        from pynomaly.web.console.access import ConsoleAuth
        from pynomaly.web.console.pages import error_page

        routes += console_routes()
        if tokens is not None:
            middleware.append(Middleware(ConsoleAuth, tokens=tokens, forbidden=error_page))
        handler = _console_or_api
    app = Starlette(routes=routes, exception_handlers={HTTPException: handler}, middleware=middleware or None)
    app.state.tokens = tokens
    if console:
        app.state.console = Console(inference.dp, max_body_bytes)
    return app


async def _console_or_api(request: Request, exc: Exception) -> Response:
    """A refusal in the API's JSON error body, unless a browser asked for a page outside /v2: the console's page."""
    path = request.url.path
    if path == "/v2" or path.startswith("/v2/") or "text/html" not in request.headers.get("accept", ""):
        return await http_exception(request, exc)
    from pynomaly.web.console.pages import error_page

    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no page {path}: the console's pages are Models (/), Train, Score and Jobs; the API is under /v2"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {path}"
    else:
        message = str(exc.detail)
    return error_page(request, exc.status_code, message)
