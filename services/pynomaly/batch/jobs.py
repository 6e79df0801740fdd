"""Batch scoring jobs: the engine port, the run of one job, and the records, progress, watch and cancel of all.

A job's life. CreateBatchDetectJob checks what it can (plan.make_plan) and reserves the output's partial file. The
job waits for a slot (one runs at a time: a job already keeps every scoring thread, or the Ray cluster, busy). A
worker thread then pulls the output's chunks from the engine, in input order, writes them and reports progress to
the event loop, which alone changes the records (one writer, as for training jobs; records are saved in order on a
thread of their own, off the loop). The output is committed last, under a lock that cancel takes too: a cancelled
job never commits, a committing one is not cancelled. A failure or a cancel discards the partial output.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, Protocol

import pyarrow.compute as pc

from pynomaly.batch import tables
from pynomaly.batch.locations import discard_partial
from pynomaly.batch.plan import BatchPlan, BatchRequest, Roots, make_plan
from pynomaly.errors import PynomalyError, unknown_job
from pynomaly.limits import Limits, expired
from pynomaly.store import JobStore
from pynomaly.store.base import check_job_id
from pynomaly.watch import Watchers

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
NOTIFY_S = 0.25  # progress reaches watchers at most this often
SAVE_S = 2.0  # and the record in the store (state changes: at once)
CANCEL_WAIT_S = 30.0  # how long Cancel waits for the work to stop and the partial output to go


class BatchEngine(Protocol):
    """Where a batch job's rows are scored: `batch.embedded.ThreadEngine` (this process's onnxruntime sessions on
    worker threads) or `ray_engine.batch.RayDataEngine` (Ray Data over an actor pool).

    `score` is called in the job's worker thread, off the event loop. It yields the output's chunks (the plan's kept
    columns, anomaly_score, is_anomaly) in input order, each with the share of the input read so far (0 when not
    known), raises InvalidArgument naming the row of a bad row, and stops its work when closed early (cancel)."""

    def score(self, plan: BatchPlan) -> Generator[tuple[tables.Table, float], None, None]: ...


class Cancelled(Exception):
    """The job was cancelled (or the server is stopping): its output is discarded."""


class Control:
    """Shared by a job's worker thread and the event loop: cancel and commit exclude each other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cancelled = False
        self.committed = False

    def cancel(self) -> bool:
        """Stop the job; False if it has committed its output already (it then succeeds)."""
        with self._lock:
            if not self.committed:
                self.cancelled = True
            return self.cancelled

    def commit(self, plan: BatchPlan) -> None:
        with self._lock:
            if self.cancelled:
                raise Cancelled()
            assert plan.output is not None
            plan.output.commit()
            self.committed = True


def run(plan: BatchPlan, engine: BatchEngine, control: Control,
        report: Callable[[int, int, float], None]) -> tuple[int, int]:
    """Score the plan's input into its output (blocking); (rows, rows flagged). The output is committed, or
    discarded whatever the reason it was not."""
    output = plan.output
    assert output is not None
    writer = tables.TableWriter(output.sink, plan.target.suffix, plan.metadata)
    rows = flagged = 0
    try:
        with closing(engine.score(plan)) as chunks:  # closed early (cancel, a failure): the engine stops
            for chunk, fraction in chunks:
                if control.cancelled:
                    raise Cancelled()
                writer.write(chunk)
                rows += chunk.num_rows
                flagged += int(pc.sum(chunk.column(tables.FLAG)).as_py() or 0)
                report(rows, flagged, fraction)
        writer.close()
        control.commit(plan)
    except BaseException:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 — the output is thrown away: only its file handle matters
            pass
        output.discard()
        raise
    return rows, flagged


