"""Fitted detector -> ONNX graph: X float[N, F] -> anomaly_score float[N], higher = more anomalous.

CONVERTERS is the one registry of supported estimator classes (exact class, no subclass matching: a subclass
may score differently).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest
from sklearn.ensemble import IsolationForest

from .hbos import hbos_to_onnx
from .iforest import pyod_iforest_to_onnx, sklearn_iforest_to_onnx

__all__ = ["CONVERTERS", "ExportError", "supports", "to_onnx"]


class ExportError(Exception):
    """The estimator cannot be exported (unsupported class, not fitted, or wrong feature count)."""


CONVERTERS: dict[type, Callable[[Any, int], onnx.ModelProto]] = {
    IForest: pyod_iforest_to_onnx,
    IsolationForest: sklearn_iforest_to_onnx,
    HBOS: hbos_to_onnx,
}


def supports(estimator_class: type) -> bool:
    return estimator_class in CONVERTERS


def to_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    cls = type(estimator)
    converter = CONVERTERS.get(cls)
    if converter is None:
        names = ", ".join(sorted(f"{c.__module__}.{c.__qualname__}" for c in CONVERTERS))
        raise ExportError(f"no ONNX converter for {cls.__module__}.{cls.__qualname__}; supported: {names}")
    try:
        return converter(estimator, n_features)
    # Converters signal bad input (not fitted, wrong feature count) with ValueError, NotFittedError included;
    # a graph the checker refuses must not be served either.
    except (ValueError, onnx.checker.ValidationError) as exc:
        raise ExportError(f"cannot export {cls.__qualname__}: {exc}") from exc
