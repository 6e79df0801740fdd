"""Tracing and metrics: span trees and attributes from an in-memory exporter, /metrics scraped over HTTP and parsed
with the Prometheus text parser, the OTEL_* switch, and nothing imported when both are off."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client.parser import text_string_to_metric_families

from pynomaly.client import to_matrix
from pynomaly.observability import tracing
from pynomaly.server.app import Running, ServerConfig, start
from pynomaly.v1 import detect_pb2, detect_pb2_grpc, train_pb2, train_pb2_grpc

FEATURES = 4
DETECT = "pynomaly.v1.DetectService/Detect"


@dataclass
class Observed:
    running: Running
    spans: InMemorySpanExporter
    channel: grpc.aio.Channel
    detect: detect_pb2_grpc.DetectServiceStub
    train: train_pb2_grpc.TrainServiceStub
    metrics_url: str


@pytest.fixture(scope="module")
async def observed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Observed]:
    """An in-process server with an in-memory span exporter and metrics on an ephemeral port."""
    spans = InMemorySpanExporter()
    config = ServerConfig(listen="127.0.0.1:0", store=tmp_path_factory.mktemp("obs-store"), metrics_port=0)
    running = await start(config, tracer=tracing.for_exporter(spans))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    yield Observed(running, spans, channel, detect_pb2_grpc.DetectServiceStub(channel),
                   train_pb2_grpc.TrainServiceStub(channel), f"http://127.0.0.1:{running.metrics_port}/metrics")
    await channel.close()
    await running.stop(grace=1)


class ClientTracer:
    """The client side of propagation: its own provider; a span's context travels as `traceparent` metadata."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = provider.get_tracer("test-client")

    def metadata(self, span: Any) -> tuple[tuple[str, str], ...]:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
        return tuple(carrier.items())


async def _wait(train: train_pb2_grpc.TrainServiceStub, job_id: str) -> train_pb2.TrainingJob:
    async for event in train.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job_id), timeout=120):
        job = event.job
    return job


def _rows(n: int, seed: int = 0) -> Any:
    return to_matrix(np.random.default_rng(seed).normal(size=(n, FEATURES)))[0]


@dataclass
class Trained:
    model: str
    job: train_pb2.TrainingJob
    client_span: ReadableSpan
    spans: tuple[ReadableSpan, ...]


@pytest.fixture(scope="module")
async def trained(observed: Observed) -> Trained:
    """Train 'traced' inside a client span; keep the spans the server recorded for it."""
    client = ClientTracer()
    observed.spans.clear()
    X = np.random.default_rng(1).normal(size=(300, FEATURES))
    with client.tracer.start_as_current_span("client: train") as span:
        request = train_pb2.CreateTrainingJobRequest(
            model_name="traced", algorithm="iforest", matrix=to_matrix(X)[0],
            params={"n_estimators": _number(30), "random_state": _number(0)})
        job = (await observed.train.CreateTrainingJob(request, metadata=client.metadata(span))).job
    job = await _wait(observed.train, job.id)
    assert job.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED, job.message
    (client_span,) = client.spans.get_finished_spans()
    return Trained(f"traced@{job.model_version}", job, client_span, observed.spans.get_finished_spans())


def _number(x: float) -> Any:
    from google.protobuf import struct_pb2

    return struct_pb2.Value(number_value=x)


def _one(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str, **where: Any) -> ReadableSpan:
    found = [s for s in spans if s.name == name and all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in spans]}"
    return found[0]


async def _ended(observed: Observed, name: str) -> ReadableSpan:
    """The one finished span named `name`, once it has ended. An aborted call's server span ends just after its
    status has gone to the client (grpc.aio's abort sends it, then raises through the interceptor that ends the
    span), and this server runs on the test's own event loop: give it the turns it needs, up to 10 s."""
    deadline = time.monotonic() + 10
    while not any(s.name == name for s in observed.spans.get_finished_spans()) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return _one(observed.spans.get_finished_spans(), name)


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    kids = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(kids, key=lambda s: s.start_time)


