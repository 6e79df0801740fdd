"""Tracing: OpenTelemetry spans when the standard `OTEL_*` variables ask for them, a shared no-op object otherwise.

The rule, decided once at start-up by `from_env` (first match wins):

    OTEL_SDK_DISABLED=true                                  off
    OTEL_TRACES_EXPORTER=none                               off
    OTEL_TRACES_EXPORTER=otlp | console (comma-separated)   on, with those exporters
    OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT set  on, exporter otlp
    nothing of the above                                    off

The specification's default exporter is otlp; ours is off, because a laptop has no collector and an exporter with
nowhere to send would retry and log forever. Everything else is the SDK's own variables, read by the SDK:
endpoint, headers, timeout, OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (grpc, the default, or http/protobuf),
OTEL_SERVICE_NAME (default here "pynomaly"), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*,
OTEL_PROPAGATORS (default tracecontext,baggage: a client's `traceparent` metadata continues its trace).

Off costs nothing measurable: opentelemetry is never imported, no gRPC interceptor is installed, and the core's
span calls return one shared no-op object (about 0.1 µs each).

The core sees only this interface (two implementations: `NoopTracer` here, `pynomaly.observability._otel.OtelTracer`):
`span(name, attributes)` is a context manager making a child of the current span current; `current()` is the
current span; `start_span` starts a child without making it current (a training job outlives the RPC that created
it); `use(span)` makes a span current; `record(name, parent, start_ns, end_ns)` records a finished child with
explicit times (stages a training worker timed in another process); `end(span, error)` ends a span, as an error
when `error` is given. Spans have `is_recording()`, `set_attribute(s)` and `end()`, as OpenTelemetry's do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DISABLED_VALUES = frozenset({"true"})
KNOWN_EXPORTERS = frozenset({"otlp", "console"})

# Attribute names: OpenTelemetry's RPC conventions for the server span, ours under `pynomaly.`.
MODEL_NAME = "pynomaly.model.name"
MODEL_VERSION = "pynomaly.model.version"
ALGORITHM = "pynomaly.algorithm"
ROWS = "pynomaly.rows"
FEATURES = "pynomaly.features"
CACHE_HIT = "pynomaly.cache.hit"
FLAGGED = "pynomaly.rows.flagged"
THRESHOLD = "pynomaly.threshold"
JOB_ID = "pynomaly.job.id"
JOB_STATE = "pynomaly.job.state"


class _NoopSpan:
    """Stands for every span when tracing is off: a context manager and a span that record nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoopSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def end(self, end_time: int | None = None) -> None:
        pass


NOOP_SPAN = _NoopSpan()


class NoopTracer:
    enabled = False

    def span(self, name: str, attributes: Mapping[str, Any] | None = None, parent: Any = None) -> Any:
        return NOOP_SPAN

    def start_span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        return NOOP_SPAN

    def use(self, span: Any) -> Any:
        return NOOP_SPAN

    def current(self) -> Any:
        return NOOP_SPAN

    def record(self, name: str, parent: Any, start_ns: int, end_ns: int,
               attributes: Mapping[str, Any] | None = None) -> None:
        pass

    def end(self, span: Any, error: str | None = None) -> None:
        pass

    def shutdown(self) -> None:
        pass


NOOP = NoopTracer()


def exporters_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The exporters the environment asks for; () means tracing is off. Raises ValueError on an unknown name."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in DISABLED_VALUES:
        return ()
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        chosen = tuple(n.strip() for n in names.split(",") if n.strip() and n.strip() != "none")
        unknown = sorted(set(chosen) - KNOWN_EXPORTERS)
        if unknown:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter(s) {', '.join(unknown)}; "
                             f"use {', '.join(sorted(KNOWN_EXPORTERS))} or none")
        return chosen
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ("otlp",)
    return ()


def from_env(environ: Mapping[str, str] = os.environ) -> Any:
    """The process's tracer: `NOOP`, or an OpenTelemetry tracer exporting where the environment says."""
    exporters = exporters_from_env(environ)
    if not exporters:
        return NOOP
    from pynomaly.observability import _otel

    return _otel.OtelTracer.from_exporters(exporters, environ)


def for_exporter(exporter: Any, *, batch: bool = False) -> Any:
    """An OpenTelemetry tracer sending spans to `exporter` (e.g. an InMemorySpanExporter), ignoring the environment."""
    from pynomaly.observability import _otel

    return _otel.OtelTracer.with_exporter(exporter, batch=batch)
