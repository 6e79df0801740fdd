"""The detectors Pynomaly trains, registered in one place: one module per family, each a list `ALGORITHMS`."""

from __future__ import annotations

from pynomaly.algorithms import (
    auto,
    cluster,
    covariance,
    deep,
    dif,
    ecdf,
    ensemble,
    forest,
    gan,
    histogram,
    linear,
    neighbors,
    neural,
    proximity,
    statistical,
    supervised,
    svm,
    transductive,
)
from pynomaly.algorithms._registry import ALGORITHMS, get
from pynomaly.algorithms._spec import Algorithm, Param, as_declared

__all__ = ["ALGORITHMS", "Algorithm", "Param", "as_declared", "get"]

_FAMILIES = (
    forest,
    histogram,
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
    dif,
    proximity,
    statistical,
    transductive,
    auto,
)

ALGORITHMS.update({a.name: a for family in _FAMILIES for a in family.ALGORITHMS})
