"""ECDF-based detectors: PyOD's ECOD and COPOD, with the training distribution frozen.

PyOD scores a batch by computing ECDFs over concat(X_train, batch) (pyod issue 604), so its
decision_function depends on the batch and overwrites the detector's U_l / U_r / O. Served scores freeze the
training distribution instead: a row's score is what PyOD gives that row scored alone. The native reference
does exactly that, one row at a time on a copy: exact, and slow (one pass over X_train per row).

Training values are taken as fitted, float64, as rows are served: a row ties with the training values it equals.
(When rows travelled as float32, the training values had to be rounded to float32 too, or a discrete feature
stored as float64 flipped from "all tied rows count" to "none count": on ADBench mammography, ECOD's ROC-AUC fell
from 0.906 to 0.321. A float32 row still ties only with the training values it equals: send float64 rows.)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import Algorithm

_NOTE = (
    "Frozen training distribution: a row scores as PyOD scores it alone (ECDFs and skewness over the training "
    "values plus the row). Per feature the term is a step function of the float64 value (ECDF counts; the "
    "skewness sign as the exact sign of a cubic): a search tree per feature (one double TreeEnsemble node each) "
    "picks the cell, a Gather its float64 term, computed as PyOD does; exact up to summation order. The graph "
    "grows with the distinct training values (~2 cells each: 12.5 MB for 10k x 20)."
)


def _build_ecod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.ecod import ECOD

    return ECOD(contamination=contamination, n_jobs=1, **p)


def _build_copod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.copod import COPOD

    return COPOD(contamination=contamination, n_jobs=1, **p)


def score_rows_alone(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD's decision_function of each row scored alone against the training values.

    On a copy: decision_function overwrites the detector's U_l, U_r, U_skew and O.
    """
    det = copy.deepcopy(det)
    X = np.asarray(X, dtype=np.float64)
    return np.array([det.decision_function(X[i : i + 1])[0] for i in range(len(X))], dtype=np.float64)


ALGORITHMS = [
    Algorithm(
        name="ecod",
        implementation="pyod.models.ecod.ECOD",
        description="Empirical-CDF Outlier Detection: per feature, -log of the tail probability (the tail picked "
        "by the skewness), summed over features. Parameter-free.",
        params=(),
        build=_build_ecod,
        score=score_rows_alone,
        slow_reference=True,
        frozen=True,
        export_note=_NOTE,
        exact_explanation=True,
    ),
    Algorithm(
        name="copod",
        implementation="pyod.models.copod.COPOD",
        description="Copula-Based Outlier Detection: per feature, -log of the empirical tail probabilities "
        "(skewness-corrected), summed over features. Parameter-free.",
        params=(),
        build=_build_copod,
        score=score_rows_alone,
        slow_reference=True,
        frozen=True,
        export_note=_NOTE,
        exact_explanation=True,
    ),
]
