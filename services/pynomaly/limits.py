"""Limits: what keeps a client from exhausting the server. Each is a `pynomaly serve` flag (README, "Limits").

The checks here are plain functions over the store and job records, shared by both engines: the data plane and
the JobManager call them (queued jobs, versions per model, store size, Kernel SHAP time, job records), the session
cache bounds itself (runtime.py), and `timed_run` bounds one onnxruntime run of an imported graph.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from pynomaly.errors import DeadlineExceeded, ResourceExhausted

DAY_S = 86_400.0


@dataclass(frozen=True)
class Limits:
    """The limits the data plane and the JobManager enforce (the session cache takes its own)."""

    max_queued_jobs: int = 16  # training jobs queued or running at once
    max_versions_per_model: int = 100
    max_store_mb: float | None = None  # MiB under models/; None: the store may grow without bound
    explain_timeout_s: float = 30.0  # Kernel SHAP's deadline when the client sets none
    import_run_timeout_s: float = 10.0  # one onnxruntime run of an imported graph (the import's probe runs too)
    keep_jobs: int = 1000  # finished job records kept, of each kind (training, batch)
    job_ttl_s: float = 30 * DAY_S  # finished job records older than this are deleted


def check_queue(active: int, limit: int) -> None:
    """Refuse one more training job when `active` (queued or running) have reached `limit`."""
    if active >= limit:
        raise ResourceExhausted(
            f"{active} training jobs are queued or running, the most this server takes (--max-queued-jobs "
            f"{limit}); wait for some to finish, or cancel some", reason="QUEUE_FULL"
        )


def check_new_version(store: Any, name: str, limits: Limits) -> None:
    """Refuse a new version of `name` (a training job, an import) when the model or the store is full.
    RESOURCE_EXHAUSTED rather than FAILED_PRECONDITION: a quota is reached, as in the design's error table."""
    count = len(store.versions(name))
    if count >= limits.max_versions_per_model:
        raise ResourceExhausted(
            f"model {name!r} has {count} versions, the most this server keeps (--max-versions-per-model "
            f"{limits.max_versions_per_model}); delete old ones", reason="TOO_MANY_VERSIONS"
        )
    if limits.max_store_mb is not None:
        size = store.size_bytes()
        if size >= limits.max_store_mb * 2**20:
            raise ResourceExhausted(
                f"the model store holds {size / 2**20:.3g} MiB, the most this server keeps (--max-store-mb "
                f"{limits.max_store_mb:g}); delete old versions", reason="STORE_FULL"
            )


def expired(jobs: Iterable[dict[str, Any]], terminal: frozenset[str], keep: int, ttl_s: float,
            now: float | None = None) -> list[str]:
    """Ids of the finished job records to delete: beyond the `keep` newest finished ones, or finished more than
    `ttl_s` ago. Queued and running jobs are never deleted."""
    now = time.time() if now is None else now
    done = sorted((j for j in jobs if j["state"] in terminal), key=_finished, reverse=True)
    return [j["id"] for i, j in enumerate(done) if i >= keep or now - _finished(j) > ttl_s]


def _finished(job: dict[str, Any]) -> float:
    return float(job.get("end_time") or job.get("create_time") or 0.0)


class _Watchdog:
    """One thread that sets `terminate` on onnxruntime runs past their time (a Timer thread per run would cost a
    thread start on every call of an imported graph). Finished runs are dropped lazily: the heap is rebuilt when
    most of it is finished runs."""

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [due, order, RunOptions or None once the run has finished]
        self._finished = 0
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, options: ort.RunOptions, seconds: float) -> list[Any]:
        entry = [time.monotonic() + seconds, next(self._order), options]
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pynomaly-run-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return entry

    def done(self, entry: list[Any]) -> None:
        with self._wake:
            if entry[2] is not None:
                entry[2] = None
                self._finished += 1
                if self._finished > 64 and 2 * self._finished > len(self._heap):
                    self._heap = [e for e in self._heap if e[2] is not None]
                    heapq.heapify(self._heap)
                    self._finished = 0

    def _run(self) -> None:
        with self._wake:
            while True:
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                if entry[2] is None:
                    self._finished -= 1
                else:
                    entry[2].terminate = True
                    entry[2] = None  # out of the heap: `done` has nothing to count


_WATCHDOG = _Watchdog()


class RunTimedOut(DeadlineExceeded):
    """An imported graph's onnxruntime run went past --import-run-timeout-s and was stopped."""


def timed_run(session: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray],
              seconds: float, what: str) -> list[Any]:
    """session.run, stopped after `seconds` (onnxruntime checks its terminate flag between kernels and between a
    Loop's iterations; one kernel that never returns is not stopped). Raises RunTimedOut naming `what`."""
    options = ort.RunOptions()
    options.log_severity_level = 4  # the terminated run is ours to report, not onnxruntime's to log as an error
    entry = _WATCHDOG.watch(options, seconds)
    started = time.monotonic()
    try:
        return session.run(outputs, feeds, options)
    except Exception as e:
        if options.terminate and "terminate" in str(e):
            raise RunTimedOut(
                f"{what} ran for {time.monotonic() - started:.3g} s and was stopped: one run of an imported graph "
                f"may take at most {seconds:g} s on this server (--import-run-timeout-s)"
            ) from None
        raise
    finally:
        _WATCHDOG.done(entry)
