"""The algorithm registry, by name. A leaf module: the ensembles look up their members here without importing
the families (pynomaly.algorithms fills ALGORITHMS with every family's)."""

from __future__ import annotations

from pynomaly.algorithms._spec import Algorithm
from pynomaly.errors import InvalidArgument

ALGORITHMS: dict[str, Algorithm] = {}


def get(name: str) -> Algorithm:
    if not name:
        raise InvalidArgument(f"algorithm is required; available: {', '.join(sorted(ALGORITHMS))}",
                              reason="UNKNOWN_ALGORITHM", field="algorithm")
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InvalidArgument(
            f"algorithm: unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}",
            reason="UNKNOWN_ALGORITHM",
        ) from None
