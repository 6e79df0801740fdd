"""Faults with real processes: a server killed with SIGKILL leaves no process behind (training worker, resource
tracker, Ray's daemons) and a consistent store; SIGTERM drains (NOT_SERVING first, calls in flight finish, training
jobs marked interrupted, a clean log); a port in use fails at once."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pynomaly import Client
from pynomaly.store import LocalStore
from pynomaly.v1 import train_pb2

from conftest import ServerProcess, require_ray

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
# An IForest fit of several seconds on one core: the worker is busy when the server is killed.
SLOW = {"algorithm": "iforest", "params": {"n_estimators": 2000, "random_state": 0}}
SLOW_X = np.random.default_rng(3).normal(size=(20000, 10))
SMALL_X = np.random.default_rng(4).normal(size=(200, 4))
CLEAN_LOG = ("Traceback", "Event loop is closed", "was never awaited", "CancelledError")


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every process below `root` now: pid → start time (so a reused pid is not mistaken for a survivor)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def exiting(pid: int) -> bool:
    """Past the point of running any code of its own: a zombie, or a process whose memory is already released (no
    VmRSS in its status; seen under load for processes whose exit waits on a thread)."""
    try:
        return "\nVmRSS:" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def survivors(processes: dict[int, int]) -> list[int]:
    return [pid for pid, start in processes.items()
            if (st := _stat(pid)) is not None and st[2] == start and st[1] != "Z" and not exiting(pid)]


def cmdline(pid: int) -> str:
    """The command line, or (when it reads empty) the name, state and parent from /proc/PID/status."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        if line:
            return line
        status = dict(row.split(":", 1) for row in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in row)
        return " ".join(f"{key}={status.get(key, '').strip()}" for key in ("Name", "State", "PPid", "VmRSS"))
    except OSError:
        return "?"


def wait_running(client: Client, job_id: str, seconds: float = 120) -> train_pb2.TrainingJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id), timeout=10).job
        if job.state == train_pb2.TRAINING_JOB_STATE_RUNNING:
            return job
        assert job.state == train_pb2.TRAINING_JOB_STATE_QUEUED, job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not start in {seconds} s")


def kill_9(srv: ServerProcess) -> tuple[dict[int, int], str, str]:
    """SIGKILL the server process; returns the processes that were below it, their command lines, and what the
    server's output pipe carried until every writer had closed it (the Ray watchdog's report among them)."""
    tree = descendants(srv.proc.pid)
    names = "\n".join(cmdline(p) for p in tree)
    srv.channel.close()
    srv.proc.kill()
    out, _ = srv.proc.communicate()
    return tree, names, out


def assert_all_gone(tree: dict[int, int], seconds: float = 15, log: str = "") -> float:
    """Every process of `tree` ends within `seconds` (they are killed afterwards either way); returns how long.
    `log`, the server's last output, goes into the message."""
    start = time.monotonic()
    while (left := survivors(tree)) and time.monotonic() - start < seconds:
        time.sleep(0.1)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, ("still running after the server was killed:\n" + "\n".join(f"{p}: {cmdline(p)}" for p in left)
                      + "\nthe server's last output:\n" + log[-3000:])
    return time.monotonic() - start


def assert_store_consistent(store: Path) -> LocalStore:
    """Every version complete, every alias on a version that exists, no job claiming a version never written."""
    s = LocalStore(store)
    for name in os.listdir(store / "models"):
        for version in s.versions(name):
            assert s.manifest(name, version)["version"] == version
            assert s.onnx_bytes(name, version)
        for alias, version in s.aliases(name).items():
            assert s.has_version(name, version), f"{name}:{alias} -> missing version {version}"
    for job in s.list_jobs():
        if job["state"] == "SUCCEEDED":  # its version exists, unless a client deleted it since (a tombstone)
            deleted = store / "models" / job["model_name"] / "deleted" / str(job["model_version"])
            assert s.has_version(job["model_name"], job["model_version"]) or deleted.exists(), job
    return s


