"""The Ray watchdog finds its own cluster's late-born processes by the environment mark, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from pynomaly.ray_engine import watchdog


def test_marked_processes_are_found_and_others_are_not():
    mark, other = uuid.uuid4().hex, uuid.uuid4().hex
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(sleep, env={**os.environ, watchdog.MARK: mark})
    theirs = subprocess.Popen(sleep, env={**os.environ, watchdog.MARK: other})
    plain = subprocess.Popen(sleep, env={k: v for k, v in os.environ.items() if k != watchdog.MARK})
    try:
        found = watchdog._marked(mark)
        assert ours.pid in found and theirs.pid not in found and plain.pid not in found
        watchdog._kill(found)
        assert ours.wait(timeout=10) == -9
        assert theirs.poll() is None and plain.poll() is None, "another cluster's processes are never touched"
    finally:
        for p in (ours, theirs, plain):
            p.kill()
            p.wait()
