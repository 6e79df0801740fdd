"""Gaussian models: PyOD MCD and GMM, scikit-learn's EllipticEnvelope.

`store_precision` is not exposed: it only decides whether the precision matrix is kept or recomputed per call,
never the score. PyOD's GMM initialisers (`weights_init`, `means_init`, `precisions_init`) take arrays and
`warm_start` only matters for refits: neither fits a one-shot training job.
"""

from __future__ import annotations

import math
from typing import Any

from pynomaly.algorithms._spec import (
    Algorithm,
    Check,
    Param,
    boolean,
    integer,
    literal,
    number,
    pyod_score,
    sklearn_score,
)


def _none_or(check: Check, what: str) -> Check:
    def checked(v: Any) -> Any:
        if v is None:
            return None
        try:
            return check(v)
        except ValueError:
            raise ValueError(f"must be {what} or null") from None

    return checked


_SEED = Param("random_state", "int | null", None, "Seed; null draws a fresh one.", integer(0, 2**32 - 1, none_ok=True))

_MCD_PARAMS = (
    Param("assume_centered", "bool", False, "Fit location and covariance as if the data were centred at 0.", boolean),
    Param(
        "support_fraction",
        "float | null",
        None,
        "Share of rows in the raw MCD support, in (0, 1]; null = (rows + features + 1) / 2.",
        _none_or(number(0.0, 1.0, lo_open=True), "a number in (0, 1]"),
    ),
    _SEED,
)

_MAHALANOBIS_NOTE = "Squared Mahalanobis distance in float64 (Sub, MatMul, Mul, ReduceSum); exact to float32 inputs."


def _build_mcd(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.mcd import MCD

    return MCD(contamination=contamination, **p)


def _build_elliptic(p: dict[str, Any], contamination: float) -> Any:
    from sklearn.covariance import EllipticEnvelope

    return EllipticEnvelope(contamination=contamination, **p)


def _build_gmm(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.gmm import GMM

    return GMM(contamination=contamination, **p)


ALGORITHMS = [
    Algorithm(
        name="mcd",
        implementation="pyod.models.mcd.MCD",
        description="Minimum Covariance Determinant: squared Mahalanobis distance to a robust mean and covariance.",
        params=_MCD_PARAMS,
        build=_build_mcd,
        score=pyod_score,
        export_note=_MAHALANOBIS_NOTE,
    ),
    Algorithm(
        name="sklearn.elliptic_envelope",
        implementation="sklearn.covariance.EllipticEnvelope",
        description="scikit-learn's robust covariance (MCD) envelope; score = -decision_function = squared "
        "Mahalanobis distance + offset_.",
        params=_MCD_PARAMS,
        build=_build_elliptic,
        score=sklearn_score,
        export_note=_MAHALANOBIS_NOTE,
    ),
    Algorithm(
        name="gmm",
        implementation="pyod.models.gmm.GMM",
        description="Gaussian Mixture Model: minus the log-likelihood of the row under the fitted mixture.",
        params=(
            Param("n_components", "int", 1, "Mixture components, ≥ 1.", integer(1, 10_000)),
            Param("covariance_type", "str", "full", "Covariance per component: 'full', 'tied' (one shared), "
                  "'diag' or 'spherical'.", literal("full", "tied", "diag", "spherical")),
            Param("tol", "float", 1e-3, "EM stops when the lower bound gains less than this, ≥ 0.",
                  number(0.0, math.inf)),
            Param("reg_covar", "float", 1e-6, "Added to the covariance diagonals, ≥ 0.", number(0.0, math.inf)),
            Param("max_iter", "int", 100, "EM iterations, ≥ 0.", integer(0, 1_000_000)),
            Param("n_init", "int", 1, "Initialisations; the best is kept, ≥ 1.", integer(1, 1000)),
            Param("init_params", "str", "kmeans", "How responsibilities start: 'kmeans', 'k-means++', 'random' "
                  "or 'random_from_data'.", literal("kmeans", "k-means++", "random", "random_from_data")),
            _SEED,
        ),
        build=_build_gmm,
        score=pyod_score,
        export_note="Per-component Gaussian log-densities as scikit-learn computes them, then log-sum-exp, all "
        "in float64; exact to float32 inputs.",
    ),
]
