"""Scoring from the browser: upload a file and see its flagged rows first (sortable, paged), the score histogram
with the threshold, a CSV of the whole result, and any row's explanation; or start a batch job on a server-side
file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from pynomaly.batch.plan import BatchRequest
from pynomaly.errors import InvalidArgument, PynomalyError
from pynomaly.refs import is_digits
from pynomaly.web.console import access, forms, plots
from pynomaly.web.console.pages import checked_form, console_of, page_errors, render, status_of, values_of
from pynomaly.web.console.results import Result

FIELDS = ("model", "file", "threshold", "input_uri", "output_uri")



def _models(dp: Any) -> list[dict[str, Any]]:
    return [{"name": n, "aliases": sorted(dp.store.aliases(n)), "latest": dp.store.versions(n)[-1]}
            for n in dp.store.model_names()]


async def _form(request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    dp = console_of(request).dataplane
    models = await asyncio.to_thread(_models, dp)
    files = await asyncio.to_thread(forms.data_files, dp.data_root)
    return render(request, "score.html", {
        "title": "Score a file", "models": models, "values": values, "errors": errors, "files": files,
        "batch_on": dp.batch is not None and dp.data_root is not None,
        "max_mb": console_of(request).max_body_bytes / 2**20,
    }, status)


@page_errors
async def score_form(request: Request) -> Response:
    return await _form(request, {"model": request.query_params.get("model", "")}, {})


def _threshold(raw: str) -> float | None:
    return forms.finite(raw, "threshold", "a finite number") if raw else None



@page_errors
async def score(request: Request) -> Response:
    console = console_of(request)
    form = await checked_form(request, console.max_body_bytes)
    values = values_of(form)
    try:
        model = values.get("model", "")
        if not model:
            raise InvalidArgument("model: choose a model", field="model")
        threshold = _threshold(values.get("threshold", ""))
        file = forms.upload(form)
        if file is None:
            raise InvalidArgument("file: choose a file to score (CSV, Parquet or .npz)", field="file")
        X, names, _ = await forms.read_upload(file)
        result = await console.dataplane.detect(model, X, threshold)
    except PynomalyError as e:
        where = forms.field_error(e, FIELDS)
        if where.field == "" and str(e).startswith("rows"):
            where.field = "file"  # the rows do not fit the model: about the file
        return await _form(request, values, {where.field: where.message}, status_of(e))
    card = console.dataplane.store.manifest(result.model_name, result.model_version)
    kept = console.results.add(Result(
        owner=access.session_id(request)[0], name=result.model_name, version=result.model_version,
        file_name=Path(file.filename or "").name, feature_names=list(card["feature_names"]), X=X,
        scores=np.asarray(result.scores, dtype=np.float64), flagged=np.asarray(result.is_anomaly, dtype=bool),
        threshold=float(result.threshold)))
    return RedirectResponse(f"/results/{kept.id}", 303)


@page_errors
async def batch(request: Request) -> Response:
    console = console_of(request)
    form = await checked_form(request, 64 * 1024)
    values = values_of(form)
    try:
        job = await console.dataplane.create_batch_detect_job(BatchRequest(
            model=values.get("model", ""), input_uri=values.get("input_uri", ""),
            output_uri=values.get("output_uri", ""), overwrite=values.get("overwrite") == "on",
            threshold=_threshold(values.get("threshold", ""))))
    except PynomalyError as e:
        where = forms.field_error(e, FIELDS)
        field = "batch-model" if where.field == "model" else where.field
        return await _form(request, values, {field: where.message}, status_of(e))
    return RedirectResponse(f"/jobs/batch/{job['id']}", 303)


def _result(request: Request) -> Result:
    return console_of(request).results.get(request.path_params["id"], access.session_id(request)[0])


def _int(raw: str, field: str, default: int) -> int:
    if not raw:
        return default
    if not is_digits(raw):
        raise InvalidArgument(f"{field}: must be a whole number, got {raw!r}", field=field)
    return int(raw)


@page_errors
async def result(request: Request) -> Response:
    r = _result(request)
    q = request.query_params
    key, order = q.get("sort", "score"), q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidArgument(f"order: must be asc or desc, got {order!r}", field="order")
    page = _int(q.get("page", ""), "page", 1)
    rows, pages = r.page(page, key, order == "desc")
    flagged = int(r.flagged.sum())
    shown = min(8, r.X.shape[1])
    table = [{"row": i, "score": float(r.scores[i]), "flagged": bool(r.flagged[i]), "cells": r.X[i, :shown].tolist()}
             for i in rows.tolist()]
    context = {"title": f"Scores of {r.file_name}", "r": r, "rows": table, "page": page, "pages": pages,
               "sort": key, "order": order, "flagged": flagged, "columns": r.sort_keys()}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "result-table":
        return render(request, "_result_table.html", context)
    edges, counts = r.histogram()
    context |= {"bins": list(zip(edges[:-1].tolist(), edges[1:].tolist(), counts.tolist(), strict=True)),
                "histogram_spec": plots.score_histogram(edges, counts, r.threshold, flagged)}
    return render(request, "result.html", context)


@page_errors
async def download(request: Request) -> Response:
    r = _result(request)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(r.file_name).stem) or "result"
    return StreamingResponse(r.csv(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{stem}-scores.csv"', "Cache-Control": "no-store"})


@page_errors
async def explain(request: Request) -> Response:
    r = _result(request)
    row = _int(request.path_params["row"], "row", 0)
    if row >= r.rows:
        raise InvalidArgument(f"row: must be in [0, {r.rows - 1}], got {row}", field="row")
    explanation, names, name, version = await console_of(request).dataplane.explain(f"{r.name}@{r.version}",
                                                                                  r.X[row: row + 1])
    values = r.X[row].tolist()
    contributions = explanation.contributions[0].tolist()
    score, base = float(explanation.scores[0]), float(explanation.base_values[0])
    context = {
        "title": f"Row {row} of {r.file_name}", "r": r, "row": row, "method": explanation.method, "score": score,
        "base": base, "flagged": bool(r.flagged[row]),
        "features": sorted(zip(names, values, contributions, strict=True), key=lambda f: -abs(f[2])),
        "spec": plots.contributions(names, values, contributions, score, base, explanation.method),
    }
    template = "_explain.html" if request.headers.get("hx-request") else "explain.html"
    return render(request, template, context)
