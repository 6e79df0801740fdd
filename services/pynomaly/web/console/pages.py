"""What every console page shares: the templates (Jinja2, autoescaped: no user string is ever rendered unescaped),
the browser session and its CSRF token, security headers, error pages, and sign-in."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from pynomaly.auth import Tokens
from pynomaly.errors import PynomalyError
from pynomaly.web.console import access
from pynomaly.web.console.forms import read_form, text
from pynomaly.web.status import to_status

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["assets_built"] = lambda: (STATIC / "console.css").is_file()
templates.env.filters["datetime"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(t)))

# Vega compiles its expressions with Function(): 'unsafe-eval' is for it; no inline script runs anywhere.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}
NAV = (("/", "Models"), ("/train", "Train"), ("/score", "Score"), ("/jobs", "Jobs"))


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page (or an htmx fragment) with this browser session's CSRF token; sets the session cookie if new."""
    sid, new = access.session_id(request)
    tokens: Tokens | None = getattr(request.app.state, "tokens", None)
    response = templates.TemplateResponse(request, template, {
        "csrf": access.csrf_token(sid), "nav": NAV, "auth_on": tokens is not None,
        "signed_in": access.TOKEN_COOKIE in request.cookies, "path": request.url.path, **context,
    }, status_code=status, headers=HEADERS)
    if new:
        access.set_cookie(response, request, access.SESSION_COOKIE, sid)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    if request.headers.get("hx-request"):
        return render(request, "_error.html", {"status": status, "message": message}, status)
    return render(request, "error.html", {"status": status, "message": message, "title": f"Error {status}"}, status)


Endpoint = Callable[[Request], Awaitable[Response]]


def page_errors(endpoint: Endpoint) -> Endpoint:
    """API errors a page did not place next to a field become an error page with the API's status and message."""
    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as e:
            status, message = to_status(e, endpoint.__qualname__)
            return error_page(request, status, message)

    return wrapped


async def checked_form(request: Request, limit: int) -> Any:
    """A POSTed form whose CSRF token is this session's."""
    form = await read_form(request, limit)
    access.check_csrf(request, text(form, access.CSRF_FIELD))
    return form


def values_of(form: Any) -> dict[str, str]:
    """A form's text fields as typed (trimmed), to show again with its errors; not the CSRF token."""
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != access.CSRF_FIELD}


def console_of(request: Request) -> Any:
    """What the console's routes share (pynomaly.web.console.Console)."""
    return request.app.state.console


def status_of(e: PynomalyError) -> int:
    """The HTTP status of a refused form: the API's (web/status.py)."""
    return to_status(e, "console")[0]


def local_target(target: str) -> str:
    """Where to go after sign-in: a path on this site only (never another host)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@page_errors
async def login(request: Request) -> Response:
    target = local_target(request.query_params.get("next", "/"))
    tokens: Tokens | None = getattr(request.app.state, "tokens", None)
    if tokens is None:
        return RedirectResponse(target, 303)
    if request.method == "GET":
        return render(request, "login.html", {"title": "Sign in", "next": target, "errors": {}})
    form = await checked_form(request, 64 * 1024)
    token = text(form, "token")
    try:
        # Any valid token may open the console; each page then asks for its own scope.
        tokens.authorize(access.method_of("GET", "/") or "", f"Bearer {token}" if token else None)
    except PynomalyError as e:
        message = "enter a token" if not token else str(e)
        return render(request, "login.html", {"title": "Sign in", "next": target, "errors": {"token": message}},
                      401)
    response = RedirectResponse(target, 303)
    access.set_cookie(response, request, access.TOKEN_COOKIE, token)
    return response


@page_errors
async def logout(request: Request) -> Response:
    await checked_form(request, 64 * 1024)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(access.TOKEN_COOKIE, path="/")
    return response
