"""The Serve application builder: `serve run pynomaly.ray_engine.app:build store=… listen=…`, or a Serve config
file (deploy/serve.yaml) whose `args:` are validated against `AppArgs`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from pynomaly.ray_engine.gateway import Gateway
from pynomaly.ray_engine.scorer import Scorer


class AppArgs(BaseModel):
    """Arguments of the Pynomaly Serve application. Unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    listen: str = Field("127.0.0.1:50051", description="host:port of the gateway's gRPC server (port 0: any)")
    store: str = Field("var/store", description="model store shared by all replicas: a directory or s3://bucket/prefix")
    data_root: str | None = Field(None, description="directory CreateTrainingJob's data_uri may read; None: off")
    min_replicas: int = Field(1, ge=0, description="Scorer replicas kept up when idle")
    max_replicas: int = Field(2, ge=1, description="Scorer replicas at most")
    target_ongoing_requests: float = Field(4.0, gt=0, description="autoscaling target per Scorer replica")
    max_ongoing_requests: int = Field(32, ge=1, description="calls one Scorer replica takes at once")
    max_queued_requests: int = Field(1000, ge=1, description="calls waiting for a Scorer replica before "
                                     "UNAVAILABLE (back pressure)")
    max_models_per_replica: int = Field(16, ge=1, description="model versions one Scorer replica keeps loaded")
    ort_threads: int = Field(1, ge=1, description="threads one Scorer replica splits a large batch over")
    replica_cpus: float = Field(0.5, gt=0, description="CPUs Ray reserves per Scorer replica")
    train_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves per training task")
    max_message_mb: float = Field(64.0, gt=0, description="largest request or response, MiB")
    metrics_port: int | None = Field(None, ge=0, description="Prometheus /metrics port on the gateway host; None: off")


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
    ).bind(args.store, args.max_models_per_replica, args.ort_threads)
    return Gateway.bind(scorer, args.model_dump())
