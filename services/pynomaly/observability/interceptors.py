"""gRPC server interceptors: one for tracing, one for metrics, each installed only when it is switched on.

Tracing: every RPC gets a SERVER span named `package.Service/Method`, continuing the trace of the caller's
`traceparent` metadata. A unary request gets a `decode` child (the request's protobuf parse) and a unary response an
`encode` child (its serialization); the span then ends after the response bytes exist. The dataplane adds its
children in between (`load_model`, `onnxruntime.run`, `threshold`) and the model's attributes to the span.

A failed RPC marks its span ERROR, whatever the code (INVALID_ARGUMENT and NOT_FOUND too), with the description
"CODE: details" and the attributes rpc.grpc.status_code (the number) and error.type (the name). See
`pynomaly.observability` for why this differs from the stock instrumentation.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from pynomaly.observability.metrics import RPC_TYPES, Metrics

_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _kind(handler: grpc.RpcMethodHandler) -> tuple[bool, bool]:
    return bool(handler.request_streaming), bool(handler.response_streaming)


def _behavior(handler: grpc.RpcMethodHandler) -> Any:
    return {
        (False, False): handler.unary_unary, (False, True): handler.unary_stream,
        (True, False): handler.stream_unary, (True, True): handler.stream_stream,
    }[_kind(handler)]


def _is_async(behavior: Any) -> bool:
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


def _status(context: grpc.aio.ServicerContext, error: BaseException | None) -> tuple[grpc.StatusCode, str]:
    """The status the client gets: the context's code after abort()/set_code(), else from the exception."""
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED, "cancelled"
    code = context.code()
    if code is None or not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
    details = context.details() or ""
    return code, details.decode(errors="replace") if isinstance(details, bytes) else str(details)


class _Wrapping(grpc.aio.ServerInterceptor):
    """An interceptor that wraps each method's handler, once per method (a generic handler returns the same object
    for every call). Subclasses define `_wrap`."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    def _begin(self, details: grpc.HandlerCallDetails) -> None:
        """Called on the call's context before its handler runs, for the calls this interceptor wraps."""

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        cached = self._cache.get(details.method)
        if cached is None or cached[0] is not handler:
            cached = self._cache[details.method] = (handler, self._wrap(details.method, handler))
        if cached[1] is not handler:
            self._begin(details)
        return cached[1]


# --- tracing ---


class _Rpc:
    """Per-call state: the server span and whether it has ended."""

    __slots__ = ("span", "ended")

    def __init__(self, span: Any):
        self.span = span
        self.ended = False


_CURRENT: ContextVar[_Rpc] = ContextVar("pynomaly_rpc")


class TracingInterceptor(_Wrapping):
    def __init__(self, tracer: Any):
        super().__init__()
        self._tracer = tracer

    def _begin(self, details: grpc.HandlerCallDetails) -> None:
        # grpc.aio runs the interceptors, the (de)serializers and the handler in one contextvars.Context.
        _CURRENT.set(_Rpc(self._tracer.start_server_span(details.method, details.invocation_metadata)))

    def _finish(self, rpc: _Rpc, code: grpc.StatusCode, details: str) -> None:
        if not rpc.ended:
            rpc.ended = True
            self._tracer.end_server_span(rpc.span, code.name, code.value[0], details)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        behavior = _behavior(handler)
        if not _is_async(behavior):
            return handler
        tracer = self._tracer
        finish = self._finish
        deserialize, serialize = handler.request_deserializer, handler.response_serializer
        request_streaming, response_streaming = _kind(handler)

        if not request_streaming and deserialize is not None:
            inner_deserialize = deserialize

            def deserialize(raw: bytes) -> Any:
                rpc = _CURRENT.get()
                try:
                    with tracer.span("decode", {"pynomaly.request.bytes": len(raw)}, parent=rpc.span):
                        return inner_deserialize(raw)
                except BaseException as e:  # the handler will not run; gRPC answers UNKNOWN
                    finish(rpc, grpc.StatusCode.UNKNOWN, f"cannot parse the request: {e}")
                    raise

        if response_streaming:

            async def traced(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                rpc = _CURRENT.get()
                error: BaseException | None = None
                try:
                    with tracer.use(rpc.span):
                        async for response in behavior(request, context):
                            yield response
                except BaseException as e:
                    error = e
                    raise
                finally:
                    finish(rpc, *_status(context, error))

            return _FACTORIES[_kind(handler)](traced, deserialize, serialize)

        async def traced_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            rpc = _CURRENT.get()
            try:
                with tracer.use(rpc.span):
                    response = await behavior(request, context)
            except BaseException as e:
                finish(rpc, *_status(context, e))
                raise
            code, details = _status(context, None)
            if code != grpc.StatusCode.OK or serialize is None:
                finish(rpc, code, details)
            return response

        if serialize is not None:
            inner_serialize = serialize

            def serialize(message: Any) -> bytes:
                rpc = _CURRENT.get()
                try:
                    with tracer.span("encode", parent=rpc.span) as span:
                        raw = inner_serialize(message)
                        span.set_attribute("pynomaly.response.bytes", len(raw))
                except BaseException:
                    finish(rpc, grpc.StatusCode.INTERNAL, "response serialization failed")
                    raise
                finish(rpc, grpc.StatusCode.OK, "")
                return raw

        return _FACTORIES[_kind(handler)](traced_unary, deserialize, serialize)


# --- metrics ---


class MetricsInterceptor(_Wrapping):
    def __init__(self, metrics: Metrics):
        super().__init__()
        self._metrics = metrics

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        behavior = _behavior(handler)
        if not _is_async(behavior):
            return handler
        recorder = self._metrics.rpc(RPC_TYPES[_kind(handler)], method)

        if handler.response_streaming:

            async def measured_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                recorder.started()
                start = time.perf_counter()
                error: BaseException | None = None
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as e:
                    error = e
                    raise
                finally:
                    recorder.handled(_status(context, error)[0].name, time.perf_counter() - start)

            measured: Any = measured_stream
        else:

            async def measured_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                recorder.started()
                start = time.perf_counter()
                try:
                    response = await behavior(request, context)
                except BaseException as e:
                    recorder.handled(_status(context, e)[0].name, time.perf_counter() - start)
                    raise
                recorder.handled(_status(context, None)[0].name, time.perf_counter() - start)
                return response

            measured = measured_unary
        deserialize = handler.request_deserializer
        if not handler.request_streaming and deserialize is not None:
            inner_deserialize = deserialize

            def deserialize(raw: bytes) -> Any:
                start = time.perf_counter()
                try:
                    return inner_deserialize(raw)
                except BaseException:  # the handler will not run; gRPC answers UNKNOWN: count it here
                    recorder.started()
                    recorder.handled(grpc.StatusCode.UNKNOWN.name, time.perf_counter() - start)
                    raise

        return _FACTORIES[_kind(handler)](measured, deserialize, handler.response_serializer)
