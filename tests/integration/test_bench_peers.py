"""`make bench-peers`' parts that run without MLServer: the bare OIP echo (its ceiling), called by the same
tritonclient load script as the servers, and the table with and without the echo's columns."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import peer_envs, peers


def test_the_echo_answers_the_load_client_with_scores_shaped_like_pynomalys(tritonclient_python, tmp_path):
    server = peer_envs.start_echo(tmp_path / "echo")
    try:
        port = server.grpc.rsplit(":", 1)[1]  # gRPC binds 127.0.0.1 as an IPv4-mapped IPv6 socket
        assert peer_envs.loopback_only(server) in ([server.grpc], [f"[::ffff:127.0.0.1]:{port}"])
        rows = tmp_path / "rows.npy"
        np.save(rows, np.random.default_rng(0).normal(size=(1000, 20)).astype(np.float32))
        out = tmp_path / "scores.npy"
        assert peers.client(tritonclient_python, server, rows, "--scores", str(out)) == {}
        scores = np.load(out)
        assert (scores.dtype, scores.shape, float(np.abs(scores).max())) == (np.float32, (1000,), 0.0)
        timed = peers.client(tritonclient_python, server, rows, "--calls", "20", "--batch-calls", "2",
                             "--seconds", "0.5", "--threads", "2")
        assert timed["latency"]["calls"] == 20 and timed["batch"]["calls"] == 2
        assert timed["throughput"]["calls_per_s"] > 0
    finally:
        pids = peer_envs.tree(server.proc.pid)
        peer_envs.stop(server)
    assert server.proc.returncode is not None and not peer_envs._alive(pids)


def _result(p50_ms: float, rows_per_s: float, calls_per_s: float) -> dict:
    return {"latency": {"p50_s": p50_ms / 1e3}, "batch": {"rows_per_s": rows_per_s},
            "throughput": {"calls_per_s": calls_per_s}}


@pytest.mark.parametrize("echo", [True, False])
def test_the_table_gives_ranges_ratios_and_the_echos_ceiling(echo):
    passes = {peers.ML: [_result(12.0, 50_000, 100), _result(13.0, 40_000, 120)],
              peers.PY: [_result(0.75, 200_000, 1_000), _result(0.80, 220_000, 1_200)]}
    if echo:
        passes[peer_envs.ECHO] = [_result(0.5, 1_000_000, 3_000), _result(0.5, 1_000_000, 3_000)]
    lines = peers.table(passes, {peers.ML: 420.0, peers.PY: 170.0}, threads=8)
    tail = [" 0.50 ms | 24–26× |", " 1,000,000 rows/s | 20–25× |", " 3,000 calls/s | 25–30× |", " – | – |"]
    assert lines == [
        "| | MLServer 1.7.1 | Pynomaly | ratio |" + (" bare OIP echo | ceiling ratio |" if echo else ""),
        "|---|---:|---:|---:|" + ("---:|---:|" if echo else ""),
        "| 1-row p50 | 12.0–13.0 ms | 0.75–0.80 ms | 15–17× |" + (tail[0] if echo else ""),
        "| 1,000-row calls | 40,000–50,000 rows/s | 200,000–220,000 rows/s | 4.0–5.5× |" + (tail[1] if echo else ""),
        "| 8 threads, 1-row calls | 100–120 calls/s | 1,000–1,200 calls/s | 8.3–12× |" + (tail[2] if echo else ""),
        "| idle RSS, whole process tree | 420 MB | 170 MB | 2.5× |" + (tail[3] if echo else ""),
    ]
