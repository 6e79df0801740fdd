"""The Ray Serve engine: the same API, with scoring on autoscaled replicas and training as Ray tasks.

One Serve application (`pynomaly.ray_engine.app:build`), two deployments:

- `Gateway` (one replica): our own grpc.aio server — the same servicers, status mapping, health, reflection,
  bidi streaming, interceptors and metrics as the embedded engine — bound to the configured address. Model and job
  RPCs run here against the shared model store; training jobs run as Ray tasks; Detect/Explain resolve the model
  reference and go to a `Scorer` replica through a deployment handle.
- `Scorer` (autoscaled): onnxruntime sessions loaded on demand, at most `max_models_per_replica` per replica
  (Serve model multiplexing keyed by `name@version`, so calls for one version go to replicas that hold it).

Why our own ingress rather than Ray Serve's gRPC proxy: the proxy binds every interface, has no TLS, no
grpc.health.v1, no bidi streaming, and turns an uncaught exception into INTERNAL with the remote traceback.
"""
