"""Fitted detector -> ONNX graph: X float[N, F] -> anomaly_score float[N], higher = more anomalous.

CONVERTERS is the one registry of supported estimator classes, by "module.QualifiedName" (exact class, no
subclass matching: a subclass may score differently). Each family module keeps its own `CONVERTERS` dict;
they are merged here, in one place. Keys are strings so that registering torch detectors imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

from . import cluster, covariance, deep, ecdf, ensemble, hbos, iforest, linear, neighbors, svm

__all__ = ["CONVERTERS", "ExportError", "supports", "to_onnx"]


class ExportError(Exception):
    """The estimator cannot be exported (unsupported class, not fitted, or wrong feature count)."""


_FAMILIES = (iforest, hbos, ecdf, linear, neighbors, cluster, covariance, svm, ensemble, deep)

CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    path: converter for family in _FAMILIES for path, converter in family.CONVERTERS.items()
}


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def supports(estimator_class: type) -> bool:
    return class_path(estimator_class) in CONVERTERS


def to_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    cls = type(estimator)
    converter = CONVERTERS.get(class_path(cls))
    if converter is None:
        raise ExportError(f"no ONNX converter for {class_path(cls)}; supported: {', '.join(sorted(CONVERTERS))}")
    try:
        return converter(estimator, n_features)
    # Converters signal bad input (not fitted, wrong feature count) with ValueError, NotFittedError included;
    # a graph the checker refuses must not be served either.
    except (ValueError, onnx.checker.ValidationError) as exc:
        raise ExportError(f"cannot export {cls.__qualname__}: {exc}") from exc
