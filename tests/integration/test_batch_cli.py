"""`pynomaly batch` as a user runs it (a real process against the real server, both engines), and the SDK's
batch calls: progress, JSON, list/get/cancel, errors with their exit codes, and Ctrl-C cancelling the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pynomaly.client import BatchError
from pynomaly.v1 import detect_pb2

FEATURES = [f"f{i}" for i in range(5)]
CLI = [sys.executable, "-m", "pynomaly.cli"]


@pytest.fixture(scope="module")
def inputs(server):
    rng = np.random.default_rng(47)
    frame = pd.DataFrame(rng.normal(size=(20_000, 5)), columns=FEATURES).assign(id=np.arange(20_000))
    frame.to_parquet(server.data_root / "cli-rows.parquet")
    # Large enough that the job is still running when Ctrl-C lands, even on a fast machine (about 10 s here).
    big = pd.DataFrame(rng.normal(size=(4_000_000, 5)), columns=FEATURES)
    big.to_parquet(server.data_root / "cli-big.parquet", row_group_size=100_000)
    return frame


def _cli(server, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "batch", "--server", server.address, *argv], capture_output=True, text=True,
                          timeout=timeout)


def test_batch_scores_a_file_and_shows_progress(server, client, trained, inputs):
    done = _cli(server, "--model", trained, "--input", "cli-rows.parquet", "--output", "cli-out.parquet",
                "--id-column", "id")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cli-out.parquet\n"
    assert "20.0k/20.0k" in done.stderr and " rows" in done.stderr  # the bar: rows of the total, and rows/s
    assert f"scored 20000 rows with {trained}: " in done.stderr and "rows/s" in done.stderr
    table = pq.read_table(server.output_root / "cli-out.parquet")
    np.testing.assert_array_equal(table["anomaly_score"].to_numpy(),
                                  client.detect(trained, inputs[FEATURES]).anomaly_scores)
    assert table["id"].to_pylist() == list(range(20_000))


def test_batch_json_then_list_get_and_cancel(server, client, trained, inputs):
    done = _cli(server, "--model", trained, "--input", "cli-rows.parquet", "--output", "cli-out.csv", "--json",
                "--threshold", "1e9", "--pass-through")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    # The CLI's one JSON style: int64 as integers, every field (zeros too).
    assert job["state"] == "BATCH_DETECT_JOB_STATE_SUCCEEDED" and job["rows_done"] == 20000
    assert job["threshold"] == 1e9 and job["anomalies"] == 0
    assert done.stderr == ""  # --json: no progress bar
    listed = _cli(server, "list", "--model", trained.split("@")[0])
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith(f"{job['id']}\tsucceeded\t{trained}\t")
    got = _cli(server, "get", job["id"], "--json")
    assert json.loads(got.stdout)["id"] == job["id"]
    cancelled = _cli(server, "cancel", job["id"])  # a finished job is left as it is
    assert cancelled.returncode == 0 and cancelled.stdout.startswith(f"{job['id']}\tsucceeded\t")


@pytest.mark.parametrize("argv, code, message", [
    (["--model", "{model}", "--input", "cli-rows.parquet"], 2,
     "error: pynomaly batch needs --output (or one of: list, get ID, cancel ID)"),
    (["--model", "{model}", "--input", "cli-rows.parquet", "--output", "cli-out.parquet", "--id-column", "id"], 1,
     "error: ALREADY_EXISTS: output_uri: 'cli-out.parquet' already exists; set overwrite to replace it"),
    (["--model", "ghost", "--input", "cli-rows.parquet", "--output", "x.parquet"], 1,
     "error: NOT_FOUND: model 'ghost' not found"),
    (["get", "batch-0000000000000000"], 1, "error: NOT_FOUND: batch job 'batch-0000000000000000' not found"),
])
def test_batch_errors_are_one_line_with_an_exit_code(server, trained, inputs, argv, code, message):
    _cli(server, "--model", trained, "--input", "cli-rows.parquet", "--output", "cli-out.parquet", "--id-column",
         "id")  # the output the second case finds in its way
    done = _cli(server, *(a.replace("{model}", trained) for a in argv))
    assert done.returncode == code
    assert done.stderr.strip().splitlines()[-1] == message


def test_a_failed_job_exits_1_naming_the_row(server, trained, inputs):
    inputs.assign(f1=np.where(np.arange(len(inputs)) == 1234, np.inf, inputs["f1"])).to_parquet(
        server.data_root / "cli-inf.parquet")
    done = _cli(server, "--model", trained, "--input", "cli-inf.parquet", "--output", "cli-inf.parquet",
                "--id-column", "id")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: batch job batch-") and last.endswith(
        " failed: input_uri: row 1234 (row group 0): column 'f1' is inf; values must be finite (no NaN or inf)")
    assert not (server.output_root / "cli-inf.parquet").exists()


def test_ctrl_c_cancels_the_job_on_the_server(server, client, trained, inputs):
    # SIGINT as at a terminal: a shell without job control (CI) starts children with SIGINT ignored.
    proc = subprocess.Popen([*CLI, "batch", "--server", server.address, "--model", trained, "--input",
                             "cli-big.parquet", "--output", "cli-interrupted.csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while True:
            jobs = [j for j in client.list_batch_jobs() if j.output_uri == "cli-interrupted.csv"]
            if jobs and jobs[0].rows_done > 0:
                break
            assert proc.poll() is None and time.monotonic() < deadline, "the job never started running"
            time.sleep(0.05)
        assert jobs[0].state == detect_pb2.BATCH_DETECT_JOB_STATE_RUNNING
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("cancelled: the batch job was cancelled on the server; no output was "
                                            "written")
    job = client.get_batch_job(jobs[0].id)
    assert job.state == detect_pb2.BATCH_DETECT_JOB_STATE_CANCELLED and job.rows_done < 4_000_000
    assert [p for p in os.listdir(server.output_root) if "cli-interrupted" in p] == []


def test_sdk_batch_detect_reports_progress_and_raises_on_failure(server, client, trained, inputs):
    seen = []
    job = client.batch_detect(trained, "cli-rows.parquet", "sdk-out.parquet", id_column="id", on_update=seen.append)
    assert seen[-1] == job and job.state == detect_pb2.BATCH_DETECT_JOB_STATE_SUCCEEDED
    assert seen[0].state in (detect_pb2.BATCH_DETECT_JOB_STATE_QUEUED, detect_pb2.BATCH_DETECT_JOB_STATE_RUNNING)
    inputs.assign(f1=np.where(np.arange(len(inputs)) == 5, -np.inf, inputs["f1"])).to_parquet(
        server.data_root / "sdk-inf.parquet")
    with pytest.raises(BatchError, match=r"^batch job batch-\w+ failed: input_uri: row 5 \(row group 0\): column "
                                         r"'f1' is -inf; values must be finite") as e:
        client.batch_detect(trained, "sdk-inf.parquet", "sdk-never.parquet", id_column="id")
    assert e.value.job.state == detect_pb2.BATCH_DETECT_JOB_STATE_FAILED


def test_sdk_batch_detect_interrupted_cancels_the_job(server, client, trained, inputs):
    def interrupt(job):
        if job.rows_done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.batch_detect(trained, "cli-big.parquet", "sdk-interrupted.csv", on_update=interrupt)
    (job,) = [j for j in client.list_batch_jobs() if j.output_uri == "sdk-interrupted.csv"]
    assert job.state == detect_pb2.BATCH_DETECT_JOB_STATE_CANCELLED
    assert [p for p in os.listdir(server.output_root) if "sdk-interrupted" in p] == []
