"""Training from the browser (a form generated from the algorithm registry, checked by the same data plane call
as CreateTrainingJob, so its messages are the API's) and the Jobs pages: live progress and cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument, PynomalyError
from pynomaly.jobs import TERMINAL
from pynomaly.training import EXPORT, FIT, VERIFY
from pynomaly.web.console import access, forms
from pynomaly.web.console.pages import checked_form, console_of, page_errors, render, status_of, values_of

DEFAULT_ALGORITHM = "iforest"
FIELDS = ("name", "algorithm", "contamination", "description", "file", "data_uri", "label_column",
          "threshold_method")
STAGES = ((FIT, "fit the detector"), (EXPORT, "export to ONNX"), (VERIFY, "check the ONNX scores against the "
                                                                          "library's"))



def _choices() -> list[dict[str, Any]]:
    return [{"name": a.name, "serving": a.serving, "implementation": a.implementation}
            for a in algorithms.ALGORITHMS.values() if a.exportable]


def _algorithm(name: str) -> algorithms.Algorithm:
    try:
        return algorithms.get(name or DEFAULT_ALGORITHM)
    except PynomalyError as e:
        raise InvalidArgument(str(e), field="algorithm") from None


def _params(algo: algorithms.Algorithm, values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": p.type, "help": p.description, "default": forms.shown(p.default),
             "value": values.get(f"param.{p.name}", forms.shown(p.default))} for p in algo.params]


async def _form(request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    try:
        algo = _algorithm(values.get("algorithm", ""))
    except InvalidArgument as e:
        errors = {"algorithm": str(e), **errors}
        algo = algorithms.get(DEFAULT_ALGORITHM)
    files = await asyncio.to_thread(forms.data_files, console_of(request).dataplane.data_root)
    return render(request, "train.html", {
        "title": "Train a model", "algorithms": _choices(), "algo": algo, "params": _params(algo, values),
        "values": values, "errors": errors, "files": files, "has_root": console_of(request).dataplane.data_root
        is not None, "max_mb": console_of(request).max_body_bytes / 2**20,
    }, status)


@page_errors
async def train_form(request: Request) -> Response:
    return await _form(request, {"algorithm": request.query_params.get("algorithm", DEFAULT_ALGORITHM)}, {})


@page_errors
async def params_fragment(request: Request) -> Response:
    algo = _algorithm(request.query_params.get("algorithm", ""))
    return render(request, "_params.html", {"algo": algo, "params": _params(algo, {}), "errors": {}})


def _contamination(raw: str) -> float:
    # empty: 0, the server's default
    return forms.finite(raw, "contamination", "a number in (0, 0.5]") if raw else 0.0


@page_errors
async def train(request: Request) -> Response:
    console = console_of(request)
    form = await checked_form(request, console.max_body_bytes)
    values = values_of(form)
    try:
        algo = _algorithm(values.get("algorithm", ""))
        contamination = _contamination(values.get("contamination", ""))
        params = forms.given_params(form, algo)
        file, data_uri = forms.upload(form), values.get("data_uri", "")
        if file is not None and data_uri:
            raise InvalidArgument("file: upload a file or pick one on the server, not both", field="file")
        if file is None and not data_uri:
            raise InvalidArgument("file: choose a file to upload (CSV, Parquet or .npz), or pick one on the server",
                                  field="file")
        X = y = None
        names: list[str] = []
        label_column = values.get("label_column", "")
        if algo.needs_labels and not label_column:
            raise InvalidArgument(f"label_column: algorithm {algo.name!r} learns from labels: name the file's column "
                                  "of 0/1 labels (1 = anomaly)", reason="LABELS_REQUIRED", field="label_column")
        if file is not None:
            X, names, y = await forms.read_upload(file, label_column)
        job = console.dataplane.create_training_job(
            values.get("name", ""), algo.name, params, contamination, X, "" if X is not None else data_uri, names,
            description=values.get("description", ""), label_column="" if X is not None else label_column,
            labels=y, threshold_method=values.get("threshold_method", ""))
    except PynomalyError as e:
        where = forms.field_error(e, FIELDS)
        return await _form(request, values, {where.field: where.message}, status_of(e))
    return RedirectResponse(f"/jobs/{job['id']}", 303)



# --- jobs ---


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    start = job.get("start_time") or job.get("create_time") or now
    end = job.get("end_time") or now
    return job | {"terminal": job["state"] in TERMINAL, "elapsed": max(0.0, end - start)}


@page_errors
async def jobs(request: Request) -> Response:
    dp = console_of(request).dataplane
    training = [_job_view(j) for j in dp.list_training_jobs("", 100)]
    batch = None
    if dp.batch is not None and access.allowed(request, "/pynomaly.v1.DetectService/ListBatchDetectJobs"):
        batch = [_job_view(j) for j in dp.list_batch_detect_jobs("", 100)]
    return render(request, "jobs.html", {"title": "Jobs", "training": training, "batch": batch})


@page_errors
async def job(request: Request) -> Response:
    view = _job_view(console_of(request).dataplane.get_training_job(request.path_params["id"]))
    template = "_job_status.html" if request.headers.get("hx-request") else "job.html"
    return render(request, template, {"title": f"Training job {view['id']}", "job": view, "stages": STAGES})


@page_errors
async def cancel_job(request: Request) -> Response:
    job_id = request.path_params["id"]
    await checked_form(request, 64 * 1024)
    console_of(request).dataplane.cancel_training_job(job_id)
    return RedirectResponse(f"/jobs/{job_id}", 303)


@page_errors
async def batch_job(request: Request) -> Response:
    view = _job_view(console_of(request).dataplane.get_batch_detect_job(request.path_params["id"]))
    template = "_batch_status.html" if request.headers.get("hx-request") else "batch_job.html"
    return render(request, template, {"title": f"Batch job {view['id']}", "job": view})


@page_errors
async def cancel_batch_job(request: Request) -> Response:
    job_id = request.path_params["id"]
    await checked_form(request, 64 * 1024)
    await console_of(request).dataplane.cancel_batch_detect_job(job_id)
    return RedirectResponse(f"/jobs/batch/{job_id}", 303)
