"""The converter registry and `to_onnx`. A leaf module: the ensemble converters compose their members' graphs
through `to_onnx` without importing the families (pynomaly.export fills CONVERTERS with every family's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

from ._graph import double_io

CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {}


class ExportError(Exception):
    """The estimator cannot be exported (unsupported class, not fitted, or wrong feature count)."""


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def supports(estimator_class: type) -> bool:
    return class_path(estimator_class) in CONVERTERS


def to_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    """The served graph of a fitted estimator: X double[N, F] -> anomaly_score double[N] (+ contributions)."""
    cls = type(estimator)
    converter = CONVERTERS.get(class_path(cls))
    if converter is None:
        raise ExportError(f"no ONNX converter for {class_path(cls)}; supported: {', '.join(sorted(CONVERTERS))}")
    try:
        return double_io(converter(estimator, n_features))
    # Converters signal bad input (not fitted, wrong feature count) with ValueError, NotFittedError included;
    # a graph the checker refuses must not be served either.
    except (ValueError, onnx.checker.ValidationError) as exc:
        raise ExportError(f"cannot export {cls.__qualname__}: {exc}") from exc
