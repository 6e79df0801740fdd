"""The Gateway deployment: our gRPC server inside the Serve application, scoring on Scorer replicas."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from grpc.aio import AioRpcError
from ray import serve
from ray.exceptions import ObjectLostError, OwnerDiedError, RayActorError, RaySystemError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, RequestCancelledError

from pynomaly.batch import BatchJobs, Roots
from pynomaly.dataplane import DataPlane
from pynomaly.errors import PynomalyError, Unavailable
from pynomaly.jobs import JobManager
from pynomaly.ray_engine.batch import RayDataEngine
from pynomaly.ray_engine.config import LIMIT_FIELDS, AppArgs
from pynomaly.ray_engine.jobs import RayPool
from pynomaly.ray_engine.scorer import model_id
from pynomaly.server.app import ServerConfig, limits, observability, serve_dataplane
from pynomaly.store import ModelStore, open_store

log = logging.getLogger("pynomaly.ray")


# What a call to a replica can meet when the replica (or the Ray machinery between) is gone or overloaded: retryable.
UNAVAILABLE = (BackPressureError, DeploymentUnavailableError, RequestCancelledError, RayActorError, ObjectLostError,
               OwnerDiedError, RaySystemError, AioRpcError)


@dataclass(frozen=True)
class RemoteModel:
    """A version scored on a replica: what the gateway's data plane checks calls against."""

    name: str
    version: int
    manifest: dict[str, Any]

    @property
    def n_features(self) -> int:
        return len(self.manifest["feature_names"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])


class ReplicaScoring:
    """The data plane's scoring port on Scorer replicas, through a deployment handle multiplexed by version.

    The gateway checks each call against the version's manifest (read from the shared store once); the replica
    loads the version and scores. A version deleted here stays on replicas until their LRU drops it: it is never
    routed to again, since references resolve against the store and a deleted number is never reused."""

    run_span = "scorer.detect"

    def __init__(self, scorer: Any, store: ModelStore):
        self._scorer = scorer
        self._store = store
        self._handles: dict[str, Any] = {}
        self._models: dict[tuple[str, int], RemoteModel] = {}

    def _handle(self, model: str) -> Any:
        handle = self._handles.get(model)
        if handle is None:
            if len(self._handles) > 1024:
                self._handles.clear()
            handle = self._handles[model] = self._scorer.options(multiplexed_model_id=model)
        return handle

    async def _call(self, method: str, model: RemoteModel, *args: Any) -> Any:
        response = getattr(self._handle(model_id(model.name, model.version)), method).remote(*args)
        try:
            result = await response
        except asyncio.CancelledError:
            response.cancel()  # the client went away or its deadline passed: stop the replica's work too
            raise
        except RayTaskError as e:
            # Our errors come back as they were raised; anything else is an internal error, logged here with the
            # replica's traceback, never sent to the client.
            if isinstance(e.cause, PynomalyError):
                raise e.cause from None
            raise RuntimeError(f"Scorer.{method} failed: {e}") from None
        except UNAVAILABLE as e:
            raise Unavailable(f"no scoring replica could take the call ({type(e).__name__}); retry") from None
        if isinstance(result, PynomalyError):  # the client's error, returned as a value by the Scorer
            raise result
        return result

    async def load(self, name: str, version: int) -> tuple[RemoteModel, None]:
        key = (name, version)
        model = self._models.get(key)
        if model is None:
            if len(self._models) > 4096:
                self._models.clear()
            manifest = await asyncio.to_thread(self._store.manifest, name, version)  # cached by the store too
            model = self._models[key] = RemoteModel(name, version, manifest)
        return model, None

    async def score(self, model: RemoteModel, X: np.ndarray) -> np.ndarray:
        return await self._call("detect", model, X)

    async def explain(self, model: RemoteModel, X: np.ndarray, method: str | None, deadline: float | None) -> Any:
        # A duration crosses the process boundary, not an instant: monotonic clocks differ between nodes.
        timeout = max(0.0, deadline - time.monotonic()) if deadline is not None else None
        return await self._call("explain", model, X, method, timeout)

    def evict(self, name: str, version: int) -> None:
        self._models.pop((name, version), None)


