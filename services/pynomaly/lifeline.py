"""Child processes that die with their parent: a server killed with SIGKILL must not leave a training worker
fitting at full CPU (nor, through it, multiprocessing's resource tracker, which lives while any process holds its
pipe: spawned workers inherit it).

Two mechanisms, since neither is enough alone:
- Linux's parent-death signal (prctl PR_SET_PDEATHSIG): the kernel sends SIGKILL when the parent goes, even while
  the worker is deep in C code. It fires when the *thread* that forked the child exits, so it is only set when the
  caller says the forking thread lives as long as the process (the embedded pool spawns from the event-loop
  thread), and it is checked against a race: a parent that died before the call leaves the child re-parented.
- A daemon thread polling os.getppid() (portable; a re-parented child sees another parent), which ends the process
  within `interval` seconds even where prctl does not exist.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc symbol: the watch thread alone keeps the promise
        pass


def die_with_parent(parent_pid: int, interval: float = 0.5, parent_death_signal: bool = True) -> None:
    """End this process (now, or when it happens) once `parent_pid` is no longer its parent."""
    if parent_death_signal:
        _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="pynomaly-lifeline", daemon=True).start()
