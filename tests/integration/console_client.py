"""A browser's HTTP side without a browser: a cookie-keeping session on the console that reads each page's CSRF
token and posts forms and files as a browser does (multipart). The browser suite (tests/browser) drives the pages
themselves; these tests check statuses, messages and effects exactly."""

from __future__ import annotations

import html
import io
import re
from typing import Any

import requests

CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')  # every page's hx-headers carry it


class Console:
    def __init__(self, http_address: str):
        self.base = f"http://{http_address}"
        self.session = requests.Session()
        self.session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"  # as a browser asks for pages
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.get(self.base + path, allow_redirects=False, timeout=60, **kwargs)
        if m := CSRF.search(response.text):
            self.csrf = m.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, files: dict[str, tuple[str, bytes]] | None = None,
             csrf: str | None = None, **kwargs: Any) -> requests.Response:
        if not self.csrf and csrf is None:
            self.get("/")  # a page first: the session cookie and its token
        fields = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        # multipart whenever a file goes, as a browser's enctype="multipart/form-data" form sends it
        parts = {k: (name, io.BytesIO(content)) for k, (name, content) in (files or {}).items()}
        return self.session.post(self.base + path, data=fields, files=parts or None, allow_redirects=False,
                                 timeout=120, **kwargs)


def field_error(page: str, field: str) -> str | None:
    """The message the page shows next to `field` (GOV.UK's pattern: <p id="FIELD-error">), unescaped."""
    tag = f'<p id="{re.escape(field)}-error" class="field-error"><span class="sr-only">Error: </span>'
    m = re.search(tag + "(.*?)</p>", page, re.S)
    return html.unescape(m.group(1)) if m else None


def error_message(page: str) -> str | None:
    """An error page's message (_error.html)."""
    m = re.search(r'<span class="font-bold">Error (\d+):</span> (.*?)</p>', page, re.S)
    return html.unescape(m.group(2)) if m else None


def csv_bytes(X: Any, names: list[str]) -> bytes:
    lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in X]
    return ("\n".join(lines) + "\n").encode()
