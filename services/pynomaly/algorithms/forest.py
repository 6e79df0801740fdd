"""Isolation forests: PyOD's IForest and scikit-learn's IsolationForest."""

from __future__ import annotations

from typing import Any

from pynomaly.algorithms._spec import (
    Algorithm,
    Param,
    boolean,
    either,
    fraction_or_count,
    integer,
    literal,
    number,
    pyod_score,
    sklearn_score,
)

_PARAMS = (
    Param("n_estimators", "int", 100, "Number of trees, ≥ 1.", integer(1, 10_000)),
    Param(
        "max_samples",
        "int | float | 'auto'",
        "auto",
        "Rows drawn per tree: a count, a fraction in (0, 1], or 'auto' = min(256, rows).",
        either(literal("auto"), fraction_or_count, what="'auto', an integer ≥ 1 or a fraction in (0, 1]"),
    ),
    Param(
        "max_features",
        "int | float",
        1.0,
        "Features drawn per tree: a count, or a fraction in (0, 1] (1.0 = all).",
        either(number(0.0, 1.0, lo_open=True), integer(1), what="an integer ≥ 1 or a fraction in (0, 1]"),
    ),
    Param("bootstrap", "bool", False, "Draw rows with replacement.", boolean),
    Param("random_state", "int | null", None, "Seed; null draws a fresh one.", integer(0, 2**32 - 1, none_ok=True)),
)

_NOTE = "One TreeEnsemble node over all trees, path lengths summed in float64; exact to float32."


def _build_pyod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.iforest import IForest

    return IForest(contamination=contamination, n_jobs=1, **p)


def _build_sklearn(p: dict[str, Any], contamination: float) -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(contamination=contamination, n_jobs=1, **p)


ALGORITHMS = [
    Algorithm(
        name="iforest",
        implementation="pyod.models.iforest.IForest",
        description="Isolation Forest: rows isolated by few random splits are anomalous.",
        params=_PARAMS,
        build=_build_pyod,
        score=pyod_score,
        export_note=_NOTE,
    ),
    Algorithm(
        name="sklearn.isolation_forest",
        implementation="sklearn.ensemble.IsolationForest",
        description="scikit-learn's Isolation Forest; score = -decision_function.",
        params=_PARAMS,
        build=_build_sklearn,
        score=sklearn_score,
        export_note=_NOTE,
    ),
]