def _record(job_id: str, request: BatchRequest, plan: BatchPlan) -> dict[str, Any]:
    return {
        "id": job_id, "model": request.model, "model_name": plan.model_name, "model_version": plan.model_version,
        "input_uri": request.input_uri, "output_uri": request.output_uri, "state": QUEUED, "rows_done": 0,
        "rows_total": plan.layout.rows, "rows_per_second": 0.0, "eta_seconds": 0.0, "message": "",
        "create_time": time.time(), "start_time": 0.0, "end_time": 0.0, "threshold": plan.threshold,
        "anomalies": 0, "id_column": request.id_column, "pass_through": request.pass_through,
        "overwrite": request.overwrite,
        "output_url": plan.target.url,  # not in the API: where a crash's partial output is looked for at restart
    }


class BatchJobs:
    """Batch jobs run by `engine`, their records in `records` (the store's batch_jobs, apart from training jobs)."""

    def __init__(self, records: JobStore, engine: BatchEngine, roots: Roots, slots: int = 1,
                 limits: Limits | None = None):
        self._records = records
        self._limits = limits or Limits()  # keep_jobs and job_ttl_s: how many finished records stay
        self._engine = engine
        self._roots = roots
        self._slots_n = slots
        self._jobs: dict[str, dict[str, Any]] = {}
        self._controls: dict[str, Control] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watchers = Watchers(TERMINAL)
        self._shown: dict[str, tuple[float, float]] = {}  # job id -> (last notified, last saved)
        self._saver = ThreadPoolExecutor(1, thread_name_prefix="pynomaly-batch-records")  # in order, off the loop
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Recover the records a previous process left: a job it was running failed, and its partial output goes."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self._slots_n)
        for job in await asyncio.to_thread(self._records.list_jobs):
            if job["state"] not in TERMINAL:
                try:
                    await asyncio.to_thread(discard_partial, job["output_url"], job["id"])
                except Exception:  # noqa: BLE001 — the record must still be marked; the leftover is invisible
                    log.warning("batch job %s: could not remove its partial output", job["id"], exc_info=True)
                self._update(job, state=FAILED, eta_seconds=0.0, end_time=time.time(),
                             message="interrupted by a server restart; submit the job again")
            self._jobs[job["id"]] = job
        self._prune()

    async def stop(self) -> None:
        """Stop the running and queued jobs (FAILED, their partial outputs removed) and flush the records."""
        for job_id, control in list(self._controls.items()):
            job = self._jobs[job_id]
            if job["state"] not in TERMINAL and control.cancel():
                self._update(job, state=FAILED, eta_seconds=0.0, end_time=time.time(),
                             message="interrupted: the server stopped; submit the job again")
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)
        self._saver.shutdown(wait=True)

    # --- create and run ---

    async def create(self, request: BatchRequest, model_name: str, model_version: int,
                     manifest: dict[str, Any]) -> dict[str, Any]:
        job_id = f"batch-{uuid.uuid4().hex[:16]}"
        plan = await asyncio.to_thread(make_plan, job_id, request, model_name, model_version, manifest, self._roots)
        job = _record(job_id, request, plan)
        self._jobs[job_id] = job
        self._save(job)
        self._prune()
        control = self._controls[job_id] = Control()
        self._tasks[job_id] = asyncio.create_task(self._run(job, plan, control), name=f"pynomaly-{job_id}")
        return dict(job)

    async def _run(self, job: dict[str, Any], plan: BatchPlan, control: Control) -> None:
        assert self._loop is not None and plan.output is not None
        loop, job_id = self._loop, job["id"]

        def report(rows: int, flagged: int, fraction: float) -> None:
            loop.call_soon_threadsafe(self._progress, job, rows, flagged, fraction)

        try:
            async with self._slots:
                if control.cancelled:
                    return
                self._update(job, state=RUNNING, start_time=time.time(),
                             message=f"scoring with {plan.model_name}@{plan.model_version}")
                try:
                    rows, flagged = await asyncio.to_thread(run, plan, self._engine, control, report)
                except Cancelled:
                    return
                except PynomalyError as e:
                    self._fail(job, str(e))
                except Exception:
                    error_id = uuid.uuid4().hex[:12]
                    log.exception("batch job %s failed (error id %s)", job_id, error_id)
                    self._fail(job, f"internal error during batch scoring (error id {error_id}, see the server log)")
                else:
                    self._update(job, state=SUCCEEDED, rows_done=rows, rows_total=rows, anomalies=flagged,
                                 eta_seconds=0.0, end_time=time.time(),
                                 message=f"scored {rows} rows with {plan.model_name}@{plan.model_version}: "
                                         f"{flagged} anomalous")
        finally:
            self._tasks.pop(job_id, None)
            self._controls.pop(job_id, None)
            self._shown.pop(job_id, None)
            if not control.committed:  # a job cancelled while queued never ran: its reserved file goes here
                await asyncio.to_thread(plan.output.discard)

    def _fail(self, job: dict[str, Any], message: str) -> None:
        if job["state"] not in TERMINAL:
            self._update(job, state=FAILED, message=message, eta_seconds=0.0, end_time=time.time())

    # --- records and watchers ---

    def _progress(self, job: dict[str, Any], rows: int, flagged: int, fraction: float) -> None:
        if job["state"] != RUNNING:
            return
        now = time.time()
        elapsed = max(now - job["start_time"], 1e-9)
        rate = rows / elapsed
        total = job["rows_total"]
        if total:
            eta = (total - rows) / rate if rate else 0.0
        else:
            eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else 0.0
        job.update(rows_done=rows, anomalies=flagged, rows_per_second=rate, eta_seconds=max(eta, 0.0))
        notified, saved = self._shown.get(job["id"], (0.0, 0.0))
        if now - notified >= NOTIFY_S:
            self._notify(job)
            notified = now
        if now - saved >= SAVE_S:
            self._save(job)
            saved = now
        self._shown[job["id"]] = (notified, saved)

    def _update(self, job: dict[str, Any], **changes: Any) -> None:
        job.update(changes)
        self._save(job)
        self._notify(job)

    def _prune(self) -> None:
        """Delete the finished records beyond --keep-jobs or older than --job-ttl-days, on the saver thread (after
        their last save); at start-up and with each new job. Running jobs are never deleted."""
        for job_id in expired(self._jobs.values(), TERMINAL, self._limits.keep_jobs, self._limits.job_ttl_s):
            del self._jobs[job_id]
            self._saver.submit(self._records.delete_job, job_id)

    def _save(self, job: dict[str, Any]) -> None:
        try:
            self._saver.submit(self._records.save_job, dict(job))
        except RuntimeError:  # stopped: the saver is shut down (a job that ended after stop's wait); save it here
            self._records.save_job(dict(job))

    def _notify(self, job: dict[str, Any]) -> None:
        self._watchers.notify(job)

    # --- the API ---

    def get(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            job = self._records.load_job(job_id)
        return dict(job)

    def list(self, model_name: str = "", limit: int = 100) -> list[dict[str, Any]]:
        jobs = [j for j in self._jobs.values() if not model_name or j["model_name"] == model_name]
        jobs.sort(key=lambda j: j["create_time"], reverse=True)
        return [dict(j) for j in jobs[:limit]]

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job and wait (a while) until its work has stopped and its partial output is gone."""
        job = self._jobs.get(job_id)
        if job is None:
            raise unknown_job("batch job", job_id)
        control, task = self._controls.get(job_id), self._tasks.get(job_id)
        if job["state"] not in TERMINAL and control is not None and control.cancel():
            queued = job["state"] == QUEUED
            self._update(job, state=CANCELLED, eta_seconds=0.0, end_time=time.time(),
                         message="cancelled by a client")
            if queued and task is not None:
                task.cancel()
        if task is not None:
            await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
        return dict(job)

    def watch(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """The job's record now, then every change until it ends (NotFound at once for an unknown id)."""
        return self._watchers.watch(self.get(job_id))


def check_id(job_id: str) -> None:
    check_job_id(job_id, "batch job")
