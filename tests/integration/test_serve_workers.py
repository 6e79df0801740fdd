"""`pynomaly serve --workers N`: N processes on one port (SO_REUSEPORT). The serving processes score by themselves;
what the primary alone serves (training, jobs, the registry, batch jobs) they forward to it with the caller's token,
and its answers, errors and their details, come back as they are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from pynomaly import Client
from pynomaly.client_errors import NotFoundError, PermissionDeniedError, UnauthenticatedError

from conftest import ServerProcess
from test_faults import assert_all_gone, descendants, kill_9

TOKENS = {"all": "workers-all-token-0000001", "detect": "workers-detect-token-001"}
X = np.random.default_rng(6).normal(size=(400, 5))
CALLS = 24  # fresh connections, each landing on one of the 3 processes: all miss one with odds (2/3)^24 < 1e-4


def fresh(srv: ServerProcess, token: str | None = None, timeout: float = 30) -> Client:
    """A client on a connection of its own (grpc shares one per target in a process unless told not to): the
    kernel hands each to one of the processes."""
    channel = grpc.insecure_channel(srv.address, options=[("grpc.use_local_subchannel_pool", 1)])
    return Client(channel=channel, token=token, timeout=timeout)


def serving(srv: ServerProcess) -> list[int]:
    """The serving processes (named pynomaly-serve), not the primary's training worker or resource tracker."""
    found = []
    for pid in descendants(srv.proc.pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "pynomaly-serve":
                found.append(pid)
        except OSError:
            pass
    return found


def wait_serving(srv: ServerProcess, count: int, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while len(pids := serving(srv)) != count:
        assert time.monotonic() < deadline, f"{len(pids)} serving processes, expected {count}"
        time.sleep(0.1)
    return pids


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    tokens.write_text(f"{TOKENS['all']} detect,explain,train,admin\n{TOKENS['detect']} detect\n")
    server = ServerProcess(tmp_path_factory.mktemp("store"), "--workers", "3", "--auth-tokens", str(tokens))
    wait_serving(server, 2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model(srv: ServerProcess) -> np.ndarray:
    """Trained through whichever process the connection reached; the primary's own scores of X."""
    with fresh(srv, TOKENS["all"], 120) as c:
        assert c.train("w", X, algorithm="iforest", params={"random_state": 0}).version == 1
        return c.detect("w@1", X).anomaly_scores


def test_the_serving_processes_score_without_the_primary(srv: ServerProcess, model: np.ndarray) -> None:
    """With the primary stopped (SIGSTOP), connections that reach a serving process are answered, the same scores;
    those the kernel gave the primary wait. Then everything answers again."""
    os.kill(srv.proc.pid, signal.SIGSTOP)
    answered, waited = 0, 0
    try:
        for _ in range(CALLS):
            with fresh(srv, TOKENS["detect"], 2) as c:
                try:
                    np.testing.assert_array_equal(c.detect("w", X[:50]).anomaly_scores, model[:50])
                    answered += 1
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
                    waited += 1
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    print(f"primary stopped: {answered} calls answered by the serving processes, {waited} waited for it")
    assert answered >= 1 and waited >= 1
    for _ in range(6):
        with fresh(srv, TOKENS["detect"], 30) as c:
            np.testing.assert_array_equal(c.detect("w", X).anomaly_scores, model)


def test_forwarded_calls_answer_as_the_primary_does(srv: ServerProcess, model: np.ndarray) -> None:
    """Whichever process a connection reaches: the registry, job errors with their reason, tokens and scopes."""
    for _ in range(CALLS // 2):
        with fresh(srv, TOKENS["all"], 30) as c:
            assert [(v.name, v.version) for v in c.list_model_versions("w")] == [("w", 1)]
            with pytest.raises(NotFoundError) as e:
                c.cancel_training("job-0000000000000000")
            assert e.value.details() == "training job 'job-0000000000000000' not found"
            assert e.value.reason == "UNKNOWN_JOB"
        with fresh(srv, TOKENS["detect"], 30) as c, pytest.raises(PermissionDeniedError) as d:
            c.cancel_training("job-0000000000000000")
        assert "train" in d.value.details()
        with fresh(srv) as c, pytest.raises(UnauthenticatedError):
            c.list_model_versions("w")


def test_a_job_watched_through_any_process_and_an_alias_seen_by_all(srv: ServerProcess, model: np.ndarray) -> None:
    with fresh(srv, TOKENS["all"], 120) as c:
        seen = []
        card = c.train("w", X * 2, algorithm="hbos", on_update=lambda job: seen.append(job.state))
        assert card.version == 2 and seen  # WatchTrainingJob streamed through to its end
        c.set_alias("w", "prod", 1)
    for _ in range(CALLS // 2):
        with fresh(srv, TOKENS["detect"], 30) as c:
            result = c.detect("w:prod", X[:20])
            assert result.model_version == 1
            np.testing.assert_array_equal(result.anomaly_scores, model[:20])
            assert c.detect("w", X[:5]).model_version == 2


def test_a_serving_process_that_dies_is_replaced(srv: ServerProcess, model: np.ndarray) -> None:
    before = wait_serving(srv, 2)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = serving(srv)
        if len(now) == 2 and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"not replaced: {now}"
        time.sleep(0.2)
    time.sleep(2)  # the new one binds the port
    for _ in range(CALLS // 2):
        with fresh(srv, TOKENS["detect"], 30) as c:
            np.testing.assert_array_equal(c.detect("w@1", X).anomaly_scores, model)


def test_stopping_the_primary_stops_them_all(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "store", "--workers", "2")
    pids = wait_serving(server, 1)
    tree = descendants(server.proc.pid)
    out = server.stop()
    assert server.proc.returncode == 0, out
    time.sleep(0.5)
    assert not [p for p in [*pids, *tree] if Path(f"/proc/{p}").exists()
                and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"], out
    assert "Traceback" not in out, out


def test_a_primary_killed_with_sigkill_leaves_no_process(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "store", "--workers", "3")
    wait_serving(server, 2)
    tree, names, _ = kill_9(server)
    assert sum("spawn_main" in line for line in names.splitlines()) >= 2, names
    assert_all_gone(tree)


@pytest.mark.parametrize(("flags", "message"), [
    (["--workers", "0"], "argument --workers: must be 1 to 256 processes, got 0"),
    (["--workers", "two"], "argument --workers: not a whole number: 'two'"),
    (["--workers", "2", "--engine", "ray"], "error: --workers is the embedded engine's: the Ray engine scales with "
     "replicas (--min-replicas, --max-replicas)"),
])
def test_bad_worker_counts_are_refused(tmp_path: Path, flags: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0",
                           "--store", str(tmp_path / "store"), *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode in (1, 2)
    assert done.stderr.splitlines()[-1].endswith(message), done.stderr
    assert not (tmp_path / "store").exists()
