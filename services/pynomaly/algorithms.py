"""The detectors Pynomaly trains: their hyperparameters, how to build them, how they score natively.

Every algorithm scores with one convention: higher = more anomalous (PyOD's `decision_function`).
scikit-learn detectors, which score the other way round, are negated here, in their adapter.
Libraries are imported lazily: listing algorithms must not pay for importing PyOD.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pynomaly.errors import InvalidArgument

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    description: str
    check: Check


@dataclass(frozen=True)
class Algorithm:
    name: str
    implementation: str
    description: str
    params: tuple[Param, ...]
    build: Callable[[dict[str, Any], float], Any]
    score: Callable[[Any, np.ndarray], np.ndarray]
    exportable: bool = True
    export_note: str = ""
    exact_explanation: bool = False

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate `given` against the spec and fill in defaults; raise InvalidArgument naming the parameter."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidArgument(
                f"params: unknown hyperparameter {unknown[0]!r} for algorithm {self.name!r}; "
                f"known: {', '.join(known) or 'none'}"
            )
        resolved = {}
        for p in self.params:
            if p.name not in given:
                resolved[p.name] = p.default
                continue
            try:
                resolved[p.name] = p.check(given[p.name])
            except ValueError as e:
                raise InvalidArgument(f"params.{p.name}: {e} (got {given[p.name]!r})") from None
        return resolved


# --- value checks: each returns the coerced value or raises ValueError saying what is valid ---


def _int(lo: int | None = None, hi: int | None = None, *, none_ok: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and none_ok:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer():
            raise ValueError("must be an integer" + (" or null" if none_ok else ""))
        v = int(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"must be an integer in [{lo}, {'∞' if hi is None else hi}]")
        return v

    return check


def _float(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Check:
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("must be a finite number")
        v = float(v)
        if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
            raise ValueError(f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
        return v

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _either(*checks: Check, what: str) -> Check:
    def check(v: Any) -> Any:
        for c in checks:
            try:
                return c(v)
            except ValueError:
                pass
        raise ValueError(f"must be {what}")

    return check


def _literal(*options: str) -> Check:
    def check(v: Any) -> Any:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(repr(o) for o in options)}")
        return v

    return check


def _fraction_or_count(v: Any) -> Any:
    """sklearn's int-or-float convention: an int counts, a non-integral float is a fraction in (0, 1]."""
    if isinstance(v, float) and not v.is_integer():
        return _float(0.0, 1.0, lo_open=True)(v)
    return _int(1)(v)


# --- the tree ensembles ---

_FOREST_PARAMS = (
    Param("n_estimators", "int", 100, "Number of trees, ≥ 1.", _int(1, 10_000)),
    Param(
        "max_samples",
        "int | float | 'auto'",
        "auto",
        "Rows drawn per tree: a count, a fraction in (0, 1], or 'auto' = min(256, rows).",
        _either(_literal("auto"), _fraction_or_count, what="'auto', an integer ≥ 1 or a fraction in (0, 1]"),
    ),
    Param(
        "max_features",
        "int | float",
        1.0,
        "Features drawn per tree: a count, or a fraction in (0, 1] (1.0 = all).",
        _either(
            _float(0.0, 1.0, lo_open=True), _int(1), what="an integer ≥ 1 or a fraction in (0, 1]"
        ),
    ),
    Param("bootstrap", "bool", False, "Draw rows with replacement.", _bool),
    Param("random_state", "int | null", None, "Seed; null draws a fresh one.", _int(0, 2**32 - 1, none_ok=True)),
)


def _build_pyod_iforest(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.iforest import IForest

    return IForest(contamination=contamination, n_jobs=1, **p)


def _build_sklearn_iforest(p: dict[str, Any], contamination: float) -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(contamination=contamination, n_jobs=1, **p)


def _build_hbos(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.hbos import HBOS

    return HBOS(contamination=contamination, **p)


def _pyod_score(det: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(det.decision_function(X), dtype=np.float64)


def _sklearn_score(est: Any, X: np.ndarray) -> np.ndarray:
    return -np.asarray(est.decision_function(X), dtype=np.float64)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm(
            name="iforest",
            implementation="pyod.models.iforest.IForest",
            description="Isolation Forest: rows isolated by few random splits are anomalous.",
            params=_FOREST_PARAMS,
            build=_build_pyod_iforest,
            score=_pyod_score,
            export_note="One TreeEnsemble node over all trees, path lengths summed in float64; exact to float32.",
        ),
        Algorithm(
            name="hbos",
            implementation="pyod.models.hbos.HBOS",
            description="Histogram-based Outlier Score: sum over features of -log2 of the bin density.",
            params=(
                Param(
                    "n_bins",
                    "int | 'auto'",
                    10,
                    "Bins per feature, ≥ 2, or 'auto' (Birgé-Rozenblac, per feature).",
                    _either(_literal("auto"), _int(2, 10_000), what="an integer ≥ 2 or 'auto'"),
                ),
                Param("alpha", "float", 0.1, "Regulariser added to bin densities, in (0, 1).",
                      _float(0.0, 1.0, lo_open=True, hi_open=True)),
                Param("tol", "float", 0.5, "How far outside the bins (in bin widths) a value still takes the edge "
                      "bin's density, in (0, 1).", _float(0.0, 1.0, lo_open=True, hi_open=True)),
            ),
            build=_build_hbos,
            score=_pyod_score,
            export_note="Bin search by comparisons, log-density lookup, tolerance rule; float64 inside; exact to "
            "float32.",
        ),
        Algorithm(
            name="sklearn.isolation_forest",
            implementation="sklearn.ensemble.IsolationForest",
            description="scikit-learn's Isolation Forest; score = -decision_function.",
            params=_FOREST_PARAMS,
            build=_build_sklearn_iforest,
            score=_sklearn_score,
            export_note="One TreeEnsemble node over all trees, path lengths summed in float64; exact to float32.",
        ),
    )
}


def get(name: str) -> Algorithm:
    if not name:
        raise InvalidArgument(f"algorithm is required; available: {', '.join(sorted(ALGORITHMS))}")
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InvalidArgument(
            f"algorithm: unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None
