"""A batch job cut off by the end of its server is FAILED when the server comes back, its partial output removed,
on both engines: the embedded server killed outright (a crash) or stopped (SIGTERM); on the Ray engine, the
gateway replica that drives the job killed (Serve starts another, which finds the job cut off), then the server
stopped and started again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pynomaly import Client
from pynomaly.v1 import detect_pb2, train_pb2

from conftest import ServerProcess, require_ray

ROWS = 1_000_000


RESTARTED = "interrupted by a server restart; submit the job again"
STOPPED = "interrupted: the server stopped; submit the job again"


def _descendants(root: int) -> list[int]:
    """The processes under `root` (its training workers; on Ray, the cluster's), read from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError):
            continue
    found = []
    for pid in parents:
        ancestor = parents[pid]
        while ancestor in parents and ancestor not in (root, 0, 1):
            ancestor = parents[ancestor]
        if ancestor == root:
            found.append(pid)
    return found


def _gateway_replica(root: int) -> int:
    """The process of the Ray engine's gateway replica under the server process `root` (not another cluster's)."""
    for pid in _descendants(root):
        if b"ServeReplica:pynomaly:Gateway" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no gateway replica under the server process")


@pytest.mark.parametrize("engine, end, message", [
    ("embedded", "kill", RESTARTED),
    ("embedded", "stop", STOPPED),
    ("ray", "kill gateway", RESTARTED),
])
def test_a_job_cut_off_is_failed_at_restart_and_leaves_no_file(tmp_path, engine, end, message):
    if engine == "ray":
        require_ray()
    store, data, out = tmp_path / "store", tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    rng = np.random.default_rng(41)
    frame = pd.DataFrame(rng.normal(size=(ROWS, 3)), columns=["a", "b", "c"])
    frame.to_parquet(data / "big.parquet", row_group_size=50_000)
    frame[:1000].to_parquet(data / "small.parquet")
    roots = ("--data-root", str(data), "--output-root", str(out))
    first = ServerProcess(store, *roots, engine=engine)
    try:
        with Client(first.address, timeout=60) as client:
            # 1,000 trees: a job long enough that a stop, which takes a while on Ray, comes before its end.
            client.train("restart", rng.normal(size=(300, 3)), algorithm="iforest", feature_names=["a", "b", "c"],
                         params={"n_estimators": 1000})
            job = client.start_batch_detect("restart", "big.parquet", "result.csv", pass_through=True)
            for event in client.watch_batch_job(job.id, timeout=300):
                if event.rows_done > 0:
                    break
            assert event.state == detect_pb2.BATCH_DETECT_JOB_STATE_RUNNING and event.rows_done < ROWS
            assert [p.name for p in out.iterdir()] == [f".result.csv.{job.id}.partial"]
    finally:
        if end == "kill":
            first.channel.close()
            children = _descendants(first.proc.pid)
            first.proc.kill()
            first.proc.wait(timeout=30)
            for child in children:  # a crash leaves the training worker orphaned: not this test's to keep
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        else:
            if end == "kill gateway":
                os.kill(_gateway_replica(first.proc.pid), signal.SIGKILL)
            first.stop()

    second = ServerProcess(store, *roots, engine=engine)
    try:
        with Client(second.address, timeout=60) as client:
            got = client.get_batch_job(job.id)
            assert got.state == detect_pb2.BATCH_DETECT_JOB_STATE_FAILED
            assert got.message == message
            assert got.end_time.seconds >= got.start_time.seconds > 0
            assert list(out.iterdir()) == []  # the partial file is gone and nothing has the final name
            assert [j.id for j in client.list_batch_jobs()] == [job.id]
            training = client.train_stub.ListTrainingJobs(train_pb2.ListTrainingJobsRequest()).jobs
            assert [j.model_name for j in training] == ["restart"]
            # The same output can be written now, by a job that runs to the end.
            done = client.batch_detect("restart", "small.parquet", "result.csv", wait_timeout=300)
            assert done.rows_done == 1000 and [p.name for p in out.iterdir()] == ["result.csv"]
    finally:
        second.stop()