@pytest.mark.parametrize("engine", ["embedded", "ray"])
def test_kill_9_during_a_fit_leaves_no_process_and_no_half_version(tmp_path, engine):
    if engine == "ray":
        require_ray()
    store = tmp_path / "store"
    srv = ServerProcess(store, engine=engine)
    tree: dict[int, int] = {}
    try:
        with Client(srv.address, timeout=60) as c:
            job_id = c.start_training("slow", SLOW_X, **SLOW).id
            wait_running(c, job_id)
        time.sleep(1)  # into the fit
        tree, names, log = kill_9(srv)
        if engine == "embedded":
            assert "resource_tracker" in names and "multiprocessing.spawn" in names, names
        else:
            assert "raylet" in names and "gcs_server" in names and "pynomaly.ray_engine.watchdog" in names, names
            assert f"pynomaly watchdog: server {srv.proc.pid} is gone; SIGKILLed" in log, log[-3000:]
        took = assert_all_gone(tree, log=log)
        print(f"{engine}: {len(tree)} processes gone {took:.1f} s after kill -9")
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.communicate()
        for pid in survivors(tree):
            os.kill(pid, signal.SIGKILL)

    assert_store_consistent(store)
    again = ServerProcess(store)
    try:
        with Client(again.address) as c:
            job = c.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id)).job
            assert job.state == train_pb2.TRAINING_JOB_STATE_FAILED
            assert "interrupted by a server restart" in job.message
            assert c.list_models() == []
    finally:
        again.stop()


def test_kill_9_during_registration_keeps_every_acknowledged_version(tmp_path):
    """Small jobs back to back, the server killed the moment one reaches its register stage."""
    store = tmp_path / "store"
    srv = ServerProcess(store, "--train-workers", "1")
    acknowledged: list[tuple[str, int]] = []
    try:
        with Client(srv.address, timeout=60) as c:
            for _ in range(3):
                acknowledged.append(("reg", c.train("reg", SMALL_X, algorithm="hbos").version))
            job = c.start_training("reg", SMALL_X, algorithm="iforest", params={"n_estimators": 50})
            for event in c.train_stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job.id)):
                if event.job.stage == train_pb2.TRAINING_STAGE_REGISTER:
                    break
        tree, _, _ = kill_9(srv)
        assert_all_gone(tree)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.communicate()

    s = assert_store_consistent(store)
    assert set(acknowledged) <= {("reg", v) for v in s.versions("reg")}
    again = ServerProcess(store)
    try:
        with Client(again.address) as c:
            cut = c.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job.id)).job
            versions = [v.version for v in c.list_model_versions("reg")]
            if cut.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED:  # the rename happened before the kill
                assert cut.model_version in versions
            else:
                assert "interrupted by a server restart" in cut.message
            assert sorted(versions) in ([1, 2, 3], [1, 2, 3, 4])
            c.detect("reg", SMALL_X[:5])
        assert not any((store / ".staging").iterdir())
    finally:
        again.stop()


def test_kill_9_during_alias_moves_and_deletes_loses_no_acknowledged_write(tmp_path):
    store = tmp_path / "store"
    srv = ServerProcess(store)
    with Client(srv.address, timeout=60) as c:
        for _ in range(6):
            c.train("burst", SMALL_X, algorithm="hbos")
    acked: dict[str, int | None] = {}  # alias → version after the last acknowledged write (None: removed)
    deleted: set[int] = set()
    in_flight: list[tuple[str, object]] = []  # the one write sent but not answered when the server died
    stop = threading.Event()

    def burst() -> None:
        rng = random.Random(0)
        with Client(srv.address, timeout=10) as c:
            while not stop.is_set():
                alias, version = rng.choice("abcd"), rng.choice([v for v in range(1, 7) if v not in deleted])
                if rng.random() < 0.1 and len(deleted) < 4:
                    in_flight[:] = [("delete", version)]
                    try:
                        c.delete_model(f"burst@{version}")
                    except grpc.RpcError:
                        return
                    deleted.add(version)
                    acked.update({a: None for a, v in acked.items() if v == version})
                else:
                    in_flight[:] = [(alias, version)]
                    try:
                        c.set_alias("burst", alias, version)
                    except grpc.RpcError:
                        return
                    acked[alias] = version
                in_flight.clear()

    writer = threading.Thread(target=burst)
    writer.start()
    time.sleep(2)
    try:
        tree, _, _ = kill_9(srv)
        assert_all_gone(tree)
    finally:
        stop.set()
        writer.join(30)
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.communicate()
    assert acked, "no write was acknowledged before the kill"

    s = assert_store_consistent(store)
    again = ServerProcess(store)  # start-up sweeps what the kill left; the state is what it was
    try:
        versions, aliases = s.versions("burst"), s.aliases("burst")
        pending = in_flight[0] if in_flight else None
        for version in deleted:
            assert version not in versions
        for alias, version in acked.items():
            got = aliases.get(alias)
            if pending is not None and pending[0] == alias:
                assert got in (version, pending[1])
            elif pending is not None and pending[0] == "delete" and version == pending[1]:
                assert got in (version, None)
            else:
                assert got == version, (alias, got, version)
        assert not list((store / "models" / "burst").glob(".*.tmp"))
        with Client(again.address) as c:
            assert sorted(v.version for v in c.list_model_versions("burst")) == versions
    finally:
        again.stop()


