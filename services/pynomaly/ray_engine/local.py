"""`pynomaly serve --engine ray`: start (or join) a Ray cluster, deploy the application, serve until stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

APP_NAME = "pynomaly"


def run(args: object, ray_address: str | None = None, log_level: str = "warning") -> None:
    """Deploy `args` (an AppArgs) and block until SIGINT/SIGTERM. Without `ray_address`, a private local cluster
    is started with its node address on 127.0.0.1 and stopped on exit, even when this process is killed
    (pynomaly.ray_engine.watchdog)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a local run
    import ray
    from ray import serve

    from pynomaly.ray_engine import watchdog
    from pynomaly.ray_engine.app import build
    from pynomaly.ray_engine.config import AppArgs

    assert isinstance(args, AppArgs)
    level = log_level.upper()
    if ray_address:
        ray.init(address=ray_address, logging_level=level)
    else:
        # Every process of the private cluster inherits this mark: the watchdog finds by it the ones born too late
        # for its last look at the process tree (orphaned at once when their raylet goes).
        mark = os.environ[watchdog.MARK] = uuid.uuid4().hex  # fresh: never another run's
        subprocess.Popen([sys.executable, "-m", "pynomaly.ray_engine.watchdog", str(os.getpid()), mark],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, logging_level=level,
                 object_store_memory=256 * 1024 * 1024)
    try:
        # No Serve HTTP/gRPC proxy: the Gateway deployment is the ingress (see pynomaly.ray_engine).
        serve.start(proxy_location="Disabled", logging_config={"log_level": level, "enable_access_log": False})
        handle = serve.run(build(args), name=APP_NAME, route_prefix=None)
        address = handle.address.remote().result()
        metrics = handle.metrics_url.remote().result()
        http = handle.http_url.remote().result()
        print(
            f"Pynomaly (Ray engine) is serving on {address} (model store: {args.store}; "
            f"{args.min_replicas}–{args.max_replicas} Scorer replicas)\n"
            f"  health:  grpcurl {'-cacert CA.crt' if args.tls_cert else '-plaintext'} {address} "
            "grpc.health.v1.Health/Check\n"
            f"  train:   pynomaly train --server {address} --name demo --algorithm iforest --data FILE.csv\n"
            f"  detect:  pynomaly detect --server {address} --model demo --data FILE.csv\n"
            f"  OIP v2:  inference.GRPCInferenceService on {address} (tritonclient, any KServe v2 client)\n"
            + (f"  REST:    curl {http}/v2/health/ready (Open Inference Protocol v2)\n"
               f"  console: {http}/ (the web console: models, training, scoring, explanations)\n" if http else "")
            + (f"  metrics: {metrics}\n" if metrics else "")
            + ("  note: --listen asked for any free port; a gateway replica that Serve restarts binds a new one. "
               "Give a fixed port where clients must find it again.\n" if args.listen.endswith(":0") else "")
            + "Press Ctrl+C to stop.",
            flush=True,
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        serve.delete(APP_NAME)
    finally:
        if not ray_address:
            serve.shutdown()
        ray.shutdown()
