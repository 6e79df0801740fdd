"""Algorithm specs of this family (filled in by issue #3)."""

from __future__ import annotations

from pynomaly.algorithms._spec import Algorithm

ALGORITHMS: list[Algorithm] = []
