"""The SDK's exceptions: TrainingError and BatchError for a job that ended badly, and for a refused call the
subclass of ApiError for its status code, with the server's rich error details (google.rpc.Status in the
`grpc-status-details-bin` trailer) as attributes.

    try:
        client.detect("cardio", X)
    except pynomaly.InvalidArgumentError as e:
        e.reason            # "WRONG_WIDTH": stable, one of the README's error table
        e.field_violations  # [FieldViolation(field="rows", description="rows: expected 21 columns ...")]
    except pynomaly.NotFoundError as e:
        e.resource          # Resource(type="pynomaly.v1.ModelVersion", name="cardio")

ApiError subclasses grpc.RpcError and answers code(), details() and trailing_metadata() as a failed call does, so
code written against the bare stubs (`except grpc.RpcError as e: e.code()`) keeps working unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from pynomaly.errors import Resource
from pynomaly.v1 import detect_pb2, train_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str  # the request field's path, e.g. "rows.raw_values", "params.n_estimators"
    description: str
    reason: str = ""


class ApiError(grpc.RpcError):
    """A call the server refused or failed. `reason` is "" when the server sent no details (a proxy, grpc itself)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, reason: str = "", domain: str = "",
                 metadata: dict[str, str] | None = None, field_violations: tuple[FieldViolation, ...] = (),
                 resource: Resource | None = None, trailing_metadata: Any = ()):
        super().__init__(f"{code.name}: {message}")
        self._code, self._message, self._trailing = code, message, tuple(trailing_metadata or ())
        self.reason, self.domain, self.metadata = reason, domain, dict(metadata or {})
        self.field_violations, self.resource = list(field_violations), resource

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> Any:
        return self._trailing


class InvalidArgumentError(ApiError):
    """INVALID_ARGUMENT: malformed input; `field_violations` names the field."""


class NotFoundError(ApiError):
    """NOT_FOUND: unknown model, version, alias or job; `resource` names it."""


class AlreadyExistsError(ApiError):
    """ALREADY_EXISTS."""


class FailedPreconditionError(ApiError):
    """FAILED_PRECONDITION: well-formed, but the server is not in a state to serve it."""


class ResourceExhaustedError(ApiError):
    """RESOURCE_EXHAUSTED: a payload or a quota over its limit (QUEUE_FULL, TOO_MANY_VERSIONS, ...)."""


class UnauthenticatedError(ApiError):
    """UNAUTHENTICATED: no valid bearer token."""


class PermissionDeniedError(ApiError):
    """PERMISSION_DENIED: the token lacks the scope, or the path is outside the data root."""


class DeadlineExceededError(ApiError):
    """DEADLINE_EXCEEDED."""


class UnavailableError(ApiError):
    """UNAVAILABLE: the server, or a part of it, is down or restarting: retry later."""


class InternalError(ApiError):
    """INTERNAL: a bug; the message carries an error id that is in the server log."""


CLASSES: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def from_rpc_error(e: grpc.RpcError) -> grpc.RpcError:
    """The typed ApiError for a failed call; `e` itself if it is not a call (no status code to type it by)."""
    if isinstance(e, ApiError) or not isinstance(e, grpc.Call):
        return e
    code, message = e.code(), e.details() or ""
    found: dict[str, Any] = {}
    try:
        status = rpc_status.from_call(e)
    except ValueError:  # details that contradict the status line: trust the status line alone
        status = None
    for detail in status.details if status is not None else ():
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.ResourceInfo):
            if detail.Is(kind.DESCRIPTOR):
                found[kind.DESCRIPTOR.name] = kind()
                detail.Unpack(found[kind.DESCRIPTOR.name])
    info, bad, res = found.get("ErrorInfo"), found.get("BadRequest"), found.get("ResourceInfo")
    return CLASSES.get(code, ApiError)(
        code, message, reason=info.reason if info else "", domain=info.domain if info else "",
        metadata=dict(info.metadata) if info else None,
        field_violations=tuple(FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations)
        if bad else (),
        resource=Resource(res.resource_type, res.resource_name) if res else None,
        trailing_metadata=e.trailing_metadata())


class TrainingError(RuntimeError):
    """A training job ended FAILED or CANCELLED."""

    def __init__(self, job: train_pb2.TrainingJob):
        state = train_pb2.TrainingJobState.Name(job.state).removeprefix("TRAINING_JOB_STATE_")
        super().__init__(f"training job {job.id} {state.lower()}: {job.message}")
        self.job = job


class BatchError(RuntimeError):
    """A batch job ended FAILED or CANCELLED."""

    def __init__(self, job: detect_pb2.BatchDetectJob):
        state = detect_pb2.BatchDetectJobState.Name(job.state).removeprefix("BATCH_DETECT_JOB_STATE_")
        super().__init__(f"batch job {job.id} {state.lower()}: {job.message}")
        self.job = job


class _TypedStream:
    """A response stream whose failure is typed; everything else (cancel(), code(), ...) is the call's."""

    def __init__(self, call: Any):
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _TypedMethod:
    def __init__(self, method: Any):
        self._method = method
        self._streams = isinstance(method, grpc.UnaryStreamMultiCallable | grpc.StreamStreamMultiCallable)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self._method(*args, **kwargs)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return _TypedStream(result) if self._streams else result

    def __getattr__(self, name: str) -> Any:  # future(), with_call(): the plain ones
        return getattr(self._method, name)


class TypedStub:
    """A generated stub whose calls raise ApiErrors."""

    def __init__(self, stub: Any):
        self._stub = stub

    def __getattr__(self, name: str) -> Any:
        method = _TypedMethod(getattr(self._stub, name))
        setattr(self, name, method)
        return method
