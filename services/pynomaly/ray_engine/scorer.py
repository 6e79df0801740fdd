"""The Scorer deployment: Detect and Explain on onnxruntime, model versions multiplexed per replica."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ray import serve

from pynomaly.dataplane import DataPlane, DetectResult
from pynomaly.errors import PynomalyError
from pynomaly.registry import open_store
from pynomaly.runtime import SessionCache


def model_id(name: str, version: int) -> str:
    """The multiplexed model id of a version: the unit a replica loads, and what Serve routes on."""
    return f"{name}@{version}"


@serve.deployment(name="Scorer", logging_config={"enable_access_log": False})
class Scorer:
    def __init__(self, store: str, max_models: int = 16, threads: int = 1):
        self._store = open_store(store)
        # The same capacity as Serve's multiplexing LRU below: every call touches both in the same order, so they
        # hold the same versions.
        self._sessions = SessionCache(self._store, threads, max_models)
        self._dp = DataPlane(self._store, self._sessions, jobs=None)
        sessions = self._sessions

        async def load_version(model: str) -> Any:
            name, _, version = model.rpartition("@")
            return sessions.get(name, int(version))

        # A plain function, not a bound method: Serve keeps its LRU as an attribute of the decorated object, and
        # the capacity is a constructor argument, so the decorator is applied here.
        self._load = serve.multiplexed(max_num_models_per_replica=max_models)(load_version)

    # Both calls return a client's error (bad width, NaN, method not offered…) as a value rather than raising it:
    # Serve would log a traceback for each and ship it to the gateway. Anything else raises as usual.

    async def detect(self, X: np.ndarray, threshold: float | None) -> DetectResult | PynomalyError:
        model = serve.get_multiplexed_model_id()
        try:
            await self._load(model)
            return await self._dp.detect(model, X, threshold)
        except PynomalyError as e:
            return e

    async def explain(self, X: np.ndarray, top_k: int, method: str | None, timeout_s: float | None) -> Any:
        model = serve.get_multiplexed_model_id()
        # A duration crosses the process boundary, not an instant: monotonic clocks differ between nodes.
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        try:
            await self._load(model)
            return await self._dp.explain(model, X, top_k, method, deadline)
        except PynomalyError as e:
            return e

    def loaded(self) -> list[str]:
        """The versions this replica holds (tests and operators)."""
        return [model_id(m.name, m.version) for m in self._sessions.loaded()]
