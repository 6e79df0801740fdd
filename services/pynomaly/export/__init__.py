"""Fitted detector -> ONNX graph: X double[N, F] -> anomaly_score double[N], higher = more anomalous.

Converters build X float[N, F] -> anomaly_score float[N] graphs (make_model) and `to_onnx` widens them to the
served float64 contract (_graph.double_io): see there what that asks of a converter.

CONVERTERS is the one registry of supported estimator classes, by "module.QualifiedName" (exact class, no
subclass matching: a subclass may score differently). Each family module keeps its own `CONVERTERS` dict;
they are merged here, in one place. Keys are strings so that registering torch detectors imports no torch.
"""

from __future__ import annotations

from . import (
    auto,
    cluster,
    covariance,
    deep,
    dif,
    ecdf,
    ensemble,
    gan,
    hbos,
    iforest,
    linear,
    lscp,
    neighbors,
    neural,
    proximity,
    statistical,
    supervised,
    svm,
    transductive,
)
from ._registry import CONVERTERS, ExportError, class_path, supports, to_onnx

__all__ = ["CONVERTERS", "ExportError", "class_path", "supports", "to_onnx"]

_FAMILIES = (
    iforest,
    hbos,
    ecdf,
    linear,
    neighbors,
    cluster,
    covariance,
    svm,
    ensemble,
    deep,
    gan,
    neural,
    supervised,
    lscp,
    dif,
    proximity,
    statistical,
    transductive,
    auto,
)

for _family in _FAMILIES:
    CONVERTERS.update(_family.CONVERTERS)
