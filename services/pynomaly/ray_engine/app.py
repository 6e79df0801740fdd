"""The Serve application builder: `serve run pynomaly.ray_engine.app:build store=… listen=…`, or a Serve config
file (pynomaly/ray_engine/serve.yaml) whose `args:` are validated against `AppArgs` (ray_engine/config.py)."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from pynomaly.ray_engine.config import AppArgs
from pynomaly.ray_engine.gateway import Gateway
from pynomaly.ray_engine.scorer import Scorer


def build(args: AppArgs | dict[str, Any]) -> Application:
    """The application. `serve run`/`serve deploy` pass a config file's `args` as a dict (Serve converts only when
    the annotation is the model class itself, which postponed annotations hide): validated here either way."""
    args = AppArgs.model_validate(args)
    scorer = Scorer.options(
        autoscaling_config={
            "min_replicas": args.min_replicas,
            "max_replicas": max(args.max_replicas, args.min_replicas),
            "target_ongoing_requests": args.target_ongoing_requests,
        },
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
        ray_actor_options={"num_cpus": args.replica_cpus},
    ).bind(args.store, args.max_models_per_replica, args.ort_threads, args.max_cache_mb, args.import_run_timeout_s)
    # Serve kills a replica whose shutdown outlasts graceful_shutdown_timeout_s: leave the gateway its grace_s.
    gateway = Gateway.options(ray_actor_options={"num_cpus": 0, "resources": args.gateway_resources},
                              graceful_shutdown_timeout_s=args.grace_s + 5)
    return gateway.bind(scorer, args.model_dump())
