"""Reading the console's forms: size-limited multipart bodies, uploaded tables (read in a private temporary
directory, deleted at once), hyperparameters typed as the CLI types them, and the API's errors placed next to the
field they name."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message

from pynomaly import algorithms
from pynomaly.data import SUFFIXES, read_labelled
from pynomaly.errors import InvalidArgument, PayloadTooLarge, PynomalyError
from pynomaly.refs import is_digits

MAX_LISTED_FILES = 500
MAX_FIELDS = 200  # a training form has a field per hyperparameter (an ensemble's: a few dozen at most)


async def read_form(request: Request, limit: int) -> FormData:
    """The form of a POST, refused (413) past `limit` bytes before more is read."""
    length = request.headers.get("content-length", "")
    if is_digits(length) and int(length) > limit:
        raise PayloadTooLarge(f"upload: {int(length):,} bytes is more than this server's limit of {limit:,} bytes "
                              "(--max-message-mb)", field="file")
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"upload: more than this server's limit of {limit:,} bytes (--max-message-mb)",
                                      field="file")
        return message

    try:
        return await Request(request.scope, receive).form(max_files=1, max_fields=MAX_FIELDS)
    except PynomalyError:
        raise
    except Exception as e:  # python-multipart's and Starlette's parser errors
        raise InvalidArgument(f"form: cannot be read: {getattr(e, 'detail', None) or e}") from None


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def upload(form: FormData, name: str = "file") -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


async def read_upload(file: UploadFile, label_column: str = "") -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """The uploaded table (CSV, Parquet or .npz, as `pynomaly.data` reads files): written to a private temporary
    directory only for the reader, and deleted before this returns."""
    name = Path(file.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidArgument(f"file: {name or 'the upload'}: unsupported file type {suffix or '(none)'!r}; use one "
                              f"of {', '.join(SUFFIXES)}", field="file")
    with tempfile.TemporaryDirectory(prefix="pynomaly-upload-") as scratch:
        path = Path(scratch) / f"upload{suffix}"
        with open(path, "wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        try:
            X, names, y = read_labelled(path, "file", label_column)
        except InvalidArgument as e:  # name the user's file, not the scratch copy
            raise InvalidArgument(str(e).replace(path.name, name), reason=e.reason,
                                  field=e.field if e.field == "label_column" else "file") from None
    return X, names, y


def finite(raw: str, field: str, expected: str) -> float:
    """A number typed in a form: finite, else InvalidArgument "FIELD: must be EXPECTED, got 'RAW'"."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidArgument(f"{field}: must be {expected}, got {raw!r}", field=field)
    return value


def param_value(raw: str) -> Any:
    """A hyperparameter as typed in a form: JSON where it parses (200, 0.5, true, null, [1, 2]), else the text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def shown(value: Any) -> str:
    """A default as the form shows it: the way param_value reads it back."""
    return value if isinstance(value, str) and param_value(value) == value else json.dumps(value)


def given_params(form: FormData, algo: algorithms.Algorithm) -> dict[str, Any]:
    """The hyperparameters the form changed from their defaults (the others are the defaults: not sent)."""
    given = {}
    for p in algo.params:
        raw = text(form, f"param.{p.name}")
        if raw and raw != shown(p.default):
            given[p.name] = algorithms.as_declared(param_value(raw), p.type)
    return given


@dataclass
class FieldError:
    field: str
    message: str


def field_error(e: PynomalyError, fields: tuple[str, ...]) -> FieldError:
    """Where an API error goes on a form: its field (params.x → param.x), else the field its message starts with
    ("matrix: ..." is about the file), else the top of the form ("")."""
    field = e.field or str(e).split(":", 1)[0].split(" ", 1)[0]
    field = {"matrix": "file", "data_uri": "data_uri", "model_name": "name", "data": "file"}.get(field, field)
    if field.startswith("params."):
        field = "param." + field.removeprefix("params.")
    return FieldError(field if field in fields or field.startswith("param.") else "", str(e))


def data_files(root: Path | None) -> list[str]:
    """Files under the server's data root that training and batch jobs can read (relative paths), the first
    MAX_LISTED_FILES."""
    if root is None:
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found.append(str(path.relative_to(root)))
            if len(found) >= MAX_LISTED_FILES:
                break
    return found
