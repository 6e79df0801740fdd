"""`pynomaly serve --workers N --metrics-port P`: one /metrics counts the calls of every process, each sample
labelled `worker` ("0" the primary), and a serving process that is down is left out of a scrape, not fatal to it.
The web console's drift plot, on the primary, counts the rows every process served."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess
from test_serve_workers import CALLS, X, fresh, serving, wait_serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return {f.name: f for f in text_string_to_metric_families(response.read().decode())}


def _by_worker(families: dict[str, Any], family: str, sample: str, **labels: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            counts[s.labels["worker"]] += s.value
    return counts


def _console_rows(srv: ServerProcess, model: str) -> int:
    """The rows the console's model page says were served ("Served since the server started: N rows")."""
    with urllib.request.urlopen(f"http://{srv.http_address}/models/{model}", timeout=30) as response:
        found = re.search(r"Served since the server started: (\d+) rows", response.read().decode())
    assert found, "no served scores on the model page"
    return int(found.group(1))


def _detect_everywhere(srv: ServerProcess) -> None:
    wait_serving(srv, 2)
    with fresh(srv, timeout=120) as c:
        c.train("m", X, algorithm="iforest", params={"random_state": 0})
    for _ in range(CALLS):
        with fresh(srv) as c:
            c.detect("m", X[:5])
            c.list_models()  # forwarded to the primary by the serving processes


def test_the_console_alone_counts_every_processs_rows(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "store", "--workers", "3", "--http-listen", "127.0.0.1:0")
    try:
        _detect_everywhere(srv)
        assert _console_rows(srv, "m") == 5 * CALLS
    finally:
        srv.stop()


def test_metrics_gather_every_process(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    srv = ServerProcess(tmp_path / "store", "--workers", "3", "--metrics-port", str(port),
                        "--http-listen", "127.0.0.1:0")
    try:
        _detect_everywhere(srv)
        families = _scrape(url)
        detect = _by_worker(families, "grpc_server_handled", "grpc_server_handled_total", grpc_method="Detect",
                            grpc_code="OK")
        assert sum(detect.values()) == CALLS
        assert len([w for w, n in detect.items() if n]) >= 2, detect  # the serving processes' calls are counted
        rows = _by_worker(families, "pynomaly_detect_rows", "pynomaly_detect_rows_total", model="m")
        assert sum(rows.values()) == 5 * CALLS and rows.keys() <= {"0", "1", "2"}
        assert _console_rows(srv, "m") == 5 * CALLS
        assert {s.labels["worker"] for s in families["process_resident_memory_bytes"].samples} == {"0", "1", "2"}
        # A forwarded call is counted once, by the primary that served it (and that checked its token and traced it).
        listed = _by_worker(families, "grpc_server_handled", "grpc_server_handled_total", grpc_method="ListModels")
        assert dict(listed) == {"0": CALLS}
        # Job records are the primary's to count, not once per process.
        assert {s.labels["worker"] for s in families["pynomaly_training_jobs"].samples} == {"0"}

        # A scrape asking for some names gets those samples only, from every process.
        only = f"{url}?name[]=process_resident_memory_bytes"
        with urllib.request.urlopen(only, timeout=10) as response:
            text = response.read().decode()
        assert {s.name for f in text_string_to_metric_families(text) for s in f.samples} == {
            "process_resident_memory_bytes"}

        # A serving process killed: the scrape answers without it; once it is replaced it is counted again.
        os.kill(serving(srv)[0], signal.SIGKILL)
        t0 = time.monotonic()
        workers = {s.labels["worker"] for s in _scrape(url)["process_resident_memory_bytes"].samples}
        assert time.monotonic() - t0 < 5 and "0" in workers and len(workers) >= 2
        wait_serving(srv, 2)
        deadline = time.monotonic() + 30
        while len(workers) < 3:
            assert time.monotonic() < deadline, workers
            time.sleep(0.2)
            workers = {s.labels["worker"] for s in _scrape(url)["process_resident_memory_bytes"].samples}
    finally:
        srv.stop()
