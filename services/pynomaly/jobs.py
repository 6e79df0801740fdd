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
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from pynomaly import training
from pynomaly.errors import ResourceExhausted, unknown_job
from pynomaly.limits import Limits, check_new_version, check_queue, expired
from pynomaly.observability import tracing
from pynomaly.observability.metrics import NO_METRICS
from pynomaly.store import JobStore, ModelStore
from pynomaly.watch import Watchers
from pynomaly.workers import Stages, TrainingPool

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

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
        elif what == training.FIT_PROGRESS:  # watchers only: up to twice a second, and a restart ends the fit
            # anyway, so not worth a record write (an fsync, or an object store PUT) on the serving event loop
            job["fit_progress"] = detail
            self._watchers.notify(job)
        elif what == "start":
            self._update(job, state=RUNNING, start_time=time.time())
        else:
            self._update(job, stage=what, fit_progress=None)

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
