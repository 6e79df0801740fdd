"""The Serve config in the repo deploys with Ray's own tool: `serve run services/pynomaly/ray_engine/serve.yaml`
starts a local cluster, and the usual client trains and detects on the gateway the file names (127.0.0.1:50051,
free inside the loopback-only namespace the Ray tests run in)."""

from __future__ import annotations

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
    proc = subprocess.Popen([str(serve), "run", str(CONFIG)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
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
                proc.kill()
            log.close()
