"""Pynomaly: anomaly-detection model serving over gRPC, scored by onnxruntime.

The SDK's names are loaded on first use, so that `import pynomaly.refs` (or any core module) does not load grpc
and the generated stubs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["BatchError", "Client", "DetectResult", "ExplainResult", "TrainingError", "__version__"]

if TYPE_CHECKING:
    from pynomaly.client import BatchError, Client, DetectResult, ExplainResult, TrainingError


def __getattr__(name: str) -> Any:
    if name in ("BatchError", "Client", "DetectResult", "ExplainResult", "TrainingError"):
        from pynomaly import client

        return getattr(client, name)
    raise AttributeError(f"module 'pynomaly' has no attribute {name!r}")
