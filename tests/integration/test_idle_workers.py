"""Training workers on demand: they exit after --train-idle-s without a job (the server at rest holds no training
stack), the next job starts them again, and a job arriving as they retire is not lost."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pynomaly import Client

from conftest import ServerProcess
from test_faults import cmdline, descendants

X = np.random.default_rng(5).normal(size=(300, 4))


def workers(srv: ServerProcess) -> list[int]:
    """The server's training worker processes (spawned by multiprocessing; its resource tracker is not one)."""
    return [pid for pid in descendants(srv.proc.pid) if "spawn_main" in cmdline(pid)]


def tree_rss_mb(srv: ServerProcess) -> float:
    """The resident memory of the server and every process below it (those exiting count 0)."""
    total = 0
    for pid in [srv.proc.pid, *descendants(srv.proc.pid)]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total / 1024


def wait_for(condition, seconds: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_workers_exit_when_idle_and_the_next_job_starts_them(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "store", "--train-idle-s", "2")
    try:
        wait_for(lambda: workers(srv), 30, "the warm-up worker started")
        warm = 0.0

        def retired() -> bool:
            nonlocal warm
            warm = max(warm, tree_rss_mb(srv))
            return not workers(srv)

        took = wait_for(retired, 60, "the idle worker exited")
        rest = tree_rss_mb(srv)
        print(f"server tree: {warm:.0f} MB with the warmed worker, {rest:.0f} MB at rest ({took:.1f} s later)")
        assert rest < warm - 100, (warm, rest)
        with Client(srv.address, timeout=120) as c:
            assert c.train("m", X, algorithm="iforest", params={"random_state": 0}).version == 1
            assert workers(srv), "the job's worker is gone before the idle period"
            scores = c.detect("m", X[:5]).anomaly_scores
            assert scores.shape == (5,) and np.all(np.isfinite(scores))
        wait_for(lambda: not workers(srv), 60, "the worker exited again after the job")
        assert srv.alive()
    finally:
        srv.stop()


def test_jobs_arriving_as_the_workers_retire_all_succeed(tmp_path: Path) -> None:
    """An idle period shorter than the gap between jobs: each job lands near a retirement, none is lost."""
    srv = ServerProcess(tmp_path / "store", "--train-idle-s", "0.3")
    try:
        with Client(srv.address, timeout=120) as c:
            for i in range(3):
                time.sleep(0.1 * i + 0.25)
                assert c.train("m", X, algorithm="hbos").version == i + 1
        assert srv.alive()
    finally:
        srv.stop()


def test_zero_keeps_the_workers(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "store", "--train-idle-s", "0")
    try:
        with Client(srv.address, timeout=120) as c:
            c.train("m", X, algorithm="hbos")
        before = workers(srv)
        time.sleep(3)
        assert before and workers(srv) == before
    finally:
        srv.stop()


@pytest.mark.parametrize(("value", "message"), [
    ("-1", "argument --train-idle-s: must be 0 or a positive number of seconds, got -1"),
    ("soon", "argument --train-idle-s: not a number of seconds: 'soon'"),
    ("inf", "argument --train-idle-s: must be 0 or a positive number of seconds, got inf"),
])
def test_bad_idle_periods_are_refused_naming_the_flag(tmp_path: Path, value: str, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0",
                           "--store", str(tmp_path / "store"), "--train-idle-s", value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(message), done.stderr
    assert not (tmp_path / "store").exists()
