"""Request bytes that are not the method's message: INVALID_ARGUMENT with a plain message, on every service.

grpc.aio parses a request with the handler's `request_deserializer` before any servicer code runs, and answers a
parse error with UNKNOWN "Unexpected <class 'DecodeError'>: ..." (a stream's with whatever the servicer's error
handling makes of it). This interceptor, the innermost one, gives each handler a deserializer that returns a marker
instead of raising, and a behaviour that answers the marker with the domain's InvalidArgument, mapped to its status
where every domain error is (pynomaly.server.status). Valid requests pass through untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from pynomaly.errors import InvalidArgument
from pynomaly.server.status import to_status


class Undecodable:
    """What the deserializer hands on in place of a request it cannot parse."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _deserializer(inner: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    message_type = getattr(getattr(inner, "__self__", None), "DESCRIPTOR", None)
    what = f"a valid {message_type.full_name} message" if message_type is not None else f"valid for {method}"

    def deserialize(raw: bytes) -> Any:
        try:
            return inner(raw)
        except DecodeError:
            return Undecodable(f"the request is not {what}")

    return deserialize


async def _abort(context: grpc.aio.ServicerContext, bad: Undecodable, method: str) -> None:
    await context.abort(*to_status(InvalidArgument(bad.message), method))


def _wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    request_streaming, response_streaming = bool(handler.request_streaming), bool(handler.response_streaming)
    behavior = {
        (False, False): handler.unary_unary, (False, True): handler.unary_stream,
        (True, False): handler.stream_unary, (True, True): handler.stream_stream,
    }[request_streaming, response_streaming]
    if handler.request_deserializer is None or not (
        inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)
    ):
        return handler
    deserialize = _deserializer(handler.request_deserializer, method)
    serialize = handler.response_serializer

    async def checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                await _abort(context, request, method)
            yield request

    # A streaming response comes from an async generator or from a coroutine that calls context.write (as
    # grpc_health's Watch does): the wrapper keeps the servicer's kind.
    writes = response_streaming and not inspect.isasyncgenfunction(behavior)
    if request_streaming:
        if writes:

            async def stream_write(requests: Any, context: grpc.aio.ServicerContext) -> None:
                await behavior(checked(requests, context), context)

            return grpc.stream_stream_rpc_method_handler(stream_write, deserialize, serialize)
        if response_streaming:

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async for response in behavior(checked(requests, context), context):
                    yield response

            return grpc.stream_stream_rpc_method_handler(stream_stream, deserialize, serialize)
        else:

            async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                return await behavior(checked(requests, context), context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserialize, serialize)
    elif writes:

        async def unary_write(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Undecodable):
                await _abort(context, request, method)
            await behavior(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_write, deserialize, serialize)
    elif response_streaming:

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await _abort(context, request, method)
            async for response in behavior(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, serialize)
    else:

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                await _abort(context, request, method)
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, serialize)


class DecodeErrors(grpc.aio.ServerInterceptor):
    """Install last (innermost): the observability interceptors then see the INVALID_ARGUMENT it answers."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        cached = self._cache.get(details.method)
        if cached is None or cached[0] is not handler:  # a generic handler returns the same object every call
            cached = self._cache[details.method] = (handler, _wrap(details.method, handler))
        return cached[1]
