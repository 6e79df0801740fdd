"""Health that Kubernetes' native gRPC probes can use (grpc.health.v1), for both engines.

- "liveness" is SERVING while the server answers at all: a liveness probe restarts a pod only when the process is
  stuck, never because storage is away (a restart would not bring it back).
- "" and each API service are SERVING only while the model store can be read: checked before the server serves and
  then every `interval` seconds, each check bounded by `timeout`. A readiness probe on "" thus takes a pod whose
  store is unreachable out of its Service's endpoints instead of letting it fail every call.

Checks run on a thread of their own, one at a time: a store that hangs costs one thread, never the default
executor that scoring and store reads share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from grpc_health.v1 import health, health_pb2

log = logging.getLogger("pynomaly.server")

LIVENESS = "liveness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class StoreReadiness:
    """Keeps the health statuses of `services` (and "") in step with whether `store.check()` succeeds."""

    def __init__(self, health_servicer: health.aio.HealthServicer, store: Any, services: Iterable[str],
                 interval: float = 10.0, timeout: float = 5.0, on_change: Callable[[bool], None] | None = None):
        self._health, self._store, self._on_change = health_servicer, store, on_change
        self._names = ("", *services)
        self._interval, self._timeout = interval, timeout
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pynomaly-readiness")
        self._pending: Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    async def start(self) -> None:
        """SERVING for liveness; the first store check decides the rest; then the checks go on in the background."""
        await self._health.set(LIVENESS, SERVING)
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="pynomaly-readiness")

    async def check(self) -> bool:
        """One check of the store; updates the statuses on a change and returns whether the store is readable."""
        problem = await self._probe()
        ready = problem is None
        if ready != self.ready or self._task is None:
            for name in self._names:
                await self._health.set(name, SERVING if ready else NOT_SERVING)
            if self._on_change is not None:
                self._on_change(ready)
            if ready and self._task is not None:
                log.warning("model store %s is readable again: ready", self._store)
            elif not ready:
                log.warning("model store %s cannot be read (%s): not ready until it can", self._store, problem)
        self.ready = ready
        return ready

    async def _probe(self) -> str | None:
        """None when the store answered, else what went wrong."""
        if self._pending is not None and not self._pending.done():
            return "the previous check has not returned"
        self._pending = self._executor.submit(self._store.check)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._pending), self._timeout)
        except TimeoutError:
            return f"no answer in {self._timeout:g} s"
        except Exception as e:  # noqa: BLE001 — any failure to read means not ready; the message says which
            return f"{type(e).__name__}: {e}"
        return None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
