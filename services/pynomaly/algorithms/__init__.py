"""The detectors Pynomaly trains, registered in one place: one module per family, each a list `ALGORITHMS`."""

from __future__ import annotations

from pynomaly.algorithms import cluster, covariance, deep, ecdf, ensemble, forest, histogram, linear, neighbors, svm
from pynomaly.algorithms._spec import Algorithm, Param
from pynomaly.errors import InvalidArgument

__all__ = ["ALGORITHMS", "Algorithm", "Param", "get"]

_FAMILIES = (forest, histogram, ecdf, linear, neighbors, cluster, covariance, svm, ensemble, deep)

ALGORITHMS: dict[str, Algorithm] = {a.name: a for family in _FAMILIES for a in family.ALGORITHMS}


def get(name: str) -> Algorithm:
    if not name:
        raise InvalidArgument(f"algorithm is required; available: {', '.join(sorted(ALGORITHMS))}")
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InvalidArgument(
            f"algorithm: unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None
