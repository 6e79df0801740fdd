"""The Ray watchdog: when its server dies by SIGKILL it kills the server's descendants and every process carrying
the cluster's environment mark (one already orphaned included), never another cluster's, and says so on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil

from pynomaly.ray_engine import watchdog

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pids: list[int], seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if not gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_marked_processes_are_found_and_others_are_not():
    mark, other = uuid.uuid4().hex, uuid.uuid4().hex
    ours = subprocess.Popen(SLEEP, env={**os.environ, watchdog.MARK: mark})
    theirs = subprocess.Popen(SLEEP, env={**os.environ, watchdog.MARK: other})
    plain = subprocess.Popen(SLEEP, env={k: v for k, v in os.environ.items() if k != watchdog.MARK})
    try:
        found = [p.pid for p in watchdog._marked(mark)]
        assert ours.pid in found and theirs.pid not in found and plain.pid not in found
        assert [p.pid for p in watchdog._kill(watchdog._marked(mark))] == [ours.pid]
        assert ours.wait(timeout=10) == -9
        assert theirs.poll() is None and plain.poll() is None, "another cluster's processes are never touched"
    finally:
        for p in (ours, theirs, plain):
            p.kill()
            p.wait()


def test_sweep_kills_the_family_and_the_marked_and_stops_once_none_runs():
    mark = uuid.uuid4().hex
    family = subprocess.Popen(SLEEP)
    late = subprocess.Popen(SLEEP, env={**os.environ, watchdog.MARK: mark})
    try:
        start = time.monotonic()
        killed, left = watchdog.sweep([psutil.Process(family.pid)], mark, least_s=0.5, most_s=10)
        assert killed == {family.pid, late.pid} and left == []
        assert time.monotonic() - start < 5, "the sweep ends once nothing of ours runs"
        assert family.wait(timeout=10) == -9 and late.wait(timeout=10) == -9
    finally:
        for p in (family, late):
            p.kill()
            p.wait()


def test_a_server_killed_with_sigkill_leaves_none_of_its_processes(tmp_path):
    """A stand-in for `pynomaly serve --engine ray`: it starts the watchdog as the CLI does, a child with a grandchild
    (the raylet and its agents), and a marked process already orphaned (a worker born just before the kill), then
    SIGKILLs itself."""
    mark = uuid.uuid4().hex
    server = textwrap.dedent(f"""
        import os, signal, subprocess, sys, time
        os.environ[{watchdog.MARK!r}] = {mark!r}
        subprocess.Popen([sys.executable, "-m", "pynomaly.ray_engine.watchdog", str(os.getpid()), {mark!r}],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        child = subprocess.Popen(["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!; wait"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        grandchild = child.stdout.readline().strip()
        orphan = subprocess.Popen(["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        print(child.pid, grandchild, orphan.stdout.readline().strip(), flush=True)
        orphan.wait()
        time.sleep(1.5)  # the watchdog has looked at the tree
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.Popen([sys.executable, "-c", server], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    out, err = proc.communicate(timeout=90)  # stderr closes when the watchdog exits
    pids = [int(p) for p in out.split()]
    try:
        assert proc.returncode == -9 and len(pids) == 3, (out, err)
        assert wait_gone(pids) == [], err
        assert f"pynomaly watchdog: server {proc.pid} is gone; SIGKILLed" in err, err
        assert "still running" not in err
    finally:
        for pid in pids:
            if not gone(pid):
                os.kill(pid, 9)
