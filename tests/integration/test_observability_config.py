"""Switching observability on and off: the OTEL_* rule, nothing imported when off, and a real OTLP export to a
collector on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from pynomaly.client import to_matrix
from pynomaly.observability import tracing
from pynomaly.v1 import detect_pb2, detect_pb2_grpc

from conftest import ServerProcess

DETECT = "pynomaly.v1.DetectService/Detect"


@pytest.mark.parametrize(("environ", "exporters"), [
    ({}, ()),
    ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp")),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, ("otlp",)),
    ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, ()),
    ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, ("otlp",)),
])
def test_tracing_switch(environ: dict[str, str], exporters: tuple[str, ...]):
    assert tracing.exporters_from_env(environ) == exporters
    assert (tracing.from_env(environ) is tracing.NOOP) == (not exporters)


def test_unknown_exporter_is_refused_at_start_up():
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER: unsupported exporter.*zipkin"):
        tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


OFF_SCRIPT = textwrap.dedent("""
    import asyncio, sys, tempfile
    from pathlib import Path
    from pynomaly.observability import tracing
    from pynomaly.observability.metrics import NO_METRICS
    from pynomaly.server import app

    async def main():
        with tempfile.TemporaryDirectory() as store:
            config = app.ServerConfig(listen="127.0.0.1:0", store=Path(store), warm_up=False)
            assert app.observability(config, None)[2] == [], "no interceptor when off"
            running = await app.start(config)
            assert running.dataplane.tracer is tracing.NOOP and running.dataplane.metrics is NO_METRICS
            assert running.metrics_port is None
            await running.stop(grace=0)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "prometheus_client"))
        assert not loaded, loaded
        print("OFF-OK")

    if __name__ == "__main__":
        asyncio.run(main())
""")


def test_off_by_default_imports_nothing_and_installs_no_interceptor(tmp_path):
    script = tmp_path / "off.py"
    script.write_text(OFF_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OFF-OK" in out.stdout, out.stdout + out.stderr


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A stand-in OTLP collector on loopback: keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_exporter_configured_by_the_environment(tmp_path, monkeypatch):
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pynomaly-test")
    srv = ServerProcess(tmp_path / "store")  # its start-up health check is the first traced RPC
    try:
        stub = detect_pb2_grpc.DetectServiceStub(srv.channel)
        with pytest.raises(grpc.RpcError):
            stub.Detect(detect_pb2.DetectRequest(model="missing", rows=to_matrix(np.zeros((1, 4)))[0]), timeout=10)
        deadline = time.monotonic() + 20
        names: dict[str, Any] = {}
        while time.monotonic() < deadline and DETECT not in names:
            collector.received.wait(0.5)
            names = {s.name: (rs.resource, s) for r in list(collector.requests) for rs in r.resource_spans
                     for ss in rs.scope_spans for s in ss.spans}
    finally:
        srv.stop()
        server.stop(None)
    assert "grpc.health.v1.Health/Check" in names and DETECT in names, sorted(names)
    resource, span = names[DETECT]
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "pynomaly-test"
    assert span.status.code == span.status.STATUS_CODE_ERROR and span.status.message.startswith("NOT_FOUND")
