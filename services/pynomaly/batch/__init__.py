"""Batch scoring of files over RPC: CreateBatchDetectJob and its siblings.

    locations.py  where a job reads and writes (roots, s3://), and outputs that appear whole or not at all
    tables.py     the input's layout and chunks, a chunk's features and first bad row, the output's writer (pyarrow)
    plan.py       everything checked before a job exists
    jobs.py       the engine port (BatchEngine), one job's run, and the job records, progress, watch and cancel
    embedded.py   the embedded engine's BatchEngine: worker threads over the session cache

The Ray engine's BatchEngine (Ray Data over an actor pool) is pynomaly.ray_engine.batch.
"""

from pynomaly.batch.jobs import BatchEngine, BatchJobs
from pynomaly.batch.plan import BatchRequest, Roots

__all__ = ["BatchEngine", "BatchJobs", "BatchRequest", "Roots"]
