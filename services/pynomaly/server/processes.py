"""`pynomaly serve --workers N`: N processes serve one gRPC port, for machines with more cores than one Python
process can use (gRPC's Python front end runs on about one core).

Every process binds --listen with SO_REUSEPORT, so the kernel spreads new connections over them. The first process
(the primary) is the whole embedded server: it alone trains (so --train-workers bounds training for the machine),
runs batch jobs, serves the REST API, the console and metrics (its /metrics gathers every process's, labelled
`worker`: pynomaly.observability.gathered). The others (serving processes) score: Detect, DetectStream, Explain,
the Open Inference Protocol and health are theirs, over the same store (every call resolves
its model reference in the store, so a version deleted or an alias moved anywhere is seen at once). Every other
method — training and its jobs, batch jobs, the model registry — they forward as bytes to the primary over a
private Unix socket, with the caller's metadata (tokens, trace context) and deadline; the primary's answer, errors
and their details included, is returned as it is.

A serving process dies with the primary (pynomaly.lifeline); one that exits on its own is started again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pynomaly.dataplane import DataPlane
from pynomaly.jobs import JobManager
from pynomaly.runtime import LocalScoring, SessionCache
from pynomaly.server import app
from pynomaly.store import LocalStore, open_store
from pynomaly.v1 import detect_pb2, model_pb2, train_pb2

log = logging.getLogger(__name__)

# Methods a serving process forwards to the primary: the whole Train and Model services, and Detect's batch jobs.
_BATCH = ("CreateBatchDetectJob", "GetBatchDetectJob", "ListBatchDetectJobs", "CancelBatchDetectJob",
          "WatchBatchDetectJob")


def forwarded_methods() -> dict[str, tuple[bool, bool]]:
    """Full method name -> (client streaming, server streaming) of every method the primary alone serves."""
    methods = {}
    for service, only in ((train_pb2.DESCRIPTOR.services_by_name["TrainService"], None),
                          (model_pb2.DESCRIPTOR.services_by_name["ModelService"], None),
                          (detect_pb2.DESCRIPTOR.services_by_name["DetectService"], _BATCH)):
        for m in service.methods:
            if only is None or m.name in only:
                methods[f"/{service.full_name}/{m.name}"] = (m.client_streaming, m.server_streaming)
    return methods


def _metadata(context: grpc.aio.ServicerContext) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in context.invocation_metadata() or () if not k.startswith((":", "grpc-"))]


async def _abort(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError) -> None:
    await context.abort(error.code(), error.details() or "", tuple(error.trailing_metadata() or ()))


class Forward(grpc.aio.ServerInterceptor):
    """Serves the primary's methods by forwarding each call to it over `channel` (bytes in, bytes out). The
    outermost interceptor, before tracing, metrics and the token check (the primary runs those); an interceptor, not
    a handler, since grpc looks the methods of registered services up before any generic handler."""

    def __init__(self, channel: grpc.aio.Channel):
        self._channel = channel
        self._methods = forwarded_methods()

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        kind = self._methods.get(method)
        if kind is None:
            return await continuation(details)
        streaming_in, streaming_out = kind
        if not streaming_in and not streaming_out:
            return grpc.unary_unary_rpc_method_handler(self._unary(method))
        if not streaming_in:
            return grpc.unary_stream_rpc_method_handler(self._stream(method))
        raise NotImplementedError(f"{method}: no client-streaming method is forwarded")  # none in the protos

    def _unary(self, method: str) -> Callable[..., Any]:
        call = self._channel.unary_unary(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await call(request, metadata=_metadata(context), timeout=context.time_remaining())
            except grpc.aio.AioRpcError as e:
                await _abort(context, e)
                raise  # not reached: abort raises

        return forward

    def _stream(self, method: str) -> Callable[..., Any]:
        call = self._channel.unary_stream(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            responses = call(request, metadata=_metadata(context), timeout=context.time_remaining())
            try:
                async for response in responses:
                    yield response
            except grpc.aio.AioRpcError as e:
                await _abort(context, e)
            finally:
                responses.cancel()  # the caller went away: end the primary's stream too

        return forward


class _NoTraining:
    """A serving process's training pool: its job methods are forwarded to the primary, so nothing comes here."""

    events = None

    def submit(self, *_: Any) -> Any:
        raise RuntimeError("a serving process does not train: its training calls go to the primary")

    def warm_up(self) -> None:
        pass

    def cancel(self, future: Any) -> None:
        pass

    def renew(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class _PrimaryTrains(JobManager):
    def healthy(self) -> bool:
        """Training is the primary's (OIP's ServerReady there says whether it can)."""
        return True


async def start_scoring(config: app.ServerConfig) -> app.Running:
    """A serving process's server: the scoring services on config.listen, the rest forwarded to the primary."""
    tracer, metrics, interceptors = app.observability(config, None)
    store = open_store(config.store)
    sessions = SessionCache(store, config.threads, config.max_models, int(config.max_cache_mb * 2**20),
                            config.import_run_timeout_s)
    scoring = LocalScoring(sessions, offload_loads=not isinstance(store, LocalStore))
    jobs = _PrimaryTrains(store, store, _NoTraining(), tracer=tracer, metrics=metrics, limits=app.limits(config))
    dataplane = DataPlane(store, scoring, jobs, config.data_root, tracer=tracer, metrics=metrics)
    size = config.max_message_bytes
    channel = grpc.aio.insecure_channel(f"unix:{config.primary_socket}", options=[
        ("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)])
    # Forward comes first: a forwarded call is the primary's alone (its token check, its trace span, its metrics),
    # so it is checked, traced and counted once.
    running = await app.serve_dataplane(config, dataplane, [Forward(channel), *interceptors])
    if config.metrics_socket is not None:  # the primary's /metrics reads this process's registry here
        metrics.bind(sessions, None)
        await metrics.serve_unix(config.metrics_socket)
    return running


PROCESS_NAME = b"pynomaly-serve"  # a serving process's name in ps and /proc/PID/comm (Linux)


def _run(config: app.ServerConfig, primary: int, level: int) -> None:
    """A serving process's main."""
    import ctypes
    import sys

    from pynomaly import lifeline

    lifeline.die_with_parent(primary)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(15, PROCESS_NAME, 0, 0, 0)  # PR_SET_NAME
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s [serving {os.getpid()}] %(name)s: "
                        "%(message)s")
    asyncio.run(app.serve(config, starter=start_scoring, banner=False))


class ServingProcesses:
    """The primary's N - 1 serving processes: started once the primary listens, started again when one exits,
    stopped (SIGTERM, then SIGKILL after the grace period) with the primary."""

    def __init__(self, config: app.ServerConfig, count: int):
        self._config = config
        self._count = count
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[Any] = []
        self._watch: asyncio.Task[None] | None = None

    def _spawn(self, slot: int) -> Any:
        """Serving process `slot` (1 to N - 1): its number in the primary's metrics, kept across restarts."""
        config = self._serving
        if self._config.metrics_sources:
            config = dataclasses.replace(config, metrics_socket=dict(self._config.metrics_sources)[str(slot)])
        proc = self._ctx.Process(target=_run, args=(config, os.getpid(), logging.getLogger().level),
                                 name="pynomaly-serving", daemon=False)
        proc.start()
        return proc

    async def start(self, port: int) -> str:
        """Start them on the primary's port (from the event loop's thread, which lives as long as the server: see
        lifeline); the banner's line about them."""
        self._serving = serving_config(self._config, port)
        self._procs = [self._spawn(slot) for slot in range(1, self._count + 1)]
        self._watch = asyncio.get_running_loop().create_task(self._restart_exited())
        return (f"  workers: {self._count + 1} processes share the port (SO_REUSEPORT); this one (pid {os.getpid()}) "
                "trains, runs batch jobs and serves REST, the console and metrics\n")

    async def _restart_exited(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for i, proc in enumerate(self._procs):
                if proc.exitcode is not None:
                    log.warning("serving process %d exited (code %s); starting another", proc.pid, proc.exitcode)
                    self._procs[i] = self._spawn(i + 1)

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def stop(self, grace: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for proc in self._procs:
            if proc.exitcode is None:
                proc.terminate()
        deadline = asyncio.get_running_loop().time() + grace
        for proc in self._procs:
            while proc.exitcode is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            if proc.exitcode is None:
                proc.kill()
            proc.join(5)


def serving_config(config: app.ServerConfig, port: int) -> app.ServerConfig:
    """The serving processes' settings: the primary's, on the port it bound, without what the primary alone runs."""
    host = config.listen.rpartition(":")[0]
    return dataclasses.replace(config, listen=f"{host}:{port}", http_listen=None, metrics_port=None,
                               health_listen=None, workers=1, warm_up=False, primary_socket=config.private_socket,
                               private_socket=None, metrics_sources=())


async def serve(config: app.ServerConfig) -> None:
    """`pynomaly serve --workers N`: this process the primary, N - 1 serving processes beside it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pynomaly-") as private:  # mode 0700: this user's processes only
        # With metrics or the console on, serving process i hands its metrics to the primary on metrics-i.sock.
        sources = tuple((str(i), os.path.join(private, f"metrics-{i}.sock")) for i in range(1, config.workers)
                        if config.metrics_port is not None or config.http_listen is not None)
        primary = dataclasses.replace(config, private_socket=os.path.join(private, "primary.sock"),
                                      metrics_sources=sources)
        await app.serve(primary, companions=ServingProcesses(primary, config.workers - 1))
