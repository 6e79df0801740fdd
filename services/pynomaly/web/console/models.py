"""The Models page (the console's first, `/`) and each model's card: versions, aliases, the export check, and the
training-score distribution beside the served one (the drift a person can see)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pynomaly.errors import InvalidArgument
from pynomaly.refs import is_digits
from pynomaly.web.console import plots
from pynomaly.web.console.forms import text
from pynomaly.web.console.pages import checked_form, console_of, page_errors, render

FORM_LIMIT = 64 * 1024


def _dp(request: Request) -> Any:
    return console_of(request).dataplane


def _version(raw: str, field: str = "version") -> int:
    if not is_digits(raw) or int(raw) < 1:
        raise InvalidArgument(f"{field}: must be a version number ≥ 1, got {raw!r}", field=field)
    return int(raw)


def _summaries(dp: Any, query: str) -> list[dict[str, Any]]:
    """Every model (its latest version's card), with its versions and aliases; those matching `query` (in the
    name, algorithm or description, any case)."""
    rows = []
    for card in dp.list_models():
        name = card["name"]
        rows.append(card | {"versions": dp.store.versions(name), "all_aliases": sorted(dp.store.aliases(name).items())})
    q = query.lower()
    return [r for r in rows if not q or q in r["name"].lower() or q in r["algorithm"].lower()
            or q in (r.get("description") or "").lower()]


@page_errors
async def models(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    rows = await asyncio.to_thread(_summaries, _dp(request), query)
    template = "_models_table.html" if request.headers.get("hx-request") else "models.html"
    return render(request, template, {"title": "Models", "models": rows, "q": query})


@page_errors
async def model_card(request: Request) -> Response:
    return await _card(request, request.path_params["name"], {})


async def _card(request: Request, name: str, errors: dict[str, str], status: int = 200,
                form: dict[str, str] | None = None) -> Response:
    dp = _dp(request)
    cards = await asyncio.to_thread(dp.list_model_versions, name)  # NotFound for an unknown model
    raw = request.query_params.get("version", "")
    version = _version(raw) if raw else cards[0]["version"]
    card = next((c for c in cards if c["version"] == version), None)
    if card is None:
        raise InvalidArgument(f"version: model {name!r} has no version {version}; its versions: "
                              f"{', '.join(str(c['version']) for c in reversed(cards))}", field="version")
    served = await asyncio.to_thread(dp.metrics.served, name, version)  # under --workers: every process's
    buckets = plots.drift_buckets(card, served)
    aliases = await asyncio.to_thread(dp.store.aliases, name)
    return render(request, "model.html", {
        "title": f"Model {name}", "name": name, "card": card, "cards": cards, "aliases": sorted(aliases.items()),
        "served": served, "buckets": buckets,
        "drift_spec": plots.drift(buckets, float(card["threshold"])) if buckets else None,
        "errors": errors, "form": form or {},
    }, status)


@page_errors
async def set_alias(request: Request) -> Response:
    name = request.path_params["name"]
    form = await checked_form(request, FORM_LIMIT)
    alias, raw = text(form, "alias"), text(form, "version")
    try:
        version = _version(raw)
        await asyncio.to_thread(_dp(request).set_model_alias, name, alias, version)
    except InvalidArgument as e:
        field = e.field if e.field in ("alias", "version") else "alias"
        return await _card(request, name, {field: str(e)}, 400, {"alias": alias, "version": raw})
    return RedirectResponse(f"/models/{name}?version={version}", 303)


@page_errors
async def delete_alias(request: Request) -> Response:
    name, alias = request.path_params["name"], request.path_params["alias"]
    await checked_form(request, FORM_LIMIT)
    await asyncio.to_thread(_dp(request).delete_model_alias, name, alias)
    return RedirectResponse(f"/models/{name}", 303)


@page_errors
async def confirm_delete(request: Request) -> Response:
    name, version = request.path_params["name"], _version(request.path_params["version"])
    card = await asyncio.to_thread(_dp(request).get_model_version, f"{name}@{version}")
    return render(request, "delete.html", {"title": f"Delete {name} version {version}", "name": name,
                                           "version": version, "card": card})


@page_errors
async def delete_version(request: Request) -> Response:
    name, version = request.path_params["name"], _version(request.path_params["version"])
    await checked_form(request, FORM_LIMIT)
    dp = _dp(request)
    await asyncio.to_thread(dp.delete_model_version, f"{name}@{version}")
    left = await asyncio.to_thread(dp.store.versions, name)
    return RedirectResponse(f"/models/{name}" if left else "/", 303)
