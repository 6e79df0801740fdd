"""Training jobs: run in a pool off the event loop (worker processes here, Ray tasks in the Ray engine), job
records in the store.

Workers report their stage through a multiprocessing queue; a reader thread hands events to the event loop.
Only the event loop changes job records, so there is a single writer. The worker returns graph + manifest and
the loop writes the version, so a cancelled job's result is simply dropped.

Tracing: the worker has no tracer. It times its stages (wall clock: comparable across processes on one host) and
returns them with its result, or attached to its exception; the loop records them as children of the job's span.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import numpy as np

from pynomaly import lifeline, training
from pynomaly.errors import ResourceExhausted, unknown_job
from pynomaly.limits import Limits, check_new_version, check_queue, expired
from pynomaly.observability import tracing
from pynomaly.observability.metrics import NO_METRICS
from pynomaly.store import JobStore, ModelStore
from pynomaly.watch import Watchers

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

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
        if stage == training.CANDIDATE:  # a candidate of algorithm "auto" decided: news, not a stage
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
    """Where the embedded engine trains: spawned worker processes, progress through a multiprocessing queue."""

    def __init__(self, workers: int = 1):
        self._workers = workers
        self._ctx = multiprocessing.get_context("spawn")
        self.events = self._ctx.Queue()  # (job_id, stage) from the workers; None stops the reader
        self._cancelled = self._ctx.Array("c", CANCEL_SLOTS * CANCEL_ID_BYTES)  # see init_worker
        self._next_slot = 0
        self._job_ids: dict[int, str] = {}  # id(future) -> job id, while the job is queued or running
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # Workers are spawned by submit() on the event-loop thread, which lives as long as the server: the
        # parent-death signal (which follows the forking thread) is safe to set.
        return ProcessPoolExecutor(self._workers, mp_context=self._ctx, initializer=init_worker,
                                   initargs=(self.events, os.getpid(), self._cancelled))

    def submit(self, job_id: str, spec: training.TrainSpec, X: np.ndarray) -> Future[Any]:
        future = self._pool.submit(run_job, job_id, spec, X)
        self._job_ids[id(future)] = job_id
        future.add_done_callback(lambda f: self._job_ids.pop(id(f), None))
        return future

    def warm_up(self) -> None:
        for _ in range(self._workers):
            self._pool.submit(_warm_up)

    def cancel(self, future: Future[Any]) -> None:
        """A queued job never starts; a running one stops at its next stage or candidate (training.Cancelled)."""
        job_id = self._job_ids.get(id(future))
        if future.cancel() or job_id is None:
            return
        start = self._next_slot * CANCEL_ID_BYTES
        self._cancelled[start : start + CANCEL_ID_BYTES] = job_id.encode().ljust(CANCEL_ID_BYTES, b"\0")
        self._next_slot = (self._next_slot + 1) % CANCEL_SLOTS

    def renew(self) -> None:
        """A worker died (BrokenProcessPool): the executor is unusable, start a new one."""
        self._pool = self._new()

    def shutdown(self) -> None:
        """Stop now: queued jobs are dropped and running ones killed (the server is going; nothing would take
        their results, and the interpreter's exit would otherwise wait for the fit)."""
        processes = list(getattr(self._pool, "_processes", {}).values())  # no public handle before Python 3.14
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        self.events.put(None)


class JobManager:
    """Training jobs: submitted to `pool`, their records in `records`, their results written to `models`."""

    def __init__(self, models: ModelStore, records: JobStore, pool: TrainingPool, tracer: Any = tracing.NOOP,
                 metrics: Any = NO_METRICS, limits: Limits | None = None):
        self._models = models
        self.limits = limits or Limits()
        self._records = records
        self._tracer = tracer
        self._metrics = metrics
        self._spans: dict[str, Any] = {}
        self._pool = pool
        self._events = self._pool.events
        self._jobs: dict[str, dict[str, Any]] = {}
        self._futures: dict[str, Future[tuple[training.TrainedModel, Stages]]] = {}
        self._watchers = Watchers(TERMINAL)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._finishing: set[asyncio.Task[None]] = set()  # results being registered
        self._stopping = False

    async def start(self, warm_up: bool = True) -> None:
        """Recover job records left by a previous process, start the event reader, warm the workers."""
        self._loop = asyncio.get_running_loop()
        for job in self._records.list_jobs():
            if job["state"] not in TERMINAL:
                self._update(job, state=FAILED, stage="", end_time=time.time(),
                             message="interrupted by a server restart; submit the job again")
            self._jobs[job["id"]] = job
        self._prune()
        self._reader = threading.Thread(target=self._read_events, name="pynomaly-job-events", daemon=True)
        self._reader.start()
        if warm_up:
            self.warm_up()

    def warm_up(self) -> None:
        """Have the workers import the training libraries now rather than at the first job."""
        self._pool.warm_up()

    async def stop(self) -> None:
        """Stop the pool; results already being registered are written, and every job still queued or running
        is marked as interrupted (its record says so after a restart too). A second call does nothing."""
        if self._stopping:
            return
        self._stopping = True
        self._pool.shutdown()
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
        for job in self._jobs.values():
            if job["state"] not in TERMINAL:
                self._update(job, state=FAILED, stage="", end_time=time.time(),
                             message="interrupted by a server shutdown; submit the job again")
                self._observe(job, [], error=job["message"])

    def healthy(self) -> bool:
        """False once the thread that reads the workers' progress has stopped (their queue is gone)."""
        return self._reader is not None and self._reader.is_alive()

    def _read_events(self) -> None:
        while (event := self._events.get()) is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._on_event, *event)

    def _on_event(self, job_id: str, what: str, detail: Any = None) -> None:
        job = self._jobs.get(job_id)
        if job is None or job["state"] in TERMINAL:
            return
        if what == training.CANDIDATE:
            self._update(job, candidates=[*job.get("candidates", []), detail])
        elif what == "start":
            self._update(job, state=RUNNING, start_time=time.time())
        else:
            self._update(job, stage=what)

    def _update(self, job: dict[str, Any], **changes: Any) -> None:
        job.update(changes)
        self._records.save_job(job)
        self._watchers.notify(job)

    def check_room(self) -> None:
        """ResourceExhausted when --max-queued-jobs jobs are queued or running: each holds its rows in memory."""
        check_queue(sum(j["state"] not in TERMINAL for j in self._jobs.values()), self.limits.max_queued_jobs)

    def _prune(self) -> None:
        """Delete the finished records beyond --keep-jobs or older than --job-ttl-days (at start-up and with each
        new job, so the records never grow past the count; running jobs are never deleted)."""
        for job_id in expired(self._jobs.values(), TERMINAL, self.limits.keep_jobs, self.limits.job_ttl_s):
            del self._jobs[job_id]
            self._records.delete_job(job_id)

    def submit(self, spec: training.TrainSpec, X: np.ndarray) -> dict[str, Any]:
        self.check_room()
        job_id = f"job-{uuid.uuid4().hex[:16]}"
        spec.job_id = job_id
        job = {
            "id": job_id, "model_name": spec.model_name, "algorithm": spec.algorithm,
            "params": spec.given_params, "state": QUEUED, "stage": "", "message": "", "model_version": 0,
            "rows": int(X.shape[0]), "columns": int(X.shape[1]),
            "create_time": time.time(), "start_time": 0.0, "end_time": 0.0, "description": spec.description,
        }
        self._jobs[job_id] = job
        self._records.save_job(job)
        self._prune()
        # A child of the current (CreateTrainingJob) span that outlives it: the whole job in the caller's trace.
        self._spans[job_id] = self._tracer.start_span("training_job", {
            tracing.JOB_ID: job_id, tracing.MODEL_NAME: spec.model_name, tracing.ALGORITHM: spec.algorithm,
            tracing.ROWS: job["rows"], tracing.FEATURES: job["columns"],
        })
        future = self._pool.submit(job_id, spec, X)
        self._futures[job_id] = future
        future.add_done_callback(lambda f: self._done(job_id, f))
        return dict(job)

    def _done(self, job_id: str, future: Future[Any]) -> None:
        """On the pool's thread: hand the result to the loop, unless the server is stopping (stop() marks the
        job) or the loop is already closed. The coroutine is created on the loop, so none is left un-awaited."""
        if self._stopping or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._start_finish, job_id, future)
        except RuntimeError:  # the event loop is closed: the process is exiting
            pass

    def _start_finish(self, job_id: str, future: Future[Any]) -> None:
        if self._stopping:
            return
        task = asyncio.get_running_loop().create_task(self._finish(job_id, future))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, job_id: str, future: Future[tuple[training.TrainedModel, Stages]]) -> None:
        self._futures.pop(job_id, None)
        job = self._jobs[job_id]
        if job["state"] in TERMINAL or future.cancelled():
            return
        try:
            result, stages = future.result()
        except training.TrainingFailed as e:
            self._update(job, state=FAILED, stage="", message=str(e), end_time=time.time())
            self._observe(job, getattr(e, "stages", []), error=str(e))
            return
        except BrokenProcessPool:
            self._pool.renew()
            self._update(job, state=FAILED, stage="", end_time=time.time(),
                         message="the training worker died (out of memory?); submit the job again")
            self._observe(job, [], error=job["message"])
            return
        except Exception as e:
            error_id = uuid.uuid4().hex[:12]
            log.exception("training job %s failed (error id %s)", job_id, error_id)
            self._update(job, state=FAILED, stage="", end_time=time.time(),
                         message=f"internal error during training (error id {error_id}, see the server log)")
            self._observe(job, getattr(e, "stages", []), error=job["message"])
            return
        try:  # other versions may have been written since the job was accepted
            await asyncio.to_thread(check_new_version, self._models, job["model_name"], self.limits)
        except ResourceExhausted as e:
            self._update(job, state=FAILED, stage="", message=f"not registered: {e}", end_time=time.time())
            self._observe(job, stages, error=job["message"])
            return
        self._update(job, stage="register")
        register_start = time.time_ns()
        version = await asyncio.to_thread(self._models.create_version, job["model_name"], result.onnx_model,
                                          result.manifest, result.arrays)
        stages.append(("register", register_start, time.time_ns()))
        if job["state"] == CANCELLED:  # cancelled while the version was being written: take it back
            await asyncio.to_thread(self._models.delete_version, job["model_name"], version)
            return
        final = {"candidates": result.manifest["candidates"]} if "candidates" in result.manifest else {}
        self._update(job, state=SUCCEEDED, stage="", model_version=version, end_time=time.time(),
                     message=f"trained {job['model_name']}@{version}", **final)  # "auto": weights known at the end
        self._observe(job, stages)

    def _observe(self, job: dict[str, Any], stages: Stages, error: str | None = None) -> None:
        """End the job's span, with the stages as children timed by the worker; record the stage durations."""
        self._metrics.observe_training(job["algorithm"], stages)
        span = self._spans.pop(job["id"], None)
        if span is None:
            return
        for stage, start_ns, end_ns in stages:
            self._tracer.record(stage, span, start_ns, end_ns)
        span.set_attributes({tracing.JOB_STATE: job["state"], tracing.MODEL_VERSION: job["model_version"]})
        self._tracer.end(span, error)

    def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in list(self._jobs.values()):
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        return counts

    def get(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            job = self._records.load_job(job_id)
        return dict(job)

    def list(self, model_name: str = "", limit: int = 100) -> list[dict[str, Any]]:
        jobs = [j for j in self._jobs.values() if not model_name or j["model_name"] == model_name]
        jobs.sort(key=lambda j: j["create_time"], reverse=True)
        return [dict(j) for j in jobs[:limit]]

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise unknown_job("training job", job_id)
        if job["state"] not in TERMINAL:
            future = self._futures.get(job_id)
            if future is not None:
                self._pool.cancel(future)
            self._update(job, state=CANCELLED, stage="", end_time=time.time(), message="cancelled by a client")
            self._observe(job, [])
        return dict(job)

    def watch(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """The job's record now, then every change until it ends (NotFound at once for an unknown id)."""
        return self._watchers.watch(self.get(job_id))
