"""The arguments of the Pynomaly Serve application (a Serve config file's `args:`), validated by pydantic.

Kept apart from the application builder so that the Gateway, the CLI and the chart tests read them without
importing the deployments."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AppArgs(BaseModel):
    """Arguments of the Pynomaly Serve application. Unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    listen: str = Field("127.0.0.1:50051", description="host:port of the gateway's gRPC server (port 0: any)")
    store: str = Field("var/store", description="model store shared by all replicas: a directory or s3://bucket/prefix")
    data_root: str | None = Field(None, description="directory CreateTrainingJob's data_uri and batch jobs' "
                                  "input_uri may read (mounted on every node); None: off")
    output_root: str | None = Field(None, description="directory batch jobs may write outputs under; None: off")
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
    batch_actors: int = Field(2, ge=1, description="Ray Data actors a batch job scores on, at most")
    batch_cpus: float = Field(0.5, gt=0, description="CPUs Ray reserves per batch actor and per read task")
    max_message_mb: float = Field(64.0, gt=0, description="largest request or response, MiB")
    metrics_port: int | None = Field(None, ge=0, description="Prometheus /metrics port on the gateway host; None: off")
    http_listen: str | None = Field(None, description="host:port of the gateway's REST API (the Open Inference "
                                    "Protocol v2 over HTTP/JSON; port 0: any); None: off")
    store_check_seconds: float = Field(10.0, gt=0, description="seconds between checks that the model store can be "
                                       "read (the gateway's grpc.health.v1 readiness)")
    tls_cert: str | None = Field(None, description="PEM certificate chain of the gateway's gRPC and HTTP servers "
                                 "(on every node that may run it; reloaded when the file changes); None: plaintext")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: str | None = Field(None, description="PEM CA bundle: clients must present a certificate it "
                                      "signed (mutual TLS); None: no client certificates")
    health_listen: str | None = Field(None, description="host:port of a plaintext server answering grpc.health.v1 "
                                      "only, for probes that cannot speak TLS; None: off")
    auth_tokens: str | None = Field(None, description="token file (`TOKEN SCOPE[,SCOPE]` a line; reloaded when it "
                                    "changes): every call but health needs a bearer token; None: no auth")
    auth_reflection: Literal["open", "token"] = Field("open", description="server reflection with --auth-tokens: "
                                                      "open, or only for a valid token")
    gateway_resources: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources the Gateway replica needs, to place it on the node "
        "whose address clients reach (the Helm chart gives the head node {\"pynomaly-gateway\": 1} and asks for it "
        "here, so the head pod's Service finds the gateway's ports)")
