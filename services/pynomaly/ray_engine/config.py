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
    grace_s: float = Field(25.0, gt=0, description="on shutdown, seconds the gateway takes to stop: health "
                           "NOT_SERVING at once, calls in flight may finish, training jobs marked interrupted")
    shutdown_delay_s: float = Field(5.0, ge=0, description="the first part of grace_s during which new calls are "
                                    "still taken while health answers NOT_SERVING")
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
    # Limits (pynomaly.limits), the same fields as ServerConfig's: enforced by the Gateway, except max_cache_mb
    # and import_run_timeout_s, which bound each Scorer replica (import_run_timeout_s: the Gateway's import too).
    max_queued_jobs: int = Field(16, ge=1, description="training jobs queued or running at once; beyond: "
                                 "RESOURCE_EXHAUSTED")
    max_versions_per_model: int = Field(100, ge=1, description="versions one model keeps at most; beyond: "
                                        "RESOURCE_EXHAUSTED (delete old ones)")
    max_store_mb: float | None = Field(None, gt=0, description="the model store's size at most, MiB; None: no bound")
    explain_timeout_s: float = Field(30.0, gt=0, description="Kernel SHAP's time when the call sets no deadline")
    import_run_timeout_s: float = Field(10.0, gt=0, description="one onnxruntime run of an imported graph, seconds")
    keep_jobs: int = Field(1000, ge=0, description="finished job records kept (training and batch, each)")
    job_ttl_days: float = Field(30.0, gt=0, description="finished job records older than this are deleted")
    max_cache_mb: float = Field(512.0, gt=0, description="ONNX (+ explain arrays) MiB one Scorer replica keeps "
                                "loaded; a larger version still loads, alone")


# The limits: fields of both AppArgs and ServerConfig (the Gateway passes them through).
LIMIT_FIELDS = ("max_queued_jobs", "max_versions_per_model", "max_store_mb", "explain_timeout_s",
                "import_run_timeout_s", "keep_jobs", "job_ttl_days", "max_cache_mb")
