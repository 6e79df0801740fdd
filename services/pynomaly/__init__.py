"""Pynomaly: anomaly-detection model serving over gRPC, scored by onnxruntime.

The SDK's names are loaded on first use, so that `import pynomaly.refs` (or any core module) does not load grpc
and the generated stubs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
_CLIENT = ["Client", "DetectResult", "ExplainResult"]
# The SDK's exceptions (pynomaly.client_errors): one per status code a client meets, under ApiError (a grpc.RpcError).
_ERRORS = ["AlreadyExistsError", "ApiError", "BatchError", "DeadlineExceededError", "FailedPreconditionError",
           "FieldViolation", "InternalError", "InvalidArgumentError", "NotFoundError", "PermissionDeniedError",
           "ResourceExhaustedError", "TrainingError", "UnauthenticatedError", "UnavailableError"]
__all__ = [
    "AlreadyExistsError", "ApiError", "BatchError", "Client", "DeadlineExceededError", "DetectResult", "ExplainResult",
    "FailedPreconditionError", "FieldViolation", "InternalError", "InvalidArgumentError", "NotFoundError",
    "PermissionDeniedError", "ResourceExhaustedError", "TrainingError", "UnauthenticatedError", "UnavailableError",
    "__version__",
]

if TYPE_CHECKING:
    from pynomaly.client import Client, DetectResult, ExplainResult
    from pynomaly.client_errors import (
        AlreadyExistsError,
        ApiError,
        BatchError,
        DeadlineExceededError,
        FailedPreconditionError,
        FieldViolation,
        InternalError,
        InvalidArgumentError,
        NotFoundError,
        PermissionDeniedError,
        ResourceExhaustedError,
        TrainingError,
        UnauthenticatedError,
        UnavailableError,
    )


def __getattr__(name: str) -> Any:
    if name in _CLIENT:
        from pynomaly import client

        return getattr(client, name)
    if name in _ERRORS:
        from pynomaly import client_errors

        return getattr(client_errors, name)
    raise AttributeError(f"module 'pynomaly' has no attribute {name!r}")
