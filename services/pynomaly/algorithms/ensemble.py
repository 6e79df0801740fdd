"""Ensembles: PyOD LODA, FeatureBagging, SUOD (LSCP: algorithms.supervised).

Members of FeatureBagging and SUOD (and of LSCP and XGBOD) are other platform algorithms, given by name,
optionally with their hyperparameters: `"hbos"` or `{"algorithm": "hbos", "params": {"n_bins": 20}}`, validated by
that algorithm's own spec. Only exportable PyOD detectors whose native score is their `decision_function` can be
members (ECOD and COPOD score against the batch, so they cannot), no ensembles, no detectors that learn from labels,
and no deep detectors (built as wrappers that scikit-learn cannot clone).

FeatureBagging and SUOD import the packages `combo` and `suod` (PyOD's optional dependencies); where they are not
installed, the two are listed as not exportable, saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any

import numpy as np

from pynomaly.algorithms import _registry
from pynomaly.algorithms._spec import (
    Algorithm,
    Check,
    Param,
    algorithm_spec,
    boolean,
    either,
    integer,
    literal,
    number,
    pyod_score,
)

_ENSEMBLES = ("loda", "feature_bagging", "lscp", "suod")
# Looked up, not imported: listing algorithms must stay cheap.
_HAVE_COMBO = find_spec("combo") is not None
_HAVE_SUOD = _HAVE_COMBO and find_spec("suod") is not None


def _missing(package: str) -> str:
    return f"Needs the Python package {package!r} (PyOD's optional dependency), which is not installed here."


_SEED = Param("random_state", "int | null", None, "Seed; null draws a fresh one.", integer(0, 2**32 - 1, none_ok=True))


def _member_algorithm(name: str) -> Algorithm:
    algo = _registry.ALGORITHMS.get(name)
    if algo is None or not _can_be_member(algo):
        allowed = sorted(a.name for a in _registry.ALGORITHMS.values() if _can_be_member(a))
        raise ValueError(f"{name!r} cannot be a member; choose one of {', '.join(allowed)}")
    return algo


def _can_be_member(algo: Algorithm) -> bool:
    from pynomaly.algorithms import deep

    return (
        algo.exportable
        and algo.implementation.startswith("pyod.models.")
        and algo.score is pyod_score
        and algo.name not in _ENSEMBLES
        and not algo.needs_labels  # members are fitted without labels
        # The deep detectors are built as wrappers that scikit-learn's clone (FeatureBagging, SUOD) refuses.
        and algo.name not in {a.name for a in deep.ALGORITHMS}
    )


def member(v: Any) -> dict[str, Any]:
    """A member spec, normalised to {"algorithm": name, "params": {given hyperparameters, coerced}}."""
    return algorithm_spec(v, "member", _member_algorithm)


def members(min_count: int) -> Check:
    def check(v: Any) -> list[dict[str, Any]]:
        if isinstance(v, str | Mapping) or not isinstance(v, list | tuple) or len(v) < min_count:
            raise ValueError(f"must be a list of at least {min_count} members")
        out = []
        for i, m in enumerate(v):
            try:
                out.append(member(m))
            except ValueError as e:
                raise ValueError(f"[{i}]: {e}") from None
        return out

    return check


def _build_member(spec: Mapping[str, Any], contamination: float) -> Any:
    algo = _member_algorithm(spec["algorithm"])
    return algo.build(algo.resolve_params(spec.get("params") or {}), contamination)


def _build_loda(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.loda import LODA

    return LODA(contamination=contamination, **p)


# LODA's bin edges are raised by this share of the projection's scale: far above dot-product rounding
# (~features × 1e-16), far below any bin width.
LODA_EDGE_SLACK = 1e-12


def loda_bins(det: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Projection i of a fitted LODA: (edges t, values v); a projection p scores v[#(t < p)].

    PyOD (pyod 3.6.7 models/loda.py) takes k = searchsorted(limits_i[:n_bins - 1], p, 'left') and adds
    -weights[i] log(histograms_i[k]) / n_random_cuts. A row whose exact projection is an edge (the training row
    that set the lowest edge; rows of data with repeated values) lands in either bin depending on how the dot
    product rounds, and PyOD's rounding changes with the batch (its decision_function is not batch-invariant
    there). Raising the edges by LODA_EDGE_SLACK decides such ties as exact arithmetic does (p <= edge), the same
    way whatever the rounding.
    """
    if isinstance(det.n_bins, str):
        n_bins, hist, limits = det.n_bins_[i], np.asarray(det.histograms_[i]), np.asarray(det.limits_[i])
    else:
        n_bins, hist, limits = det.n_bins, det.histograms_[i], det.limits_[i]
    scale = max(abs(limits[0]), abs(limits[-1]), limits[-1] - limits[0])
    edges = np.asarray(limits[: n_bins - 1], np.float64) + LODA_EDGE_SLACK * scale
    return edges, -det.weights[i] * np.log(hist[:n_bins]) / det.n_random_cuts


