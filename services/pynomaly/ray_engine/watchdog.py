"""`python -m pynomaly.ray_engine.watchdog PID MARK`: when `pynomaly serve --engine ray` (PID, our parent) dies, even
by SIGKILL, end the private Ray cluster it started.

Ray fate-shares most of a cluster with its driver (the raylet, the GCS and the workers go when it does), but not
all: its dashboard and runtime-env agents were seen running 15 s and more after a kill -9, trying to report the
raylet's death to a GCS that is gone. This process notes every descendant of PID twice a second and, once PID is
gone, SIGKILLs those still running. A process born in the last half second before the kill (a Ray worker, orphaned
at once when its raylet goes) is found by the mark the CLI puts in its environment, `PYNOMALY_CLUSTER=<random id>`,
which every process of the cluster inherits. Only PID's own descendants and processes carrying our mark are
touched: another Ray cluster on the host is never affected.

After the kill it sweeps for at least SWEEP_S seconds, and on while any of those processes still runs (one that a
SIGKILL has not ended yet is sent it again), up to SWEEP_MAX_S; then it says on stderr what it killed, if anything.

Processes are held as psutil.Process objects: their identity (pid and start time since boot) is immune to clock
changes and to pid reuse, where a start time in wall-clock seconds compared later is not (it moves when the clock is
adjusted).

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
SWEEP_MAX_S = 60.0


def _family(parent: psutil.Process) -> list[psutil.Process]:
    try:
        return [child for child in parent.children(recursive=True) if child.pid != os.getpid()]
    except psutil.Error:
        return []


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill(processes: list[psutil.Process]) -> list[psutil.Process]:
    """SIGKILL each one still running (psutil refuses a pid since reused); returns those it was sent to."""
    sent = []
    for process in processes:
        if _running(process):
            try:
                process.kill()
                sent.append(process)
            except psutil.Error:
                continue
    return sent


def _marked(mark: str) -> list[psutil.Process]:
    """Processes whose environment carries our cluster's mark (readable for our own user's processes)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            with open(f"/proc/{process.pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(process)
    return found


def sweep(family: list[psutil.Process], mark: str | None, least_s: float = SWEEP_S,
          most_s: float = SWEEP_MAX_S) -> tuple[set[int], list[int]]:
    """Kill `family` and every process carrying `mark` until none runs (for at least `least_s`, at most `most_s`).
    Returns the pids sent SIGKILL and those still running at the end."""
    start, killed = time.monotonic(), set()
    while True:
        ours = family + (_marked(mark) if mark else [])
        killed.update(p.pid for p in _kill(ours))
        time.sleep(0.2)
        left = [p.pid for p in ours if _running(p)]
        took = time.monotonic() - start
        if took >= most_s or (took >= least_s and not left):
            return killed, left


def watch(pid: int, mark: str | None = None) -> None:
    parent = psutil.Process(pid)
    family: list[psutil.Process] = []
    while os.getppid() == pid and parent.is_running():
        family = _family(parent) or family
        time.sleep(INTERVAL_S)
    killed, left = sweep(family, mark)
    if not killed and not left:  # a clean stop: the server ended its cluster itself
        return
    try:
        print(f"pynomaly watchdog: server {pid} is gone; SIGKILLed {len(killed)} process(es) of its Ray cluster"
              + (f"; still running: {sorted(left)}" if left else ""), file=sys.stderr, flush=True)
    except OSError:  # nobody reads our stderr any more
        pass


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    watch(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)


if __name__ == "__main__":
    main()
