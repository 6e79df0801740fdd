"""The detectors Pynomaly trains, registered in one place: one module per family, each a list `ALGORITHMS`."""

from __future__ import annotations

from pynomaly.algorithms import (
    auto,
    cluster,
    covariance,
    deep,
    ecdf,
    ensemble,
    forest,
    histogram,
    linear,
    neighbors,
    svm,
    transductive,
)
from pynomaly.algorithms._registry import ALGORITHMS, get
from pynomaly.algorithms._spec import Algorithm, Param, as_declared

__all__ = ["ALGORITHMS", "Algorithm", "Param", "as_declared", "get"]

_FAMILIES = (forest, histogram, ecdf, linear, neighbors, cluster, covariance, svm, ensemble, deep, auto, transductive)

ALGORITHMS.update({a.name: a for family in _FAMILIES for a in family.ALGORITHMS})
