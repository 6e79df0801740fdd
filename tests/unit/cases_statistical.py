"""Export cases of the statistical family: MAD (one feature), QMCD, KPCA, CD (frozen: scored within the training
rows, one row at a time, so the data stay small)."""

from __future__ import annotations

from typing import Any

import numpy as np

import export_cases
import export_data as data

NAME = "statistical"
FEATURES = 5
TRAIN_ROWS = 200


def train(case: export_cases.Case) -> np.ndarray:
    """normal: float64 N(0, 1), correlated; float32: the same rounded to float32 (rows can equal training values);
    integer: few distinct values (ties, MAD's median on a value); shifted: far from the origin (cancellation in the
    kernels' |x|² - 2 x·t + |t|², the min-max scaling, CD's regressions without intercept in the leverages)."""
    width = case.config.features or FEATURES
    x = np.random.default_rng(0).normal(size=(TRAIN_ROWS, width)) * np.linspace(0.5, 2.0, FEATURES)[:width]
    if x.shape[1] > 1:
        x[:, 1] += 0.6 * x[:, 0]
    return data.variant(x, case.dataset)


def rows(train_rows: np.ndarray, case: export_cases.Case, det: Any) -> np.ndarray:
    """Fresh rows about the training mean, far rows (±1e3 and the corners), rows beyond the bounds, the training
    bounds themselves (QMCD's scaled 0 and 1), training rows, and for MAD its median and median ± MAD."""
    few = case.algorithm == "cd"  # its reference scores one row at a time, each within all the training rows
    around, _ = data.around(train_rows, fresh=30 if few else 60, far=6 if few else 10, beyond=20 if few else 40,
                            centred=True)
    extra = [train_rows.min(axis=0)[None], train_rows.max(axis=0)[None], train_rows[: 20 if few else 40]]
    if case.algorithm == "mad":
        extra.append(np.array([[det.median_], [det.median_ + det.median_diff_], [det.median_ - det.median_diff_]]))
    return np.vstack([around, *extra]).astype(np.float64)


FAMILY = export_cases.Family(train, rows, data.sparse(7, range(30, 36)))

_REFERENCE = ("normal", "float32", "integer")
TABLE = (("normal", "float32", "integer", "shifted"), {
    "mad": export_cases.Config("mad", features=1),
    "qmcd": export_cases.Config("qmcd"),
    "kpca-default": export_cases.Config("kpca"),
    "kpca-3-selected2": export_cases.Config("kpca", {"n_components": 3, "n_selected_components": 2}),
    "kpca-arpack-6": export_cases.Config("kpca", {"n_components": 6, "eigen_solver": "arpack", "random_state": 0}),
    "kpca-sampling-rbf0.5": export_cases.Config("kpca", {"sampling": True, "subset_size": 0.5, "gamma": 0.5,
                                                         "random_state": 1}),
    # Far from the origin poly kernels are ~1e12-1e18 and the training scores ~1: their order is rounding (refused).
    "kpca-poly2": export_cases.Config("kpca", {"kernel": "poly", "degree": 2, "coef0": 0.5}, _REFERENCE),
    "kpca-poly3-gamma0.3": export_cases.Config("kpca", {"kernel": "poly", "gamma": 0.3, "n_components": 15},
                                               _REFERENCE),
    "kpca-sigmoid": export_cases.Config("kpca", {"kernel": "sigmoid", "gamma": 0.05, "n_components": 6},
                                        _REFERENCE),
    "kpca-linear-3": export_cases.Config("kpca", {"kernel": "linear", "n_components": 3}),
    # Far from the origin every row has nearly the same direction: the cosine kernel is then flat.
    "kpca-cosine-3": export_cases.Config("kpca", {"kernel": "cosine", "n_components": 3}, _REFERENCE),
    "cd": export_cases.Config("cd"),
}, set())
