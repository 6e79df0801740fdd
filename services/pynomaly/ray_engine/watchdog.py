"""`python -m pynomaly.ray_engine.watchdog PID`: when `pynomaly serve --engine ray` (PID, our parent) dies, even by
SIGKILL, end the private Ray cluster it started.

Ray fate-shares most of a cluster with its driver (the raylet, the GCS and the workers go when it does), but not
all: its dashboard and runtime-env agents were seen running 15 s and more after a kill -9, trying to report the
raylet's death to a GCS that is gone. This process notes every descendant of PID twice a second (pid and start
time, so a reused pid is never mistaken for ours) and, once PID is gone, SIGKILLs those still running. Only PID's
own descendants are touched: another Ray cluster on the host is never affected. A process born in the last half
second before the kill (a Ray worker, orphaned at once when its raylet goes) is found by the mark the CLI puts in
its environment, `PYNOMALY_CLUSTER=<random id>`, which every process of the cluster inherits: for a few seconds
after the kill, any process carrying our mark is killed too.

It ignores SIGINT and SIGTERM (Ctrl+C reaches the whole process group): it exits once its parent has.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil  # a dependency of Ray's

INTERVAL_S = 0.5
MARK = "PYNOMALY_CLUSTER"
SWEEP_S = 5.0


def _family(parent: psutil.Process) -> dict[int, float]:
    try:
        children = parent.children(recursive=True)
    except psutil.Error:
        return {}
    me = os.getpid()
    family = {}
    for child in children:
        try:
            if child.pid != me:
                family[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return family


def _kill(family: dict[int, float]) -> None:
    for pid, created in family.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:
                process.kill()
        except psutil.Error:
            continue


def _marked(mark: str) -> dict[int, float]:
    """Processes whose environment carries our cluster's mark (readable for our own user's processes)."""
    needle = f"{MARK}={mark}".encode()
    found = {}
    for process in psutil.process_iter(["pid", "create_time"]):
        if process.pid == os.getpid():
            continue
        try:
            with open(f"/proc/{process.pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found[process.pid] = process.info["create_time"]
    return found


def watch(pid: int, mark: str | None = None) -> None:
    parent = psutil.Process(pid)
    family: dict[int, float] = {}
    while os.getppid() == pid and parent.is_running():
        family = _family(parent) or family
        time.sleep(INTERVAL_S)
    _kill(family)
    if mark:
        end = time.monotonic() + SWEEP_S
        while time.monotonic() < end:
            _kill(_marked(mark))
            time.sleep(0.2)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    watch(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)


if __name__ == "__main__":
    main()
