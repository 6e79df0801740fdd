"""Domain errors. Each maps to one gRPC status in `pynomaly.server.status` (the only place that knows gRPC) and one
HTTP status in `pynomaly.web.status`.

An error may carry structured details besides its message (the gRPC rich error model: google.rpc.ErrorInfo,
BadRequest, ResourceInfo): a stable `reason` from REASONS below, the request `field` it is about, and the `resource`
it did not find. The message stays the human sentence; the details are for programs. Without an explicit field, an
InvalidArgument's field is read from its message's prefix ("rows.raw_values: ..."), the form every message here has.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

DOMAIN = "pynomaly.io"  # google.rpc.ErrorInfo.domain


class Resource(NamedTuple):
    """google.rpc.ResourceInfo's two names: the type (a message of the API) and the name a client gave."""

    type: str
    name: str


# ResourceInfo.resource_type: the API message a name refers to (a model name, name@3 or name:alias is a ModelVersion).
MODEL_VERSION = "pynomaly.v1.ModelVersion"
TRAINING_JOB = "pynomaly.v1.TrainingJob"
BATCH_JOB = "pynomaly.v1.BatchDetectJob"


class PynomalyError(Exception):
    """Base class: a failure the client caused or can act on. Its message is shown to the client."""

    reason = "UNSPECIFIED"  # each class's generic reason; raise sites name a specific one where there is one

    def __init__(self, message: str = "", *, reason: str | None = None, field: str | None = None,
                 resource: Resource | None = None):
        super().__init__(message)  # args stay (message,): pickling (Ray) restores the rest from __dict__
        if reason is not None:
            self.reason = reason
        self.field = field
        self.resource = resource


class InvalidArgument(PynomalyError):
    """Malformed input: wrong width, NaN/inf, empty, bad hyperparameter, unknown algorithm."""

    reason = "INVALID_ARGUMENT"


class NotFound(PynomalyError):
    """Unknown model, version, alias or job."""

    reason = "NOT_FOUND"


class AlreadyExists(PynomalyError):
    """What the call would create exists already (e.g. a batch job's output file, without `overwrite`)."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(PynomalyError):
    """The request is well-formed but the system is not in a state to serve it."""

    reason = "FAILED_PRECONDITION"


class ResourceExhausted(PynomalyError):
    """A payload or quota over its configured limit."""

    reason = "RESOURCE_EXHAUSTED"


class Unauthenticated(PynomalyError):
    """No valid credentials: no bearer token, or one the server does not know (pynomaly.auth)."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(PynomalyError):
    """The caller may not do this (e.g. read a file outside the data root; a token without the scope needed)."""

    reason = "PERMISSION_DENIED"


class DeadlineExceeded(PynomalyError):
    """The work could not finish within the caller's deadline."""

    reason = "DEADLINE_EXCEEDED"


class Unavailable(PynomalyError):
    """A part of the platform the call needs is down or restarting (e.g. a Ray Serve replica): retry later."""

    reason = "UNAVAILABLE"


class PayloadTooLarge(ResourceExhausted):
    """A request body over the configured size limit (HTTP tells it apart from other limits: 413, not 429)."""

    reason = "PAYLOAD_TOO_LARGE"


# Every reason a client can meet, in one place: its error class (hence its gRPC and HTTP status) and its meaning.
# The README's error table lists the same (tests/unit/test_error_reasons.py keeps them equal). Stable: a reason is
# never renamed or reused for another meaning.
_GENERIC: tuple[type[PynomalyError], ...] = (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
                                             ResourceExhausted, Unauthenticated, PermissionDenied, DeadlineExceeded,
                                             Unavailable)
