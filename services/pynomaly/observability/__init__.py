"""Tracing (OpenTelemetry) and metrics (Prometheus) of the platform; both off by default, at no cost when off.

Switching on:
- tracing: the standard OTEL_* variables only (rule in `tracing`), e.g.
  `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 pynomaly serve`;
- metrics: `pynomaly serve --metrics-port 9464` serves http://HOST:9464/metrics on the --listen host (`metrics`).
When off, neither opentelemetry nor prometheus_client is imported, no interceptor is installed, and the core's calls
hit shared no-op objects (`tracing.NOOP`, `metrics.NO_METRICS`).

Span tree of a Detect call (names; attributes in brackets):

    pynomaly.v1.DetectService/Detect   SERVER [rpc.system, rpc.service, rpc.method, rpc.grpc.status_code;
    │                                           pynomaly.model.name, .model.version, .algorithm, .rows, .features]
    ├── decode                         [pynomaly.request.bytes]   the request's protobuf parse
    ├── load_model                     [pynomaly.cache.hit]       resolve the reference, session from the cache
    ├── onnxruntime.run
    ├── threshold                      [pynomaly.threshold, pynomaly.rows.flagged]
    └── encode                         [pynomaly.response.bytes]  the response's serialization

The model's attributes go on the RPC span itself, where a trace search looks first. Each span costs the Python SDK
about 20 µs, so the tree holds the stages the issue names and no more; sample with OTEL_TRACES_SAMPLER where that
matters (an unsampled span costs well under a microsecond).

and of training (the job outlives the RPC that created it, in the same trace):

    pynomaly.v1.TrainService/CreateTrainingJob   SERVER
    └── training_job                   [pynomaly.job.id, .model.name, .algorithm, .rows, .features;
        │                               at the end .job.state, .model.version]
        ├── fit                        recorded from the worker's timings
        ├── export                     recorded from the worker's timings
        ├── verify                     recorded from the worker's timings
        └── register                   the registry write, timed in the server

Training runs in a spawned worker process that has no tracer: the worker times its stages (wall clock, comparable
across processes on one host) and sends them back with its result, or attached to its exception when it fails; the
server then records them as children of the job's span with explicit start and end times. So the worker needs no
exporter, and a failed job still shows how far it got.

Status of a failed RPC: every code but OK marks the server span ERROR, with "CODE: details" as the description and
rpc.grpc.status_code / error.type attributes. OpenTelemetry's RPC conventions (and the stock grpc instrumentation)
leave client-caused codes such as INVALID_ARGUMENT and NOT_FOUND UNSET on server spans. We chose ERROR because a
model server's commonest failures are exactly those (a client sending the wrong width after a feature change, a
deleted model version) and they must show up in a trace search for errors; the numeric code lets a query separate
them from server faults (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED).
"""
