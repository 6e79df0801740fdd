"""The primary's gathering of its serving processes' metrics (--workers): a process that is gone, or that answers
with something other than its metrics, is left out of that read; the primary's own series are still served."""

from __future__ import annotations

import socket
import threading

from prometheus_client import CollectorRegistry, Counter

from pynomaly.observability import gathered


def _garbage_server(path: str, reply: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def answer() -> None:
        with server:
            for _ in range(2):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_bad_or_missing_serving_processes_are_left_out(tmp_path):
    own = CollectorRegistry()
    Counter("calls", "Calls.", registry=own).inc(3)
    not_json, wrong_shape = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
    threads = [_garbage_server(not_json, b"not json"), _garbage_server(wrong_shape, b'{"other": 1}')]
    others = [("1", not_json), ("2", wrong_shape), ("3", str(tmp_path / "gone.sock"))]
    families = {f.name: f for f in gathered.Gathered(own, others).collect()}
    assert [(s.name, s.labels, s.value) for s in families["calls"].samples if s.name == "calls_total"] == [
        ("calls_total", {"worker": "0"}, 3.0)]
    assert gathered.served({"bounds": [1.0], "counts": [1, 0], "rows": 1, "flagged": 0}, others, "m", 1) == {
        "bounds": [1.0], "counts": [1, 0], "rows": 1, "flagged": 0}
    for t in threads:
        t.join(5)
