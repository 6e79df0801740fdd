"""Batch jobs on the Ray engine: Ray Data reads the input in blocks, `map_batches` scores them on an actor pool whose
actors hold the version's onnxruntime session, and the gateway streams the scored blocks, in input order, into the
one output file (written whole or not at all, as on the embedded engine: pynomaly.batch.locations).

A bad row is found by an actor, which sees one block and not where it lies in the file: it marks the row in a
column of its own, and the gateway, which counts rows as the blocks arrive in order, names it. The input must be
readable from every node (object storage, or a data root mounted on all of them, as the model store is).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pynomaly.batch import tables
from pynomaly.batch.embedded import input_dtype
from pynomaly.batch.plan import BatchPlan
from pynomaly.errors import InvalidArgument
from pynomaly.runtime import SessionCache
from pynomaly.store import open_store

ERROR = "__pynomaly_error"  # the actor's mark on a block's first bad row (dropped before the output)
# Ray Data's blocks are at most this large (its default, 128 MiB, would bring a million rows to the gateway at once):
# what the gateway holds is a few blocks, and progress moves a block at a time.
BLOCK_BYTES = 8 << 20


class BlockScorer:
    """One actor of the pool: loads the version once, then scores block after block."""

    def __init__(self, store: str, name: str, version: int, features: list[str], keep: list[str],
                 threshold: float):
        self._model = SessionCache(open_store(store), threads=1, max_models=1).get(name, version)
        self._dtype = input_dtype(self._model)
        self._features, self._keep, self._threshold = features, keep, threshold
        # The score's dtype, for a block that is not scored (it has a bad row) to keep the output's schema.
        self._score_dtype = self._model.score(np.zeros((1, len(features)), dtype=self._dtype)).dtype

    def __call__(self, block: pa.Table) -> pa.Table:
        X, problem = tables.feature_matrix(block, self._features, self._dtype)
        if problem is None:
            scores, errors = self._model.score(X), pa.nulls(block.num_rows, pa.string())
        else:
            row, what = problem
            scores = np.zeros(block.num_rows, dtype=self._score_dtype)
            errors = pa.array([what if i == row else None for i in range(block.num_rows)], pa.string())
        return tables.scored(block, self._keep, scores, self._threshold).append_column(ERROR, errors)


class RayDataEngine:
    """The BatchEngine of the Ray engine. `actors`: the most actors a job scores on; `cpus`: Ray CPUs each actor
    and each read task reserves."""

    def __init__(self, store: str, actors: int = 2, cpus: float = 0.5):
        self._store, self._actors, self._cpus = store, actors, cpus

    def _read(self, plan: BatchPlan) -> Any:
        import ray.data

        filesystem = plan.source.arrow_filesystem()
        if plan.source.suffix == ".parquet":
            return ray.data.read_parquet(plan.source.path, filesystem=filesystem, columns=plan.columns,
                                         num_cpus=self._cpus)
        options = tables.csv_options(plan.features, plan.columns)
        return ray.data.read_csv(plan.source.path, filesystem=filesystem, num_cpus=self._cpus, **options)

    def score(self, plan: BatchPlan) -> Generator[tuple[tables.Table, float], None, None]:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # blocks leave the actor pool in input order
        context.target_max_block_size = BLOCK_BYTES
        context.enable_progress_bars = False  # the job's record is the progress; nobody reads the gateway's stderr
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # not a line per dataset in the gateway's log
        dataset = self._read(plan).map_batches(
            BlockScorer,
            fn_constructor_args=(self._store, plan.model_name, plan.model_version, plan.features, plan.keep,
                                 plan.threshold),
            batch_size=plan.chunk_rows, batch_format="pyarrow", zero_copy_batch=True, num_cpus=self._cpus,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self._actors),
        )
        offset = 0
        try:
            for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                errors = block.column(ERROR)
                if errors.null_count < block.num_rows:
                    row = pc.index(pc.is_valid(errors), True).as_py()
                    raise InvalidArgument(f"input_uri: {plan.layout.where(offset + row)}: {errors[row].as_py()}")
                offset += block.num_rows
                yield block.drop_columns([ERROR]), offset / plan.layout.rows if plan.layout.rows else 0.0
        except (InvalidArgument, GeneratorExit):
            raise
        except Exception as e:
            # A read task's error comes wrapped by Ray, pyarrow's words not always kept. A CSV the reader fails on
            # is read here the embedded engine's way, which names the bad row (InvalidArgument); an error path only.
            if plan.source.suffix == ".csv" and "CSV" in str(e):
                for _ in tables.read_batches(plan.source, plan.layout, plan.columns, plan.features):
                    pass
            raise
