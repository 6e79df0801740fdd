"""Domain errors become gRPC status codes here, and only here."""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc

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


def to_status(e: Exception, method: str) -> tuple[grpc.StatusCode, str]:
    for cls in type(e).__mro__:
        if cls in CODES:
            return CODES[cls], str(e)
    error_id = uuid.uuid4().hex[:12]
    log.exception("internal error in %s (error id %s)", method, error_id)
    return grpc.StatusCode.INTERNAL, f"internal error (error id {error_id}; see the server log)"


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
