"""`make bench-ray`: Detect through the Ray engine vs a bare Ray Serve echo deployment vs the embedded server.

All in one run, on one private Ray cluster (node address 127.0.0.1; `make bench-ray` runs it inside a
loopback-only network namespace, since Serve's gRPC proxy binds every interface):

- echo: a Serve deployment answering DetectService/Detect with a same-shaped response and no model work, reached
  through Ray Serve's own gRPC proxy — what a bare Ray Serve gRPC app costs;
- ray: Detect on the same request through the Pynomaly application (Gateway → Scorer replica → onnxruntime);
- embedded: Detect on the same request through `pynomaly serve` (one process), for reference.

Then the resident memory of every Ray process. Calls are interleaved so drift hits all three alike.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import grpc

from benchmarks.bench import _fmt, _percentiles, data
from pynomaly import Client
from pynomaly.client import to_matrix
from pynomaly.v1 import detect_pb2, detect_pb2_grpc

ECHO_APP = "echo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _echo_app() -> object:
    from ray import serve

    @serve.deployment(name="Echo", ray_actor_options={"num_cpus": 0}, logging_config={"enable_access_log": False})
    class Echo:
        def Detect(self, request: detect_pb2.DetectRequest) -> detect_pb2.DetectResponse:  # noqa: N802 — the RPC
            n = request.rows.rows
            return detect_pb2.DetectResponse(anomaly_scores=[0.0] * n, is_anomaly=[False] * n, threshold=0.0,
                                             model_name=request.model, model_version=1)

    return Echo.bind()


def _memory() -> dict[str, float]:
    """Resident MiB of the Ray processes of this machine, by role (replicas, controller, raylet, GCS, workers)."""
    rss: dict[str, float] = defaultdict(float)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        if "ray::ServeReplica:pynomaly:Gateway" in cmd:
            role = "Gateway replica"
        elif "ray::ServeReplica:pynomaly:Scorer" in cmd:
            role = "Scorer replicas"
        elif "ray::ServeReplica:echo" in cmd:
            role = "echo replica"
        elif "ray::ServeController" in cmd:
            role = "Serve controller"
        elif "ray::ProxyActor" in cmd:
            role = "Serve proxy"
        elif "ray::_QueueActor" in cmd:
            role = "job progress queue"
        elif "ray::IDLE" in cmd or "_train" in cmd:
            role = "workers (training, idle)"
        elif "ray::DashboardAgent" in cmd or "ray::RuntimeEnvAgent" in cmd or "dashboard" in cmd:
            role = "dashboard and agents"
        elif "raylet" in cmd.split(" ")[0]:
            role = "raylet"
        elif "gcs_server" in cmd.split(" ")[0]:
            role = "GCS"
        elif "ray::" in cmd or "/site-packages/ray/" in cmd:
            role = "other Ray processes"
        else:
            continue
        rss[role] += kb / 1024
    return dict(rss)


def _embedded(store: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--store",
                             store, "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving on 127.0.0.1:" in line:
            return proc, line.split("serving on ")[1].split()[0]
    raise RuntimeError("the embedded server did not start")


def run(calls: int) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from pynomaly.ray_engine.app import build
    from pynomaly.ray_engine.config import AppArgs

    train, score = data()
    grpc_port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                 object_store_memory=256 * 1024 * 1024, logging_level="WARNING", log_to_driver=False)
        proc = None
        try:
            serve.start(
                proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": _free_port()},
                grpc_options={"port": grpc_port, "grpc_servicer_functions": [
                    "pynomaly.v1.detect_pb2_grpc.add_DetectServiceServicer_to_server"]},
                logging_config={"log_level": "WARNING", "enable_access_log": False},
            )
            serve.run(_echo_app(), name=ECHO_APP, route_prefix="/echo")
            app = serve.run(build(AppArgs(listen="127.0.0.1:0", store=f"{tmp}/ray", min_replicas=1, max_replicas=1)),
                            name="pynomaly", route_prefix=None)
            ray_address = app.address.remote().result()
            proc, embedded_address = _embedded(f"{tmp}/embedded")
            for address in (ray_address, embedded_address):
                with Client(address, timeout=600) as c:
                    c.train("bench", train, algorithm="iforest", params={"n_estimators": 100, "random_state": 0})
            channels = {k: grpc.insecure_channel(a) for k, a in
                        (("echo", f"127.0.0.1:{grpc_port}"), ("ray", ray_address), ("embedded", embedded_address))}
            stubs = {k: detect_pb2_grpc.DetectServiceStub(ch).Detect for k, ch in channels.items()}
            metadata = {"echo": (("application", ECHO_APP),), "ray": None, "embedded": None}
            print(f"Detect, {calls} calls per payload, interleaved (IForest 100 trees, 20 features; 1 Scorer replica)")
            print(f"{'rows':>5} {'':4} {'echo (Serve proxy)':>19} {'pynomaly ray':>13} {'ratio':>6}   "
                  f"{'embedded':>9} {'ray / embedded':>15}")
            for rows in (1, 1000):
                request = detect_pb2.DetectRequest(model="bench@1", rows=to_matrix(score[:rows])[0])
                n = calls if rows == 1 else max(calls // 10, 50)
                times: dict[str, list[float]] = {k: [] for k in stubs}
                for i in range(n + 50):
                    for k, stub in stubs.items():
                        t0 = time.perf_counter()
                        stub(request, metadata=metadata[k], timeout=60)
                        if i >= 50:  # the first 50 warm up
                            times[k].append(time.perf_counter() - t0)
                for label, pick in (("p50", 0), ("p99", 1)):
                    e, r, m = (_percentiles(times[k])[pick] for k in ("echo", "ray", "embedded"))
                    print(f"{rows:>5} {label:4} {_fmt(e):>19} {_fmt(r):>13} {r / e:>5.2f}×   {_fmt(m):>9} "
                          f"{r / m:>14.1f}×")
            for ch in channels.values():
                ch.close()
            print("\nResident memory of the Ray processes (MiB; after the run, the training task's worker included)")
            memory = _memory()
            for role, mib in sorted(memory.items()):
                print(f"  {role:26} {mib:8.0f}")
            print(f"  {'total':26} {sum(memory.values()):8.0f}")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            serve.shutdown()
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls per payload and target (default 1000)")
    run(parser.parse_args().calls)


if __name__ == "__main__":
    main()
