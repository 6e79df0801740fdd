"""Training as Ray tasks: the pool the Ray engine's JobManager submits to (same members as workers.ProcessPool).

The task runs the same `workers.run_job` as an embedded worker process and reports its stages through a Ray queue; the
gateway's JobManager writes the job records and the version, so job state lives in the model store.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError, WorkerCrashedError
from ray.util.queue import Queue

from pynomaly import training, workers

log = logging.getLogger(__name__)

PROGRESS_QUEUE_PREFIX = "pynomaly-job-progress-"


class _Progress:
    """The task's end of the progress queue: best effort, since the stages are a courtesy and the result is not.
    A queue that is gone must not fail the training."""

    def __init__(self, queue: Queue):
        self._queue = queue

    def put(self, item: Any) -> None:
        try:
            self._queue.put(item, timeout=5)
        except Exception as e:  # noqa: BLE001 — the actor died, or is too slow: drop the stage
            log.warning("training progress not reported (%s): %s", type(e).__name__, e)


@ray.remote(max_retries=0)
def _train(events: Queue, job_id: str, spec: training.TrainSpec, X: np.ndarray) -> Any:
    workers.init_worker(_Progress(events))
    return workers.run_job(job_id, spec, X)


class _Events:
    """The gateway's end of the progress queue: `get` returns None once Ray is gone, which stops the reader."""

    def __init__(self) -> None:
        # Named, so an operator (and a test) can find it: `ray list actors` / ray.util.list_named_actors().
        name = f"{PROGRESS_QUEUE_PREFIX}{uuid.uuid4().hex[:12]}"
        self._queue = Queue(actor_options={"num_cpus": 0, "name": name})

    def get(self) -> Any:
        try:
            return self._queue.get(block=True)
        except (RayActorError, ray.exceptions.RaySystemError):
            return None

    def put(self, item: Any) -> None:
        try:
            self._queue.put(item)
        except (RayActorError, ray.exceptions.RaySystemError):
            pass


class RayPool:
    def __init__(self, cpus: float = 1.0):
        self._cpus = cpus
        self._events = _Events()
        self.events = self._events
        self._refs: dict[int, ray.ObjectRef] = {}  # id(future) → the task, for cancel

    def submit(self, job_id: str, spec: training.TrainSpec, X: np.ndarray) -> Future[Any]:
        ref = _train.options(num_cpus=self._cpus, name=f"pynomaly-train-{job_id}").remote(
            self._events._queue, job_id, spec, X)
        future: Future[Any] = Future()
        self._refs[id(future)] = ref
        ref.future().add_done_callback(lambda done: self._settle(future, done))
        return future

    def _settle(self, future: Future[Any], done: Future[Any]) -> None:
        self._refs.pop(id(future), None)
        if future.cancelled():
            return
        try:
            future.set_result(done.result())
        except TaskCancelledError:
            future.cancel()
        except RayTaskError as e:
            # The worker's own exception (TrainingFailed keeps its message and stages), not Ray's wrapper whose
            # text carries the remote traceback.
            future.set_exception(e.cause if isinstance(e.cause, Exception) else RuntimeError(str(e)))
        except (WorkerCrashedError, RayActorError, ray.exceptions.OutOfMemoryError) as e:
            log.warning("training task died: %s", e)
            future.set_exception(training.TrainingFailed(
                "the training worker died (out of memory?); submit the job again"))
        except Exception as e:  # noqa: BLE001 — anything else Ray raises becomes an internal error of the job
            future.set_exception(e)

    def warm_up(self) -> None:
        """Nothing to do: Ray keeps its worker processes, so only the first task pays for the imports."""

    def cancel(self, future: Future[Any]) -> None:
        ref = self._refs.get(id(future))
        if ref is not None:
            ray.cancel(ref, force=True)  # a queued task never starts; a running one's worker is stopped

    def renew(self) -> None:
        """Nothing to renew: a dead Ray worker is replaced by Ray."""

    def shutdown(self) -> None:
        for ref in list(self._refs.values()):
            ray.cancel(ref, force=True)
        self._events.put(None)