def test_sigterm_goes_not_serving_then_drains_and_interrupts_training(tmp_path):
    store = tmp_path / "store"
    srv = ServerProcess(store, "--grace-s", "8", "--shutdown-delay-s", "2", "--log-level", "info")
    health = health_pb2_grpc.HealthStub(srv.channel)
    with Client(srv.address, timeout=60) as c:
        c.train("kept", SMALL_X, algorithm="hbos")
        job_id = c.start_training("slow", SLOW_X, **SLOW).id
        wait_running(c, job_id)
        watch = c.train_stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job_id), timeout=60)
        assert next(watch).job.state == train_pb2.TRAINING_JOB_STATE_RUNNING  # a call in flight over the signal
        tree = descendants(srv.proc.pid)
        sent = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        while (status := health.Check(health_pb2.HealthCheckRequest(), timeout=5).status) == SERVING:
            time.sleep(0.02)
        not_serving_after = time.monotonic() - sent
        assert status == NOT_SERVING
        # Within the shutdown delay: Check still answers (NOT_SERVING, not UNAVAILABLE), new calls are taken.
        assert health.Check(health_pb2.HealthCheckRequest(service="pynomaly.v1.DetectService"),
                            timeout=5).status == NOT_SERVING
        assert len(c.detect("kept", SMALL_X[:3]).anomaly_scores) == 3
        last = [event.job for event in watch][-1]  # the stream ends with the job's fate, not a cut-off
        assert last.state == train_pb2.TRAINING_JOB_STATE_FAILED
        assert last.message == "interrupted by a server shutdown; submit the job again"
    out, _ = srv.proc.communicate(timeout=30)
    stopped_after = time.monotonic() - sent
    srv.channel.close()
    assert srv.proc.returncode == 0, out
    for text in CLEAN_LOG:
        assert text not in out, out
    assert "shutting down" in out
    assert_all_gone(tree, seconds=5)
    print(f"NOT_SERVING {not_serving_after:.2f} s after SIGTERM; exited after {stopped_after:.1f} s")

    again = ServerProcess(store)
    try:
        with Client(again.address) as c:
            job = c.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id)).job
            assert job.state == train_pb2.TRAINING_JOB_STATE_FAILED
            assert job.message == "interrupted by a server shutdown; submit the job again"
            assert [m.name for m in c.list_models()] == ["kept"]
    finally:
        again.stop()


def test_serve_on_a_port_in_use_fails_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", address,
                               "--store", str(tmp_path / "store"), "--log-level", "warning"],
                              capture_output=True, text=True, timeout=60)
        took = time.monotonic() - start
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on {address}"), done.stderr
    print(f"port in use: exited after {took:.1f} s")
    assert took < 10, f"took {took:.1f} s to report a port in use"


@pytest.mark.parametrize("flags, message", [
    (["--grace-s", "0"], "--grace-s: must be a positive number of seconds, got 0"),
    (["--grace-s", "5", "--shutdown-delay-s", "5"], "--shutdown-delay-s 5 must be less than --grace-s 5"),
    (["--shutdown-delay-s", "-1"], "--shutdown-delay-s: must be 0 or a positive number of seconds, got -1"),
])
def test_serve_refuses_bad_shutdown_flags(tmp_path, flags, message):
    done = subprocess.run([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0",
                           "--store", str(tmp_path / "store"), *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
