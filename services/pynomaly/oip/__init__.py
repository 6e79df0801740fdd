"""The Open Inference Protocol v2 (the KServe v2 protocol): `inference` holds the part both bindings share; `v2`
holds the stubs generated from proto/pynomaly/oip/v2/grpc_service.proto (package `inference`)."""
