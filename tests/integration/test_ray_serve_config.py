"""The Serve config in the repo deploys with Ray's own tool: `serve run services/pynomaly/ray_engine/serve.yaml`
starts a local cluster, and the usual client trains and detects on the gateway the file names (127.0.0.1:50051,
free inside the loopback-only namespace the Ray tests run in)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pynomaly import Client

from conftest import REPO, require_ray

CONFIG = REPO / "services" / "pynomaly" / "ray_engine" / "serve.yaml"


def test_serve_run_deploys_the_config_file(tmp_path: Path):
    require_ray()
    serve = Path(sys.executable).with_name("serve")
    log = (tmp_path / "serve.log").open("w")
    # cwd: the file's relative store (var/store) lands here, where Ray's workers run too.
    # SIGINT as at a terminal: a shell without job control (CI) starts background children with SIGINT ignored,
    # and Python then never raises KeyboardInterrupt, which is how `serve run` shuts down. A session of its own,
    # so that whatever it leaves behind can be stopped as a group.
    proc = subprocess.Popen([str(serve), "run", str(CONFIG)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), start_new_session=True)
    try:
        with Client("127.0.0.1:50051", timeout=5) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    assert {a.name for a in client.list_algorithms()} >= {"iforest", "hbos"}
                    break
                except Exception:  # noqa: BLE001 — UNAVAILABLE until the application is up
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail("serve run did not bring the gateway up:\n" + (tmp_path / "serve.log").read_text())
                    time.sleep(1)
            client.timeout = 120
            X = np.random.default_rng(0).normal(size=(200, 3))
            card = client.train("from-config", X, algorithm="hbos")
            assert client.detect("from-config", X[:4]).anomaly_scores.shape == (4,)
        assert (tmp_path / "var" / "store" / "models" / "from-config" / "versions" / str(card.version)).is_dir()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl+C does: Serve shuts the application down
        try:
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
