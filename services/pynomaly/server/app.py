"""The embedded engine: one grpc.aio process, onnxruntime in-process, training in a process pool."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pynomaly.dataplane import DataPlane
from pynomaly.jobs import JobManager
from pynomaly.registry import LocalStore
from pynomaly.runtime import SessionCache
from pynomaly.server.servicers import DetectServicer, ExplainServicer, ModelServicer, TrainServicer
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
    store: Path = Path("var/store")
    # Directory that CreateTrainingJob's data_uri may read from; None disables data_uri.
    data_root: Path | None = None
    train_workers: int = 1
    # Threads scoring one large batch in parallel chunks (onnxruntime sessions themselves are single-threaded).
    threads: int = min(2, os.cpu_count() or 1)
    max_models: int = 64
    # Larger requests get RESOURCE_EXHAUSTED from gRPC itself.
    max_message_bytes: int = 64 * 1024 * 1024
    warm_up: bool = True


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    dataplane: DataPlane
    health: health.aio.HealthServicer

    async def stop(self, grace: float | None = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.dataplane.jobs.stop()


async def start(config: ServerConfig, extra_handlers: Iterable[grpc.GenericRpcHandler] = ()) -> Running:
    """Build the embedded platform, bind it and start serving. `extra_handlers` serve benchmarks only."""
    store = LocalStore(config.store)
    store.sweep_staging()
    jobs = JobManager(store, workers=config.train_workers)
    await jobs.start(warm_up=config.warm_up)
    dataplane = DataPlane(store, SessionCache(store, config.threads, config.max_models), jobs,
                          config.data_root)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
        handlers=list(extra_handlers),
    )
    train_pb2_grpc.add_TrainServiceServicer_to_server(TrainServicer(dataplane), server)
    model_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(dataplane), server)
    detect_pb2_grpc.add_DetectServiceServicer_to_server(DetectServicer(dataplane), server)
    explain_pb2_grpc.add_ExplainServiceServicer_to_server(ExplainServicer(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    try:
        port = server.add_insecure_port(config.listen)
    except RuntimeError as e:
        await jobs.stop()
        raise OSError(f"cannot listen on {config.listen}: {e}") from None
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return Running(server, port, dataplane, health_servicer)


async def serve(config: ServerConfig) -> None:
    """Run until SIGINT/SIGTERM, then drain for a few seconds."""
    running = await start(config)
    host = config.listen.rsplit(":", 1)[0]
    log.info("pynomaly listening on %s:%d (store %s)", host, running.port, config.store.resolve())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"Pynomaly is serving on {host}:{running.port} (model store: {config.store})\n"
        f"  health:  grpcurl -plaintext {host}:{running.port} grpc.health.v1.Health/Check\n"
        f"  list:    grpcurl -plaintext {host}:{running.port} list\n"
        f"  train:   pynomaly train --server {host}:{running.port} --name demo --algorithm iforest --data FILE.csv\n"
        f"  detect:  pynomaly detect --server {host}:{running.port} --model demo --data FILE.csv\n"
        "Press Ctrl+C to stop.",
        flush=True,
    )
    await stop.wait()
    log.info("shutting down")
    await running.stop()
