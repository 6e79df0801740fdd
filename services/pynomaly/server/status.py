"""Domain errors become gRPC statuses here, and only here: the code, the message, and the rich error model's
details (google.rpc.Status in the `grpc-status-details-bin` trailer: ErrorInfo with the error's reason, BadRequest
naming the field, ResourceInfo naming what was not found), which clients in any language decode."""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from pynomaly import errors

log = logging.getLogger("pynomaly.server")

CODES: dict[type[errors.PynomalyError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


class Status(NamedTuple):
    """context.abort's arguments: `await context.abort(*to_status(e, method))`."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# Status messages travel in headers, and gRPC refuses a call's metadata beyond 8 KiB: a message that quotes a huge
# input (a 5,000-digit version) is cut in its middle, so that it fits twice (grpc-message and the details).
MAX_MESSAGE = 1024


def _bounded(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    cut = len(message) - MAX_MESSAGE + 40
    head = (MAX_MESSAGE - 40) // 2
    return f"{message[:head]} … ({cut:,} characters cut) … {message[head + cut:]}"


def rich_details(e: errors.PynomalyError, message: str) -> list[any_pb2.Any]:
    """google.rpc details of a domain error: ErrorInfo always, BadRequest with a field, ResourceInfo with a resource."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=e.reason, domain=errors.DOMAIN))]
    field = errors.field_of(e)
    if field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message, reason=e.reason)
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    if e.resource is not None:
        details.append(_pack(error_details_pb2.ResourceInfo(resource_type=e.resource.type,
                                                            resource_name=e.resource.name)))
    return details


def to_status(e: Exception, method: str) -> Status:
    for cls in type(e).__mro__:
        if cls in CODES:
            assert isinstance(e, errors.PynomalyError)
            code, message = CODES[cls], _bounded(str(e))
            rich = status_pb2.Status(code=code.value[0], message=message, details=rich_details(e, message))
            return Status(code, message, rpc_status.to_status(rich).trailing_metadata)
    error_id = uuid.uuid4().hex[:12]
    log.exception("internal error in %s (error id %s)", method, error_id)
    return Status(grpc.StatusCode.INTERNAL, f"internal error (error id {error_id}; see the server log)")


def grpc_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a servicer method (coroutine or async generator) so no exception reaches gRPC unmapped."""
    name = method.__qualname__

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async for response in method(self, request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await context.abort(*to_status(e, name))

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await context.abort(*to_status(e, name))

    return unary
