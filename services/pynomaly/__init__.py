"""Pynomaly: anomaly-detection model serving over gRPC, scored by onnxruntime."""

from pynomaly.client import Client, DetectResult, ExplainResult, TrainingError

__version__ = "0.1.0"
__all__ = ["Client", "DetectResult", "ExplainResult", "TrainingError", "__version__"]
