"""The embedded engine's batch scoring: the input read and checked a chunk ahead on a thread of its own, each chunk
scored on the session cache's threads (as a large Detect is, `--threads` of them), and the output written by the
job's worker thread while the next chunk scores. The three stages overlap (pyarrow and onnxruntime release the GIL);
memory holds a few chunks, whatever the file's size."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from pynomaly.batch import tables
from pynomaly.batch.plan import BatchPlan
from pynomaly.errors import InvalidArgument
from pynomaly.runtime import LoadedModel, SessionCache

T = TypeVar("T")
READ_AHEAD = 2  # chunks read and checked ahead of the one being scored


def input_dtype(model: LoadedModel) -> np.dtype[Any]:
    """The dtype the version's graph takes: float64, or float32 for versions exported before graphs took float64."""
    return model.dtype


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Generator[T, None, None]:
    """`items` produced on a thread of its own, up to `depth` ahead of the consumer, in order; an exception is
    re-raised here. Closing this generator stops the producer at its next item."""
    buffer: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001 — handed to the consumer
            put(_Failure(e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="pynomaly-batch-read", daemon=True)
    producer.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        producer.join(timeout=10)


class ThreadEngine:
    """The BatchEngine of the embedded engine, over the server's SessionCache."""

    def __init__(self, sessions: SessionCache):
        self._sessions = sessions

    def _checked(self, plan: BatchPlan, dtype: np.dtype[Any]) -> Iterator[tuple[pa.RecordBatch, np.ndarray, float]]:
        """(chunk, its feature matrix, share read) for each chunk; InvalidArgument at the first bad row."""
        offset = 0
        for batch, fraction in tables.read_batches(plan.source, plan.layout, plan.columns, plan.features,
                                                   plan.chunk_rows):
            X, problem = tables.feature_matrix(batch, plan.features, dtype)
            if problem is not None:
                row, what = problem
                raise InvalidArgument(f"input_uri: {plan.layout.where(offset + row)}: {what}")
            offset += batch.num_rows
            yield batch, X, fraction

    def score(self, plan: BatchPlan) -> Generator[tuple[tables.Table, float], None, None]:
        model = self._sessions.get(plan.model_name, plan.model_version)
        pending = None  # the chunk being scored while the one before it is written
        with closing(read_ahead(self._checked(plan, input_dtype(model)))) as chunks, \
                ThreadPoolExecutor(1, thread_name_prefix="pynomaly-batch-score") as scorer:
            for batch, X, fraction in chunks:
                scoring = scorer.submit(self._sessions.score_split, model, X)
                if pending is not None:
                    yield self._done(plan, *pending)
                pending = batch, scoring, fraction
            if pending is not None:
                yield self._done(plan, *pending)

    @staticmethod
    def _done(plan: BatchPlan, batch: pa.RecordBatch, scoring: Any, fraction: float) -> tuple[tables.Table, float]:
        return tables.scored(batch, plan.keep, scoring.result(), plan.threshold), fraction
