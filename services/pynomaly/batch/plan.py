"""A batch job's plan: everything checked before the job exists, so that what can be refused at once is refused
with a status, and a job that starts has only its rows left to go wrong."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pynomaly.batch import tables
from pynomaly.batch.locations import Location, Output, input_location, open_output, output_location
from pynomaly.errors import InvalidArgument


@dataclass(frozen=True)
class BatchRequest:
    """CreateBatchDetectJob's arguments."""

    model: str
    input_uri: str
    output_uri: str
    id_column: str = ""
    pass_through: bool = False
    overwrite: bool = False
    threshold: float | None = None


@dataclass(frozen=True)
class Roots:
    """Where batch jobs may read (`data`) and write (`output`) local files; `store` (the model store's directory or
    URL) is never written."""

    data: Path | None
    output: Path | None
    store: str


@dataclass(frozen=True)
class BatchPlan:
    """What a job does: the version that scores, the files, the columns, and its reserved output."""

    job_id: str
    model_name: str
    model_version: int
    features: list[str]
    threshold: float
    source: Location
    target: Location
    layout: tables.Layout
    columns: list[str]  # read from the input, in file order
    keep: list[str]  # copied into the output, before the scores
    metadata: dict[str, str]  # the Parquet output's key-value metadata
    chunk_rows: int = tables.CHUNK_ROWS
    output: Output | None = field(default=None, compare=False, repr=False)  # reserved at planning


def make_plan(job_id: str, request: BatchRequest, model_name: str, model_version: int, manifest: dict[str, Any],
              roots: Roots) -> BatchPlan:
    """Check a request against the version's manifest and the files (blocking I/O: call it off the event loop)
    and reserve the output's partial file. Raises the domain error of the first problem found."""
    threshold = float(manifest["threshold"]) if request.threshold is None else request.threshold
    if not math.isfinite(threshold):
        raise InvalidArgument(f"threshold must be finite, got {request.threshold}")
    source = input_location(request.input_uri, roots.data)
    target = output_location(request.output_uri, roots.output, request.overwrite, roots.store)
    if source.url == target.url:
        raise InvalidArgument("output_uri: the output would replace the input; write it elsewhere")
    features = list(manifest["feature_names"])
    layout = tables.read_layout(source, features)
    columns, keep = tables.select_columns(layout, features, request.id_column, request.pass_through,
                                          request.input_uri)
    metadata = {
        "pynomaly.model_name": model_name, "pynomaly.model_version": str(model_version),
        "pynomaly.model": request.model, "pynomaly.threshold": repr(threshold), "pynomaly.job_id": job_id,
        "pynomaly.input_uri": request.input_uri,
    }
    plan = BatchPlan(job_id, model_name, model_version, features, threshold, source, target, layout, columns, keep,
                     metadata)
    return replace(plan, output=open_output(target, job_id, request.overwrite))
