"""Clustering-based detectors: PyOD's CBLOF (k-means clusters split into large and small)."""

from __future__ import annotations

from typing import Any

from pynomaly.algorithms._spec import Algorithm, Param, boolean, integer, number, pyod_score


def _build_cblof(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.cblof import CBLOF

    return CBLOF(contamination=contamination, **p)


ALGORITHMS = [
    Algorithm(
        name="cblof",
        implementation="pyod.models.cblof.CBLOF",
        description="Cluster-Based Local Outlier Factor: k-means clusters split into large and small ones; "
        "score = distance to the nearest large cluster's centre (optionally × the row's cluster size).",
        params=(
            Param("n_clusters", "int", 8, "k-means clusters, ≥ 2.", integer(2, 10_000)),
            Param("alpha", "float", 0.9, "Share of the rows the large clusters must hold, in (0, 1).",
                  number(0.0, 1.0, lo_open=True, hi_open=True)),
            Param("beta", "float", 5, "Size ratio between the last large and the first small cluster, > 1.",
                  number(1.0, 1e12, lo_open=True)),
            Param("use_weights", "bool", False, "Multiply the score by the size of the row's cluster.", boolean),
            Param("random_state", "int | null", None, "k-means seed; null draws a fresh one.",
                  integer(0, 2**32 - 1, none_ok=True)),
        ),
        build=_build_cblof,
        score=pyod_score,
        export_note="Exact distances to the k-means centres ([N, clusters, features] in float64); score = the "
        "smallest distance to a large cluster's centre (what PyOD computes for rows of small and large clusters "
        "alike), times the nearest centre's cluster size with use_weights.",
    ),
]