def _assert_within(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time, (child.name, parent.name)


# --- tracing ---


async def test_train_span_tree_continues_the_client_trace(trained: Trained):
    spans, client_span = trained.spans, trained.client_span
    rpc = _one(spans, "pynomaly.v1.TrainService/CreateTrainingJob")
    assert rpc.kind == SpanKind.SERVER
    assert rpc.context.trace_id == client_span.context.trace_id
    assert rpc.parent is not None and rpc.parent.span_id == client_span.context.span_id
    assert rpc.attributes["rpc.system"] == "grpc" and rpc.attributes["rpc.grpc.status_code"] == 0
    assert rpc.status.status_code == StatusCode.UNSET

    job = _one(spans, "training_job")
    assert job.parent is not None and job.parent.span_id == rpc.context.span_id
    assert job.context.trace_id == client_span.context.trace_id
    assert dict(job.attributes) == {
        "pynomaly.job.id": trained.job.id, "pynomaly.model.name": "traced", "pynomaly.algorithm": "iforest",
        "pynomaly.rows": 300, "pynomaly.features": FEATURES, "pynomaly.job.state": "SUCCEEDED",
        "pynomaly.model.version": trained.job.model_version,
    }
    stages = _children(spans, job)
    assert [s.name for s in stages] == ["fit", "export", "verify", "register"]
    for earlier, later in zip(stages, stages[1:], strict=False):
        assert earlier.end_time <= later.start_time  # in order, not overlapping
    for stage in stages:
        _assert_within(stage, job)
        assert stage.context.trace_id == client_span.context.trace_id
    assert stages[0].end_time - stages[0].start_time > 0  # fit took measurable time


async def test_detect_span_tree_and_attributes(observed: Observed, trained: Trained):
    name, version = trained.model.split("@")
    observed.running.dataplane.scoring.evict(name, int(version))  # the first call below must load the model
    client = ClientTracer()
    hits = []
    for _ in range(2):
        observed.spans.clear()
        with client.tracer.start_as_current_span("client: detect") as span:
            response = await observed.detect.Detect(detect_pb2.DetectRequest(model=trained.model, rows=_rows(3)),
                                                    metadata=client.metadata(span))
        assert len(response.double_anomaly_scores) == 3  # float64 rows: float64 scores
        spans = observed.spans.get_finished_spans()
        client_span = client.spans.get_finished_spans()[-1]
        rpc = _one(spans, DETECT)
        assert rpc.kind == SpanKind.SERVER and rpc.status.status_code == StatusCode.UNSET
        assert rpc.context.trace_id == client_span.context.trace_id
        assert rpc.parent is not None and rpc.parent.span_id == client_span.context.span_id
        assert dict(rpc.attributes) == {
            "rpc.system": "grpc", "rpc.service": "pynomaly.v1.DetectService", "rpc.method": "Detect",
            "rpc.grpc.status_code": 0, "pynomaly.model.name": name, "pynomaly.model.version": int(version),
            "pynomaly.algorithm": "iforest", "pynomaly.rows": 3, "pynomaly.features": FEATURES,
        }
        stages = _children(spans, rpc)
        assert [s.name for s in stages] == ["decode", "load_model", "onnxruntime.run", "threshold", "encode"]
        for earlier, later in zip(stages, stages[1:], strict=False):
            assert earlier.end_time <= later.start_time
        for s in stages:
            _assert_within(s, rpc)
            assert _children(spans, s) == []
        decode, load, _, threshold, encode = stages
        assert decode.attributes["pynomaly.request.bytes"] > 3 * FEATURES * 4
        assert encode.attributes["pynomaly.response.bytes"] > 0
        hits.append(load.attributes["pynomaly.cache.hit"])
        assert threshold.attributes["pynomaly.rows.flagged"] == sum(response.is_anomaly)
        assert threshold.attributes["pynomaly.threshold"] == pytest.approx(response.threshold)
    assert hits == [False, True]


@pytest.mark.parametrize(("model", "columns", "code"), [
    ("traced", FEATURES - 1, grpc.StatusCode.INVALID_ARGUMENT),
    ("no-such-model", FEATURES, grpc.StatusCode.NOT_FOUND),
])
async def test_failed_rpc_marks_its_span_error_with_the_code(observed: Observed, trained: Trained, model: str,
                                                            columns: int, code: grpc.StatusCode):
    observed.spans.clear()
    rows = to_matrix(np.zeros((2, columns)))[0]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await observed.detect.Detect(detect_pb2.DetectRequest(model=model, rows=rows))
    assert e.value.code() == code
    rpc = await _ended(observed, DETECT)
    assert rpc.status.status_code == StatusCode.ERROR
    assert rpc.status.description == f"{code.name}: {e.value.details()}"
    assert rpc.attributes["rpc.grpc.status_code"] == code.value[0]
    assert rpc.attributes["error.type"] == code.name
    expected = ["decode", "load_model"]  # and nothing after the stage that failed
    assert [s.name for s in _children(observed.spans.get_finished_spans(), rpc)] == expected
    if code == grpc.StatusCode.NOT_FOUND:  # raised inside load_model: that span records the exception
        load = _one(observed.spans.get_finished_spans(), "load_model")
        assert load.status.status_code == StatusCode.ERROR and load.events[0].name == "exception"
    else:  # the model resolved: the RPC span has its attributes
        assert rpc.attributes["pynomaly.model.name"] == model and rpc.attributes["pynomaly.features"] == columns


async def test_unparsable_request_is_traced_and_counted(observed: Observed):
    """Bytes that are not a DetectRequest: INVALID_ARGUMENT (pynomaly.server.decoding) before the servicer runs; the
    span and the counters still see the call."""
    observed.spans.clear()
    labels = {"grpc_method": "Detect", "grpc_code": "INVALID_ARGUMENT"}
    before = _value(await asyncio.to_thread(_scrape, observed.metrics_url), "grpc_server_handled",
                    "grpc_server_handled_total", **labels)
    raw = observed.channel.unary_unary(f"/{DETECT}", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await raw(b"\xff\xff\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "the request is not a valid pynomaly.v1.DetectRequest message"
    rpc = _one(observed.spans.get_finished_spans(), DETECT)
    assert rpc.status.status_code == StatusCode.ERROR and rpc.attributes["rpc.grpc.status_code"] == 3
    assert [s.name for s in _children(observed.spans.get_finished_spans(), rpc)] == ["decode"]
    after = _value(await asyncio.to_thread(_scrape, observed.metrics_url), "grpc_server_handled",
                   "grpc_server_handled_total", **labels)
    assert after == before + 1


async def test_failed_training_job_span_is_error_and_shows_how_far_it_got(observed: Observed, trained: Trained):
    observed.spans.clear()
    request = train_pb2.CreateTrainingJobRequest(model_name="nofit", algorithm="iforest", matrix=_rows(50),
                                                 params={"max_features": _number(50)})
    job = await _wait(observed.train, (await observed.train.CreateTrainingJob(request)).job.id)
    assert job.state == train_pb2.TRAINING_JOB_STATE_FAILED
    spans = observed.spans.get_finished_spans()
    span = _one(spans, "training_job")
    assert span.status.status_code == StatusCode.ERROR and "could not fit" in span.status.description
    assert span.attributes["pynomaly.job.state"] == "FAILED"
    assert [s.name for s in _children(spans, span)] == ["fit"]


async def test_streaming_rpc_gets_a_server_span(observed: Observed, trained: Trained):
    observed.spans.clear()
    await _wait(observed.train, trained.job.id)  # WatchTrainingJob: a server stream over a finished job
    rpc = _one(observed.spans.get_finished_spans(), "pynomaly.v1.TrainService/WatchTrainingJob")
    assert rpc.kind == SpanKind.SERVER and rpc.attributes["rpc.grpc.status_code"] == 0


# --- metrics ---


def _scrape(url: str) -> dict[str, Any]:
    """{metric family name: family} parsed by prometheus_client's text parser."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    matches = [s.value for s in families[family].samples
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(matches)


async def test_metrics_endpoint(observed: Observed, trained: Trained):
    name, version = trained.model.split("@")
    detect = {"grpc_service": "pynomaly.v1.DetectService", "grpc_method": "Detect"}
    before = await asyncio.to_thread(_scrape, observed.metrics_url)
    flagged = 0
    for n in (1, 1, 1, 100):
        r = await observed.detect.Detect(detect_pb2.DetectRequest(model=trained.model, rows=_rows(n, seed=n)))
        flagged += sum(r.is_anomaly)
    with pytest.raises(grpc.aio.AioRpcError):
        await observed.detect.Detect(detect_pb2.DetectRequest(model=trained.model, rows=to_matrix(np.zeros((1, 2)))[0]))
    after = await asyncio.to_thread(_scrape, observed.metrics_url)

    def delta(family: str, sample: str, **labels: str) -> float:
        return _value(after, family, sample, **labels) - _value(before, family, sample, **labels)

    # Requests and errors by RPC and status code; latency histogram.
    assert delta("grpc_server_started", "grpc_server_started_total", **detect) == 5
    assert delta("grpc_server_handled", "grpc_server_handled_total", grpc_code="OK", **detect) == 4
    assert delta("grpc_server_handled", "grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **detect) == 1
    assert delta("grpc_server_handling_seconds", "grpc_server_handling_seconds_count", **detect) == 5
    assert _value(after, "grpc_server_handling_seconds", "grpc_server_handling_seconds_bucket", le="+Inf",
                  grpc_type="unary", **detect) == _value(after, "grpc_server_handling_seconds",
                                                         "grpc_server_handling_seconds_count", **detect)
    # Rows scored, flagged share and the served-score distribution per model version.
    model = {"model": name, "version": version}
    assert delta("pynomaly_detect_rows", "pynomaly_detect_rows_total", **model) == 103
    assert delta("pynomaly_detect_rows_flagged", "pynomaly_detect_rows_flagged_total", **model) == flagged
    assert _value(after, "pynomaly_model_contamination", "pynomaly_model_contamination", **model) == 0.1
    buckets = sorted((float(s.labels["le"]), s.value) for s in after["pynomaly_detect_score"].samples
                     if s.name == "pynomaly_detect_score_bucket" and s.labels["model"] == name)
    counts = [c for _, c in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == float("inf")
    total = _value(after, "pynomaly_detect_score", "pynomaly_detect_score_count", **model)
    assert buckets[-1][1] == total == _value(after, "pynomaly_detect_rows", "pynomaly_detect_rows_total", **model)
    manifest = observed.running.dataplane.store.manifest(name, int(version))
    bounds = {b for b, _ in buckets}
    threshold = float(manifest["threshold"])  # float64 rows (to_matrix): float64 scores, flagged in float64
    assert set(manifest["training_scores"]["quantiles"]) | {threshold} <= bounds
    at_threshold = dict(buckets)[threshold]
    assert total - at_threshold == _value(after, "pynomaly_detect_rows_flagged", "pynomaly_detect_rows_flagged_total",
                                          **model)
    # The model cache and training jobs.
    assert _value(after, "pynomaly_model_cache_models", "pynomaly_model_cache_models") >= 1
    assert delta("pynomaly_model_cache_hits", "pynomaly_model_cache_hits_total") == 5
    assert _value(after, "pynomaly_model_cache_misses", "pynomaly_model_cache_misses_total") >= 1
    assert "pynomaly_model_cache_evictions" in after
    assert _value(after, "pynomaly_training_jobs", "pynomaly_training_jobs", state="SUCCEEDED") >= 1
    for stage in ("fit", "export", "verify", "register"):
        assert _value(after, "pynomaly_training_stage_seconds", "pynomaly_training_stage_seconds_count",
                      algorithm="iforest", stage=stage) >= 1
    assert "process_resident_memory_bytes" in {s.name for f in after.values() for s in f.samples}
