"""`python -m pynomaly.ray_engine.watchdog PID`: when `pynomaly serve --engine ray` (PID, our parent) dies, even by
SIGKILL, end the private Ray cluster it started.

Ray fate-shares most of a cluster with its driver (the raylet, the GCS and the workers go when it does), but not
all: its dashboard and runtime-env agents were seen running 15 s and more after a kill -9, trying to report the
raylet's death to a GCS that is gone. This process notes every descendant of PID twice a second (pid and start
time, so a reused pid is never mistaken for ours) and, once PID is gone, SIGKILLs those still running. Only PID's
own descendants are touched: another Ray cluster on the host is never affected. A process born in the last half
second before the kill is missed; those are Ray workers, which end with their raylet.

It ignores SIGINT and SIGTERM (Ctrl+C reaches the whole process group): it exits once its parent has.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil  # a dependency of Ray's

INTERVAL_S = 0.5


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


def watch(pid: int) -> None:
    parent = psutil.Process(pid)
    family: dict[int, float] = {}
    while os.getppid() == pid and parent.is_running():
        family = _family(parent) or family
        time.sleep(INTERVAL_S)
    _kill(family)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    watch(int(sys.argv[1]))


if __name__ == "__main__":
    main()
