"""The OpenTelemetry side of `pynomaly.observability.tracing`; imported only when tracing is on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import version as _pkg_version
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

DEFAULT_SERVICE_NAME = "pynomaly"


class _MetadataGetter(Getter[Sequence[Any]]):
    """Reads `traceparent` / `tracestate` / `baggage` from gRPC invocation metadata ((key, value) pairs)."""

    def get(self, carrier: Sequence[Any], key: str) -> list[str] | None:
        values = [v if isinstance(v, str) else v.decode() for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier: Sequence[Any]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _MetadataGetter()


def _resource() -> Resource:
    resource = Resource.create({SERVICE_VERSION: _pkg_version("pynomaly")})  # reads OTEL_SERVICE_NAME & co.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "grpc").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore
        except ImportError:
            raise ValueError("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf needs the package "
                             "opentelemetry-exporter-otlp-proto-http; install it or use grpc") from None
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol {protocol!r}; use grpc or http/protobuf")
    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from the OTEL_EXPORTER_OTLP_* variables


class OtelTracer:
    enabled = True

    def __init__(self, processors: Iterable[SpanProcessor]):
        self.provider = TracerProvider(resource=_resource())  # sampler from OTEL_TRACES_SAMPLER
        for p in processors:
            self.provider.add_span_processor(p)
        self._tracer = self.provider.get_tracer("pynomaly", _pkg_version("pynomaly"))

    @classmethod
    def from_exporters(cls, names: Iterable[str], environ: Mapping[str, str]) -> OtelTracer:
        processors: list[SpanProcessor] = []
        for name in names:
            if name == "otlp":
                processors.append(BatchSpanProcessor(_otlp_exporter(environ)))
            elif name == "console":
                from opentelemetry.sdk.trace.export import ConsoleSpanExporter

                processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
        return cls(processors)

    @classmethod
    def with_exporter(cls, exporter: SpanExporter, batch: bool = False) -> OtelTracer:
        return cls([BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)])

    # --- the interface the core uses (see tracing.py) ---

    def span(self, name: str, attributes: Mapping[str, Any] | None = None, parent: Any = None) -> Any:
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self._tracer.start_as_current_span(name, context=context, attributes=attributes)

    def start_span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        return self._tracer.start_span(name, attributes=attributes)

    def use(self, span: Any) -> Any:
        # The span's status is decided by whoever ends it (the interceptor: from the gRPC status code).
        return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)

    def current(self) -> Any:
        return trace.get_current_span()

    def record(self, name: str, parent: Any, start_ns: int, end_ns: int,
               attributes: Mapping[str, Any] | None = None) -> None:
        span = self._tracer.start_span(name, context=trace.set_span_in_context(parent), attributes=attributes,
                                       start_time=start_ns)
        span.end(end_time=end_ns)

    def end(self, span: Any, error: str | None = None) -> None:
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()  # flushes the batch processors

    # --- the gRPC server span (used by the interceptor) ---

    def start_server_span(self, method: str, metadata: Sequence[Any] | None) -> Any:
        """A SERVER span named `package.Service/Method`, continuing the trace in the caller's metadata."""
        full = method.lstrip("/")
        service, _, rpc = full.rpartition("/")
        parent = propagate.extract(metadata or (), getter=_GETTER)
        return self._tracer.start_span(full, context=parent, kind=SpanKind.SERVER, attributes={
            "rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc,
        })

    def end_server_span(self, span: Any, code_name: str, code_value: int, details: str | None) -> None:
        """Every status but OK marks the span ERROR: see `pynomaly.observability` for why."""
        span.set_attribute("rpc.grpc.status_code", code_value)
        if code_name != "OK":
            span.set_attribute("error.type", code_name)
            span.set_status(Status(StatusCode.ERROR, f"{code_name}: {details}" if details else code_name))
        span.end()
