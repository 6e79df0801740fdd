"""The Scorer deployment: Detect and Explain on onnxruntime, model versions multiplexed per replica."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from ray import serve

from pynomaly.errors import PynomalyError
from pynomaly.runtime import LocalScoring, SessionCache
from pynomaly.store import open_store


def model_id(name: str, version: int) -> str:
    """The multiplexed model id of a version: the unit a replica loads, and what Serve routes on."""
    return f"{name}@{version}"


class _Held:
    """A version in Serve's multiplexing LRU. Serve calls __del__ when it unloads the version; Python calls it
    again when the object goes: the flag makes the second call a no-op (a newer _Held may hold the version)."""

    def __init__(self, sessions: SessionCache, name: str, version: int):
        self._sessions, self._key, self._released = sessions, (name, version), False

    def __del__(self) -> None:
        if not self._released:
            self._released = True
            self._sessions.evict(*self._key)


@serve.deployment(name="Scorer", logging_config={"enable_access_log": False})
class Scorer:
    def __init__(self, store: str, max_models: int = 16, threads: int = 1, max_cache_mb: float | None = None,
                 run_timeout_s: float | None = None):
        self._store = open_store(store)
        # Serve's multiplexing LRU (below) decides which versions this replica holds, and routes by it: when it
        # drops a version, _Held.__del__ evicts its session. The session cache's own bound is only a backstop
        # (twice as large), since the two see calls in slightly different orders.
        # Bytes (--max-cache-mb) are bounded here only: Serve's LRU counts versions; a version this cache dropped
        # for its bytes is loaded again on its next call.
        self._sessions = SessionCache(self._store, threads, 2 * max_models,
                                      int(max_cache_mb * 2**20) if max_cache_mb else None, run_timeout_s)
        # Loads happen in a worker thread (below, and for explainers): a load reads the store (S3: a download).
        self._scoring = LocalScoring(self._sessions, offload_loads=True)
        sessions = self._sessions

        async def load_version(model: str) -> _Held:
            name, _, version = model.rpartition("@")
            # Off the replica's event loop: a load reads the store (S3: a download) and builds a session.
            await asyncio.to_thread(sessions.get, name, int(version))
            return _Held(sessions, name, int(version))

        # A plain function, not a bound method: Serve keeps its LRU as an attribute of the decorated object, and
        # the capacity is a constructor argument, so the decorator is applied here.
        self._load = serve.multiplexed(max_num_models_per_replica=max_models)(load_version)

    # The gateway has checked the rows against the version. Both calls return a client's error (method not offered,
    # deadline…) as a value rather than raising it: Serve would log a traceback for each and ship it to the
    # gateway. Anything else raises as usual.

    async def detect(self, X: np.ndarray) -> np.ndarray | PynomalyError:
        try:
            model = await self._version()
            return await self._scoring.score(model, X)
        except PynomalyError as e:
            return e

    async def explain(self, X: np.ndarray, method: str | None, timeout_s: float | None) -> Any:
        # A duration crosses the process boundary, not an instant: monotonic clocks differ between nodes.
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        try:
            model = await self._version()
            return await self._scoring.explain(model, X, method, deadline)
        except PynomalyError as e:
            return e

    async def _version(self) -> Any:
        """The version this call is routed for, loaded (Serve's multiplexing LRU holds it)."""
        model = serve.get_multiplexed_model_id()
        await self._load(model)
        name, _, version = model.rpartition("@")
        return (await self._scoring.load(name, int(version)))[0]

    def loaded(self) -> list[str]:
        """The versions this replica holds (tests and operators)."""
        return [model_id(m.name, m.version) for m in self._sessions.loaded()]