async def start_gateway(config: ServerConfig, store_uri: str, scorer: Any, train_cpus: float,
                        batch_engine: RayDataEngine | None = None) -> Any:
    """The Ray engine's composition: store, Ray-task training, scoring on replicas, batch jobs on Ray Data, and the
    shared gRPC front."""
    tracer, metrics, interceptors = observability(config, None)
    store = open_store(store_uri)
    store.sweep_staging()
    jobs = JobManager(store, store, RayPool(train_cpus), tracer=tracer, metrics=metrics, limits=limits(config))
    await jobs.start(warm_up=False)
    batch = BatchJobs(store.batch_jobs, batch_engine or RayDataEngine(store_uri),
                      Roots(config.data_root, config.output_root, store_uri), limits=jobs.limits)
    await batch.start()
    dataplane = DataPlane(store, ReplicaScoring(scorer, store), jobs, config.data_root, tracer=tracer,
                          metrics=metrics, batch=batch)
    if metrics.enabled:
        metrics.bind(None, jobs)
    return await serve_dataplane(config, dataplane, interceptors)


@serve.deployment(name="Gateway", num_replicas=1, ray_actor_options={"num_cpus": 0},
                  logging_config={"enable_access_log": False})
class Gateway:
    """Runs the gRPC server in a thread of its own with its own event loop, for the life of the replica."""

    def __init__(self, scorer: Any, args: dict[str, Any]):
        a = AppArgs(**args)
        config = ServerConfig(listen=a.listen, store=a.store,
                              data_root=Path(a.data_root) if a.data_root else None,
                              output_root=Path(a.output_root) if a.output_root else None,
                              max_message_bytes=int(a.max_message_mb * 1024 * 1024), metrics_port=a.metrics_port,
                              http_listen=a.http_listen, store_check_seconds=a.store_check_seconds,
                              grace_s=a.grace_s, shutdown_delay_s=a.shutdown_delay_s,
                              tls_cert=a.tls_cert, tls_key=a.tls_key, tls_client_ca=a.tls_client_ca,
                              health_listen=a.health_listen, auth_tokens=a.auth_tokens,
                              auth_reflection=a.auth_reflection,
                              **a.model_dump(include=set(LIMIT_FIELDS)))
        self._config = config
        self._running: Any = None
        self._loop = asyncio.new_event_loop()
        self._error: BaseException | None = None
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                engine = RayDataEngine(a.store, a.batch_actors, a.batch_cpus)
                self._running = self._loop.run_until_complete(start_gateway(config, a.store, scorer, a.train_cpus,
                                                                            engine))
            except BaseException as e:  # noqa: BLE001 — reported by __init__ below
                self._error = e
                return
            finally:
                started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="pynomaly-gateway", daemon=True)
        self._thread.start()
        started.wait()
        if self._error is not None:
            raise RuntimeError(f"the gateway could not start: {self._error}") from self._error
        host = config.listen.rsplit(":", 1)[0]
        self._address = f"{host}:{self._running.port}"
        port = self._running.metrics_port
        self._metrics_url = f"http://{host}:{port}/metrics" if port else ""
        http = self._running.http
        self._http_url = f"{http.scheme}://{http.address}" if http else ""
        log.info("pynomaly gateway serving on %s", self._address)

    def address(self) -> str:
        """Where the gRPC server listens (the port is the bound one when the config asked for 0)."""
        return self._address

    def metrics_url(self) -> str:
        """Where Prometheus scrapes the gateway ("" when metrics are off)."""
        return self._metrics_url

    def http_url(self) -> str:
        """Where the REST API is served ("" when --http-listen is off)."""
        return self._http_url

    def check_health(self) -> None:
        """Serve's replica health check (defining it replaces Serve's own): the replica is restarted when the
        server's thread has died, its event loop no longer answers, or the job-progress reader has stopped."""
        if not self._thread.is_alive():
            raise RuntimeError("the gateway's gRPC server thread has stopped")
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(timeout=5)
        if not self._running.dataplane.jobs.healthy():
            raise RuntimeError("the training-job progress reader has stopped")

    def __del__(self) -> None:
        running, loop = getattr(self, "_running", None), getattr(self, "_loop", None)
        if running is not None and loop is not None and loop.is_running():
            config = self._config  # Serve allows this replica grace_s + a margin (pynomaly.ray_engine.app)
            stop = running.stop(config.grace_s, config.shutdown_delay_s)
            asyncio.run_coroutine_threadsafe(stop, loop).result(timeout=config.grace_s + 5)
            loop.call_soon_threadsafe(loop.stop)