REASONS: dict[str, tuple[type[PynomalyError], str]] = {
    cls.reason: (cls, "no more specific reason: the message says what is wrong") for cls in _GENERIC
} | {
    "PAYLOAD_TOO_LARGE": (PayloadTooLarge, "a request over the server's message or body size limit"),
    "WRONG_WIDTH": (InvalidArgument, "rows with a column count other than the model's feature count"),
    "NON_FINITE_VALUE": (InvalidArgument, "a NaN or infinite value, or one beyond float32's range"),
    "EMPTY_INPUT": (InvalidArgument, "no rows or no columns"),
    "TOO_MANY_ROWS": (InvalidArgument, "more training rows than the algorithm's max_training_rows"),
    "MALFORMED_MATRIX": (InvalidArgument, "a matrix whose values do not match rows × columns"),
    "UNKNOWN_ALGORITHM": (InvalidArgument, "an algorithm ListAlgorithms does not name"),
    "UNKNOWN_PARAMETER": (InvalidArgument, "a hyperparameter the algorithm does not have"),
    "INVALID_PARAMETER": (InvalidArgument, "a hyperparameter of the wrong type or out of its range"),
    "INVALID_CONTAMINATION": (InvalidArgument, "contamination outside (0, 0.5]"),
    "WRONG_LABELS": (InvalidArgument, "labels that are not 0/1, not one per row, or too few of a class"),
    "LABELS_REQUIRED": (InvalidArgument, "an algorithm that learns from labels (needs_labels), trained without them"),
    "INVALID_REFERENCE": (InvalidArgument, "a malformed model name, reference, alias or job id"),
    "UNKNOWN_MODEL": (NotFound, "no model of that name"),
    "UNKNOWN_VERSION": (NotFound, "the model has no such version"),
    "UNKNOWN_ALIAS": (NotFound, "the model has no such alias"),
    "UNKNOWN_JOB": (NotFound, "no training or batch job with that id"),
    "NOT_EXPORTABLE": (FailedPrecondition, "the algorithm cannot be exported to ONNX, so it is not served"),
    "METHOD_UNAVAILABLE": (FailedPrecondition, "the explanation method is not available for this model"),
    "QUEUE_FULL": (ResourceExhausted, "--max-queued-jobs training jobs are queued or running"),
    "TOO_MANY_VERSIONS": (ResourceExhausted, "the model has --max-versions-per-model versions"),
    "STORE_FULL": (ResourceExhausted, "the model store holds --max-store-mb"),
}

_FIELD = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+|\[\d+\])*(?=: )")


def describe_value(v: Any) -> str:
    """A client's value in the API's words (google.protobuf.Value's and JSON's kinds), never Python's: `null`, not
    None; `bool true`, not True."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"bool {json.dumps(v)}"
    if isinstance(v, int | float):
        return f"number {int(v) if float(v).is_integer() else v}"
    kind = "string" if isinstance(v, str) else "list" if isinstance(v, list | tuple) else "struct"
    text = json.dumps(v, default=str)
    return f"{kind} {text if len(text) <= 40 else text[:39] + '…'}"


def field_of(e: PynomalyError) -> str | None:
    """The request field an InvalidArgument is about: explicit, else its message's "field.path: " prefix."""
    if e.field is not None or not isinstance(e, InvalidArgument):
        return e.field
    match = _FIELD.match(str(e))
    return match.group() if match else None


def unknown_version(name: str, version: int) -> NotFound:
    return NotFound(f"model {name}@{version} not found", reason="UNKNOWN_VERSION",
                    resource=Resource(MODEL_VERSION, f"{name}@{version}"))


def unknown_model(name: str) -> NotFound:
    return NotFound(f"model {name!r} not found", reason="UNKNOWN_MODEL", resource=Resource(MODEL_VERSION, name))


def unknown_alias(name: str, alias: str) -> NotFound:
    return NotFound(f"model {name!r} has no alias {alias!r}", reason="UNKNOWN_ALIAS",
                    resource=Resource(MODEL_VERSION, f"{name}:{alias}"))


def unknown_job(kind: str, job_id: str) -> NotFound:
    """`kind`: "training job" or "batch job", as messages name them."""
    return NotFound(f"{kind} {job_id!r} not found", reason="UNKNOWN_JOB",
                    resource=Resource(BATCH_JOB if kind == "batch job" else TRAINING_JOB, job_id))