def loda_score(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD LODA's decision_function with ties at bin edges decided exactly (see loda_bins): batch-invariant."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(det, ["projections_", "histograms_", "limits_"])
    projected = np.asarray(X, np.float64) @ det.projections_.T
    score = np.zeros(len(projected))
    for i in range(det.n_random_cuts):
        edges, values = loda_bins(det, i)
        score += values[np.searchsorted(edges, projected[:, i], side="left")]
    return score


def _build_feature_bagging(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.feature_bagging import FeatureBagging

    base = _build_member(p["base_estimator"], contamination)
    return FeatureBagging(base_estimator=base, contamination=contamination, n_jobs=1,
                          **{k: v for k, v in p.items() if k != "base_estimator"})


def _build_suod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.suod import SUOD

    detectors = [_build_member(m, contamination) for m in p["base_estimators"]]
    # bps_flag (balanced scheduling) only spreads members over jobs; on, it writes cost-model files into the
    # installed suod package on every fit and decision_function.
    return SUOD(base_estimators=detectors, contamination=contamination, n_jobs=1, bps_flag=False,
                **{k: v for k, v in p.items() if k != "base_estimators"})


def _lof(n_neighbors: int) -> dict[str, Any]:
    return {"algorithm": "lof", "params": {"n_neighbors": n_neighbors}}


# PyOD's SUOD default less COPOD (batch-dependent scores: see the module docstring).
_SUOD_DEFAULT = [
    _lof(15), _lof(20),
    {"algorithm": "hbos", "params": {"n_bins": 10}}, {"algorithm": "hbos", "params": {"n_bins": 20}},
    {"algorithm": "iforest", "params": {"n_estimators": 50}},
    {"algorithm": "iforest", "params": {"n_estimators": 100}},
    {"algorithm": "iforest", "params": {"n_estimators": 150}},
]

_MEMBER_TYPE = "str | {algorithm, params}"

ALGORITHMS = [
    Algorithm(
        name="loda",
        implementation="pyod.models.loda.LODA",
        description="Lightweight On-line Detector of Anomalies: mean negative log density over histograms of "
        "sparse random projections.",
        params=(
            Param("n_bins", "int | 'auto'", 10, "Bins per projection histogram, ≥ 1, or 'auto' (Birgé-Rozenblac "
                  "per projection).", either(literal("auto"), integer(1, 10_000), what="an integer ≥ 1 or 'auto'")),
            Param("n_random_cuts", "int", 100, "Random projections, ≥ 1.", integer(1, 10_000)),
            _SEED,
        ),
        build=_build_loda,
        score=loda_score,
        export_note="Projections by one float64 MatMul, then one TreeEnsemble of per-projection bin searches "
        "summing -log density / cuts; exact to float32 inputs. Reference: PyOD's decision_function, except "
        "that a projection within 1e-12 (relative) of a bin edge counts as on it, where PyOD's bin follows the "
        "rounding of its dot products and changes with the batch.",
    ),
    Algorithm(
        name="feature_bagging",
        implementation="pyod.models.feature_bagging.FeatureBagging",
        description="Feature Bagging: the same detector fitted on random feature subsets; scores averaged or "
        "maximised.",
        params=(
            Param("base_estimator", _MEMBER_TYPE, {"algorithm": "lof", "params": {}},
                  "The member detector: an exportable PyOD algorithm, by name or {algorithm, params}.", member),
            Param("n_estimators", "int", 10, "Members, ≥ 1.", integer(1, 1000)),
            Param("max_features", "int | float", 1.0, "Most features per member: a count, or a fraction in (0, 1] "
                  "of the features; at least half of them are always drawn.",
                  either(number(0.0, 1.0, lo_open=True), integer(1), what="an integer ≥ 1 or a fraction in (0, 1]")),
            Param("bootstrap_features", "bool", False, "Draw features with replacement.", boolean),
            Param("combination", "str", "average", "How member scores combine: 'average' or 'max'.",
                  literal("average", "max")),
            _SEED,
        ),
        build=_build_feature_bagging,
        score=pyod_score,
        exportable=_HAVE_COMBO,
        export_limit="with LOF members (the default), data with duplicate rows: see lof.",
        export_note="Each member's own graph on its feature columns (Gather), member scores kept in float64, "
        "then ReduceMean or ReduceMax; exact when the members' graphs are."
        + ("" if _HAVE_COMBO else " " + _missing("combo")),
    ),
    Algorithm(
        name="suod",
        implementation="pyod.models.suod.SUOD",
        description="SUOD: many detectors, some on random projections and some replaced by random-forest "
        "approximators; standardised scores averaged or maximised.",
        params=(
            Param("base_estimators", f"list[{_MEMBER_TYPE}]", _SUOD_DEFAULT,
                  "At least 2 member detectors: exportable PyOD algorithms, by name or {algorithm, params}. The "
                  "default is PyOD's without COPOD.", members(2)),
            Param("combination", "str", "average", "How standardised member scores combine: 'average' or "
                  "'maximization'.", literal("average", "maximization")),
            Param("rp_flag_global", "bool", True, "Fit LOF, KNN, ABOD and COF members on a Johnson-Lindenstrauss "
                  "random projection.", boolean),
            Param("target_dim_frac", "float", 0.5, "Projected dimensions as a share of the features, in (0, 1].",
                  number(0.0, 1.0, lo_open=True)),
            Param("jl_method", "str", "basic", "Projection matrix: 'basic' (Gaussian) or 'discrete' (±1).",
                  literal("basic", "discrete")),
            Param("approx_flag_global", "bool", True, "Replace LOF, KNN, CBLOF and OCSVM members by random "
                  "forests fitted to their training scores.", boolean),
        ),
        build=_build_suod,
        score=pyod_score,
        exportable=_HAVE_SUOD,
        export_note="Per member: the random projection as a float64 MatMul, its random-forest approximator as "
        "one TreeEnsemble or its own graph; then StandardScaler and mean or max in float64. Not reproducible "
        "from a seed: suod draws projections from NumPy's global generator and its forests are unseeded."
        + ("" if _HAVE_SUOD else " " + _missing("suod")),
    ),
]
