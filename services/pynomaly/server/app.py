"""The embedded engine: one grpc.aio process, onnxruntime in-process, training in a process pool."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pynomaly.batch import BatchJobs, Roots
from pynomaly.batch.embedded import ThreadEngine
from pynomaly.dataplane import DataPlane
from pynomaly.jobs import JobManager
from pynomaly.limits import DAY_S, Limits
from pynomaly.observability import tracing
from pynomaly.observability.metrics import NO_METRICS
from pynomaly.oip.inference import Inference
from pynomaly.oip.v2 import grpc_service_pb2_grpc
from pynomaly.refs import is_digits
from pynomaly.runtime import LocalScoring, SessionCache
from pynomaly.server import oip, reflection
from pynomaly.server.decoding import DecodeErrors
from pynomaly.server.readiness import StoreReadiness
from pynomaly.server.security import Security, health_server
from pynomaly.server.servicers import DetectServicer, ExplainServicer, ModelServicer, TrainServicer
from pynomaly.store import LocalStore, open_store
from pynomaly.v1 import (
    detect_pb2,
    detect_pb2_grpc,
    explain_pb2,
    explain_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    train_pb2,
    train_pb2_grpc,
)
from pynomaly.workers import ProcessPool

if TYPE_CHECKING:
    from pynomaly.web.server import HttpServer

log = logging.getLogger("pynomaly.server")

SERVICE_NAMES = tuple(
    f.services_by_name[s].full_name
    for f, s in (
        (train_pb2.DESCRIPTOR, "TrainService"),
        (model_pb2.DESCRIPTOR, "ModelService"),
        (detect_pb2.DESCRIPTOR, "DetectService"),
        (explain_pb2.DESCRIPTOR, "ExplainService"),
    )
)


@dataclass
class ServerConfig:
    """Settings of the embedded server; every field is a `pynomaly serve` flag."""

    listen: str = "127.0.0.1:50051"
    # A directory, or an fsspec URL such as s3://bucket/prefix (pynomaly.store.open_store).
    store: str = "var/store"
    # Directory that CreateTrainingJob's data_uri and batch jobs' input_uri may read from; None: no local files.
    data_root: Path | None = None
    # Directory batch jobs' output_uri may write under; None: batch jobs write to object storage only.
    output_root: Path | None = None
    train_workers: int = 1
    # Seconds without a job after which the training workers exit (the next job starts them); 0: never.
    train_idle_s: float = 60.0
    # Threads scoring one large batch in parallel chunks (onnxruntime sessions themselves are single-threaded).
    threads: int = min(2, os.cpu_count() or 1)
    max_models: int = 64
    # Larger requests get RESOURCE_EXHAUSTED from gRPC itself.
    max_message_bytes: int = 64 * 1024 * 1024
    warm_up: bool = True
    # Prometheus metrics over HTTP on this port of the --listen host (0 picks one); None: off. Tracing has no field:
    # it is configured by the standard OTEL_* environment variables only (pynomaly.observability.tracing).
    metrics_port: int | None = None
    # --workers: a serving process's metrics on this Unix socket; the primary's /metrics reads the sockets listed in
    # metrics_sources, (worker label, path) (pynomaly.observability.gathered).
    metrics_socket: str | None = None
    metrics_sources: tuple[tuple[str, str], ...] = ()
    # The REST API (the Open Inference Protocol's HTTP/JSON binding; pynomaly.web) on this host:port, in the same
    # process and event loop as gRPC (port 0 picks one); None: off.
    http_listen: str | None = None
    # Seconds between checks that the model store can be read: grpc.health.v1 reports NOT_SERVING (for "" and the
    # API services; "liveness" stays SERVING) while it cannot. pynomaly.server.readiness.
    store_check_seconds: float = 10.0
    # Limits (pynomaly.limits; README "Limits"): nothing a client sends can exhaust the server.
    max_queued_jobs: int = 16  # training jobs queued or running; beyond: RESOURCE_EXHAUSTED
    max_versions_per_model: int = 100  # beyond: RESOURCE_EXHAUSTED at job creation, registration and import
    max_store_mb: float | None = None  # the store's models/ at most; None: no bound
    explain_timeout_s: float = 30.0  # Kernel SHAP's deadline when the call sets none: DEADLINE_EXCEEDED
    import_run_timeout_s: float = 10.0  # one onnxruntime run of an imported graph: DEADLINE_EXCEEDED
    keep_jobs: int = 1000  # finished job records kept (training and batch, each)
    job_ttl_days: float = 30.0  # finished job records older than this are deleted
    max_cache_mb: float = 512.0  # loaded versions' ONNX (+ explain arrays) bytes in the session cache
    # On SIGTERM: health answers NOT_SERVING at once (Check and Watch) while new calls are still taken for
    # `shutdown_delay_s`, so load balancers and readiness probes see it and move away; then the calls in flight
    # get the rest of `grace_s` to finish before they are cancelled. Running training jobs are marked interrupted.
    # Keep grace_s below Kubernetes' terminationGracePeriodSeconds (30 by default).
    grace_s: float = 25.0
    shutdown_delay_s: float = 5.0
    # TLS on --listen and --http-listen (PEM files, reloaded when they change; server/tls.py); with tls_client_ca,
    # mutual TLS: clients must present a certificate it signed.
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    # A plaintext port serving grpc.health.v1 only, for probes that cannot speak TLS (Kubernetes' gRPC probes).
    health_listen: str | None = None
    # Bearer tokens and their scopes (pynomaly.auth); None: no auth. auth_reflection: "open" or "token".
    auth_tokens: str | None = None
    auth_reflection: str = "open"
    # --workers: processes serving --listen (SO_REUSEPORT), the first the primary (pynomaly.server.processes).
    # private_socket: where the primary takes the others' forwarded calls; primary_socket: a serving process's.
    workers: int = 1
    private_socket: str | None = None
    primary_socket: str | None = None


def limits(config: ServerConfig) -> Limits:
    """The limits the data plane and the job managers enforce, from the config."""
    return Limits(
        max_queued_jobs=config.max_queued_jobs, max_versions_per_model=config.max_versions_per_model,
        max_store_mb=config.max_store_mb,
        explain_timeout_s=config.explain_timeout_s, import_run_timeout_s=config.import_run_timeout_s,
        keep_jobs=config.keep_jobs, job_ttl_s=config.job_ttl_days * DAY_S,
    )


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    dataplane: DataPlane
    health: health.aio.HealthServicer
    metrics_port: int | None = None  # where /metrics is served, if it is
    inference: Inference | None = None
    http: HttpServer | None = None  # the HTTP app on --http-listen, if there is one
    readiness: StoreReadiness | None = None
    health_server: grpc.aio.Server | None = None  # the plaintext health-only port, if there is one
    health_port: int | None = None

    async def stop(self, grace: float | None = 5.0, delay: float = 0.0) -> None:
        """NOT_SERVING first (the readiness loop stopped before, so it cannot flip it back); still accepting
        calls for `delay` seconds; then the calls in flight get what is left of `grace`."""
        if self.inference is not None:
            self.inference.draining = True
        if self.readiness is not None:
            await self.readiness.stop()
        await self.health.enter_graceful_shutdown()
        if delay > 0:
            await asyncio.sleep(delay)
        # Training jobs cannot finish in a drain period: marked interrupted now, so their watch streams end
        # with that news inside the grace period rather than being cut off.
        await self.dataplane.jobs.stop()
        drain = None if grace is None else max(0.0, grace - delay)
        await asyncio.gather(self.server.stop(drain), *([self.http.stop(drain)] if self.http is not None else []))
        if self.health_server is not None:
            await self.health_server.stop(None)
        if self.dataplane.batch is not None:
            await self.dataplane.batch.stop()
        self.dataplane.metrics.close()
        self.dataplane.tracer.shutdown()  # flushes spans not exported yet


def observability(config: ServerConfig, tracer: Any) -> tuple[Any, Any, list[grpc.aio.ServerInterceptor]]:
    """Tracer, metrics and the interceptors serving them; no-op objects and no interceptor for what is off."""
    tracer = tracing.from_env() if tracer is None else tracer
    metrics: Any = NO_METRICS
    if config.metrics_port is not None or config.metrics_socket is not None:
        from pynomaly.observability.metrics import Metrics

        metrics = Metrics(list(config.metrics_sources))
    elif config.http_listen is not None:  # the web console plots the served-score histograms
        from pynomaly.observability.metrics import ServedScores

        metrics = ServedScores(list(config.metrics_sources))
    if not (tracer.enabled or metrics.enabled):
        return tracer, metrics, []
    from pynomaly.observability.interceptors import MetricsInterceptor, TracingInterceptor

    interceptors: list[grpc.aio.ServerInterceptor] = [TracingInterceptor(tracer)] if tracer.enabled else []
    if metrics.enabled:
        interceptors.append(MetricsInterceptor(metrics))
    return tracer, metrics, interceptors


async def start(config: ServerConfig, extra_handlers: Iterable[grpc.GenericRpcHandler] = (),
                tracer: Any = None) -> Running:
    """Build the embedded platform, bind it and start serving. `extra_handlers` serve benchmarks only; `tracer`
    (tests only) replaces the one the OTEL_* environment variables configure."""
    tracer, metrics, interceptors = observability(config, tracer)
    store = open_store(config.store)
    store.sweep_staging()
    pool = ProcessPool(config.train_workers, config.train_idle_s)
    jobs = JobManager(store, store, pool, tracer=tracer, metrics=metrics,
                      limits=limits(config))
    _check_free(config.listen)  # a port in use fails at once, before a worker is started
    await jobs.start(warm_up=config.warm_up)  # the worker imports the training stack while the rest comes up
    sessions = SessionCache(store, config.threads, config.max_models, int(config.max_cache_mb * 2**20),
                            config.import_run_timeout_s)
    scoring = LocalScoring(sessions, offload_loads=not isinstance(store, LocalStore))
    roots = Roots(config.data_root, config.output_root, config.store)
    batch = BatchJobs(store.batch_jobs, ThreadEngine(sessions), roots, limits=jobs.limits)
    await batch.start()
    dataplane = DataPlane(store, scoring, jobs, config.data_root, tracer=tracer, metrics=metrics, batch=batch)
    if metrics.enabled:
        metrics.bind(sessions, jobs)
    try:
        running = await serve_dataplane(config, dataplane, interceptors, extra_handlers)
    except BaseException:  # no worker outlives a start-up that failed
        await jobs.stop()
        await batch.stop()
        raise
    if config.warm_up:
        threading.Thread(target=_warm_up_scoring, name="pynomaly-warm-up", daemon=True).start()
    return running


def _warm_up_scoring() -> None:
    """Import what the first model load needs (onnx reads a graph's constants: most of a second) on a thread, once
    serving, rather than on the event loop at the first Detect."""
    import onnx  # noqa: F401


async def serve_dataplane(config: ServerConfig, dataplane: DataPlane,
                          interceptors: list[grpc.aio.ServerInterceptor],
                          extra_handlers: Iterable[grpc.GenericRpcHandler] = ()) -> Running:
    """The front of any engine: the four services, the Open Inference Protocol, health, reflection, metrics, and
    the HTTP app on config.http_listen; bound and started. `interceptors` come before the token check."""
    metrics = dataplane.metrics
    try:
        if config.primary_socket is None:  # a serving process shares the primary's port
            _check_free(config.listen)
        security = Security.load(config.tls_cert, config.tls_key, config.tls_client_ca, config.auth_tokens,
                                 config.auth_reflection)
    except (OSError, ValueError):
        await dataplane.jobs.stop()
        raise
    server = grpc.aio.server(
        # Tokens are checked first; innermost, undecodable requests become INVALID_ARGUMENT.
        interceptors=[*interceptors, *security.interceptors(), DecodeErrors()],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", int(config.workers > 1 or config.primary_socket is not None)),
        ],
        handlers=list(extra_handlers),
    )
    train_pb2_grpc.add_TrainServiceServicer_to_server(TrainServicer(dataplane), server)
    model_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(dataplane), server)
    detect_pb2_grpc.add_DetectServiceServicer_to_server(DetectServicer(dataplane), server)
    explain_pb2_grpc.add_ExplainServiceServicer_to_server(ExplainServicer(dataplane), server)
    inference = Inference(dataplane)
    grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(oip.InferenceServicer(inference), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = (*SERVICE_NAMES, oip.SERVICE_NAME)
    reflection.enable((*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    try:
        port = security.add_port(server, config.listen)
        if config.private_socket is not None:
            server.add_insecure_port(f"unix:{config.private_socket}")
    except RuntimeError as e:
        await dataplane.jobs.stop()
        raise OSError(f"cannot listen on {config.listen}: {e}") from None
    try:
        http = _http_server(config, inference, security)
    except OSError:
        await dataplane.jobs.stop()
        raise
    metrics_port = None
    if metrics.enabled and config.metrics_port is not None:
        host = config.listen.rsplit(":", 1)[0]
        try:
            metrics_port = metrics.serve(host, config.metrics_port)
        except OSError as e:
            await dataplane.jobs.stop()
            if http is not None:
                await http.stop()
            raise OSError(f"cannot serve metrics on {host}:{config.metrics_port}: {e}") from None
    readiness = StoreReadiness(health_servicer, dataplane.store, services, config.store_check_seconds,
                               on_change=lambda ready: setattr(inference, "store_readable", ready))
    await readiness.start()  # before serving: the first answer to a readiness probe is already the store's
    await server.start()
    if http is not None:
        await http.start()
    running = Running(server, port, dataplane, health_servicer, metrics_port, inference, http, readiness)
    if config.health_listen is not None:
        try:
            running.health_server, running.health_port = await health_server(config.health_listen,
                                                                              health_servicer)
        except OSError:
            await running.stop(0)
            raise
    return running


def _check_free(listen: str) -> None:
    """OSError naming the address when host:port cannot be bound: a port in use fails in one clear line (gRPC's own
    failure also logs a C-core error line)."""
    host, _, port = listen.rpartition(":")
    if not is_digits(port) or int(port) == 0:
        return  # gRPC reports a malformed address itself; port 0 is always free
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]") or None, int(port),
                                                             type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: TIME_WAIT is no conflict
            probe.bind(address)
    except OSError as e:
        raise OSError(f"cannot listen on {listen}: {e.strerror or e}") from None


def _http_server(config: ServerConfig, inference: Inference, security: Security) -> HttpServer | None:
    """The HTTP app bound to config.http_listen (not started yet), or None when it is off."""
    if config.http_listen is None:
        return None
    from pynomaly.web.app import build_app
    from pynomaly.web.server import HttpServer, bind

    sock = bind(config.http_listen)
    return HttpServer(build_app(inference, config.max_message_bytes, security.tokens), sock,
                      config.http_listen.rpartition(":")[0],
                      security.certs.http_context() if security.certs is not None else None)


class Companions(Protocol):
    """Processes that live as long as the server (pynomaly.server.processes.ServingProcesses)."""

    async def start(self, port: int) -> str: ...  # the banner's line about them
    async def stop(self, grace: float) -> None: ...


async def serve(config: ServerConfig, starter: Callable[[ServerConfig], Awaitable[Running]] = start,
                companions: Companions | None = None, banner: bool = True) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully (ServerConfig.grace_s). `starter` builds and starts the
    server (pynomaly.server.processes' serving processes start a scoring one); `companions` start once it
    listens and stop with it."""
    running = await starter(config)
    host = config.listen.rsplit(":", 1)[0]
    log.info("pynomaly listening on %s:%d (store %s)", host, running.port, config.store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        processes = await companions.start(running.port) if companions is not None else ""
    except BaseException:
        await running.stop(0)
        raise
    if not banner:
        await stop.wait()
        await running.stop(config.grace_s, config.shutdown_delay_s)
        return
    tls = "-cacert CA.crt" if config.tls_cert else "-plaintext"
    print(
        f"Pynomaly is serving on {host}:{running.port} (model store: {config.store})\n"
        + processes +
        f"  health:  grpcurl {tls} {host}:{running.port} grpc.health.v1.Health/Check\n"
        f"  list:    grpcurl {tls} {host}:{running.port} list\n"
        f"  train:   pynomaly train --server {host}:{running.port} --name demo --algorithm iforest --data FILE.csv\n"
        f"  detect:  pynomaly detect --server {host}:{running.port} --model demo --data FILE.csv\n"
        f"  OIP v2:  inference.GRPCInferenceService on {host}:{running.port} (tritonclient, any KServe v2 client)\n"
        + (f"  REST:    curl {running.http.scheme}://{running.http.address}/v2/health/ready (Open Inference "
           "Protocol v2)\n"
           f"  console: {running.http.scheme}://{running.http.address}/ (the web console: models, training, "
           "scoring, explanations)\n"
           if running.http else "")
        + (f"  metrics: http://{host}:{running.metrics_port}/metrics\n" if running.metrics_port else "")
        + ("  tracing: on (OpenTelemetry, from the OTEL_* environment variables)\n"
           if running.dataplane.tracer.enabled else "")
        + (f"  TLS:     on{', clients need a certificate (mutual TLS)' if config.tls_client_ca else ''}\n"
           if config.tls_cert else "")
        + ("  auth:    bearer tokens from --auth-tokens (PYNOMALY_TOKEN for the CLI)\n" if config.auth_tokens else "")
        + (f"  probes:  grpc.health.v1 in plaintext on {(config.health_listen or '').rpartition(':')[0]}:"
           f"{running.health_port}\n"
           if running.health_server else "")
        + "Press Ctrl+C to stop.",
        flush=True,
    )
    await stop.wait()
    log.info("shutting down: not serving; new calls taken for %g s, calls in flight get %g s in all",
             config.shutdown_delay_s, config.grace_s)
    await asyncio.gather(running.stop(config.grace_s, config.shutdown_delay_s),
                         *([companions.stop(config.grace_s)] if companions is not None else []))
    log.info("stopped")
