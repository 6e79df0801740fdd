"""Where training runs: the embedded engine's worker processes (`ProcessPool`), and what a worker does with a job
(`run_job`, also run by the Ray engine's tasks). pynomaly.jobs submits to a pool and keeps the records.

Workers report their stage through a multiprocessing queue (`init_worker`); a job cancelled while running stops
at its next report, seen through shared memory.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

import numpy as np

from pynomaly import lifeline, training

log = logging.getLogger(__name__)

_progress: Any = None  # the worker's end of the progress queue
_cancelled: Any = None  # the worker's view of ProcessPool's cancelled job ids (shared memory), or None
# ProcessPool's shared record of the jobs cancelled while running: a ring of this many job ids, each NUL-padded.
CANCEL_SLOTS, CANCEL_ID_BYTES = 64, 32


def init_worker(queue: Any, server_pid: int | None = None, cancelled: Any = None) -> None:
    """Where this worker's progress goes (`queue.put((job_id, stage[, detail]))`); with `server_pid` (a pool's worker
    process), the worker ends when that server process does, even mid-fit (pynomaly.lifeline); `cancelled`: the
    ids of jobs cancelled while running, which stop at their next progress report (training.Cancelled)."""
    global _progress, _cancelled
    _progress = queue
    _cancelled = cancelled
    if server_pid is not None:
        lifeline.die_with_parent(server_pid)


def _check_cancelled(job_id: str) -> None:
    if _cancelled is not None and job_id.encode() in _cancelled.raw:
        raise training.Cancelled(job_id)


Stages = list[tuple[str, int, int]]  # (stage, start, end) in time.time_ns()


def run_job(job_id: str, spec: training.TrainSpec, X: np.ndarray) -> tuple[training.TrainedModel, Stages]:
    stages: list[list[Any]] = []

    def progress(stage: str, detail: Any = None) -> None:
        _check_cancelled(job_id)
        if stage in (training.CANDIDATE, training.FIT_PROGRESS):  # news within the fit, not a stage
            _progress.put((job_id, stage, detail))
            return
        now = time.time_ns()
        if stages:
            stages[-1][2] = now
        stages.append([stage, now, now])
        _progress.put((job_id, stage))

    def timed() -> Stages:
        if stages:
            stages[-1][2] = time.time_ns()
        return [(str(a), int(b), int(c)) for a, b, c in stages]

    _progress.put((job_id, "start"))
    try:
        model = training.train(spec, X, progress=progress)
    except Exception as e:
        e.stages = timed()  # type: ignore[attr-defined]  # pickled with the exception (its __dict__)
        raise
    return model, timed()


def _warm_up() -> None:
    """A worker's first task, submitted as soon as the server's ports are bound: the default algorithm's stack
    now, the slower rest on a thread (a job queued meanwhile waits seconds, not for numba and torch)."""
    training.warm_up()
    threading.Thread(target=_warm_up_more, name="pynomaly-warm-up", daemon=True).start()


def _warm_up_more() -> None:
    """training.warm_up_more at the lowest CPU priority (Linux: a thread's own nice value): the first Detect and
    the first job, often arriving in the same seconds, get the cores first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux
        pass
    training.warm_up_more()


class TrainingPool(Protocol):
    """Where training runs: `ProcessPool` (the embedded engine) or `pynomaly.ray_engine.jobs.RayPool` (Ray tasks).
    A submitted job runs `run_job`; its progress arrives on `events` as (job_id, stage), None when the pool stops."""

    events: Any  # .get() blocks for the next event

    def submit(self, job_id: str, spec: training.TrainSpec, X: np.ndarray) -> Future[Any]: ...
    def warm_up(self) -> None: ...
    def cancel(self, future: Future[Any]) -> None: ...
    def renew(self) -> None: ...
    def shutdown(self) -> None: ...


class ProcessPool:
    """Where the embedded engine trains: spawned worker processes, progress through a multiprocessing queue.

    Workers hold the training stack (PyOD, scikit-learn, torch: ~400 MB each), which serving never needs: after
    `idle_s` seconds with nothing to run they exit, and the next job starts them again (the stack's import, ~3 s,
    is then part of that job). `idle_s` 0 keeps them for the server's life."""

    def __init__(self, workers: int = 1, idle_s: float = 0.0):
        self._workers = workers
        self._idle_s = idle_s
        self._ctx = multiprocessing.get_context("spawn")
        self.events = self._ctx.Queue()  # (job_id, stage) from the workers; None stops the reader
        self._cancelled = self._ctx.Array("c", CANCEL_SLOTS * CANCEL_ID_BYTES)  # see init_worker
        self._next_slot = 0
        self._job_ids: dict[int, str] = {}  # id(future) -> job id, while the job is queued or running
        self._lock = threading.Lock()  # guards the members below (done callbacks and the idle timer are threads)
        self._pool: ProcessPoolExecutor | None = None  # None: no worker runs (not yet, or retired when idle)
        self._busy = 0  # tasks submitted and not done
        self._timer: threading.Timer | None = None

    def _new(self) -> ProcessPoolExecutor:
        # Workers are spawned by submit() on the event-loop thread, which lives as long as the server: the
        # parent-death signal (which follows the forking thread) is safe to set.
        return ProcessPoolExecutor(self._workers, mp_context=self._ctx, initializer=init_worker,
                                   initargs=(self.events, os.getpid(), self._cancelled))

    def _run(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pool is None:
                self._pool = self._new()
            future = self._pool.submit(fn, *args)
            self._busy += 1
        future.add_done_callback(self._task_done)
        return future

    def _task_done(self, _: Future[Any]) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy or not self._idle_s or self._pool is None:
                return
            self._timer = threading.Timer(self._idle_s, self._retire, args=(self._pool,))
            self._timer.daemon = True
            self._timer.start()

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        """The idle timer: the workers exit (nothing queued or running), unless work came meanwhile."""
        with self._lock:
            if self._busy or self._pool is not pool:
                return
            self._pool, self._timer = None, None
        pool.shutdown(wait=False)
        log.info("training workers stopped after %g s idle; the next job starts them again", self._idle_s)

    @property
    def running(self) -> bool:
        """Whether worker processes are up (or being started): False before the first task and once retired."""
        return self._pool is not None

    def submit(self, job_id: str, spec: training.TrainSpec, X: np.ndarray) -> Future[Any]:
        future = self._run(run_job, job_id, spec, X)
        self._job_ids[id(future)] = job_id
        future.add_done_callback(lambda f: self._job_ids.pop(id(f), None))
        return future

    def warm_up(self) -> None:
        for _ in range(self._workers):
            self._run(_warm_up)

    def cancel(self, future: Future[Any]) -> None:
        """A queued job never starts; a running one stops at its next stage, candidate or reported epoch
        (training.Cancelled)."""
        job_id = self._job_ids.get(id(future))
        if future.cancel() or job_id is None:
            return
        start = self._next_slot * CANCEL_ID_BYTES
        self._cancelled[start : start + CANCEL_ID_BYTES] = job_id.encode().ljust(CANCEL_ID_BYTES, b"\0")
        self._next_slot = (self._next_slot + 1) % CANCEL_SLOTS

    def renew(self) -> None:
        """A worker died (BrokenProcessPool): the executor is unusable, the next task starts a new one."""
        with self._lock:
            self._pool = None

    def shutdown(self) -> None:
        """Stop now: queued jobs are dropped and running ones killed (the server is going; nothing would take
        their results, and the interpreter's exit would otherwise wait for the fit)."""
        with self._lock:
            pool, self._pool = self._pool, None
            if self._timer is not None:
                self._timer.cancel()
        if pool is not None:
            processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.kill()
        self.events.put(None)
