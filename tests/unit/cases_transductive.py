"""Export cases of the transductive family (ROD, SOS, LOCI, LMDD): PyOD scores rows relative to the batch, the graphs
score each row as PyOD scores it within the training batch (pynomaly.algorithms.in_batch).

Data sets: normal, float64 N(0, 1); float32: rounded to float32, as rows arrive through the API; integer: few
distinct values (equal distances for LOCI's counts, equal rotation angles for ROD, ties between LMDD's prefix
deviations, duplicate rows); duplicates:
rows repeated (SOS's zero distances are GEMM rounding noise, PyOD's and the graph's alike); shifted: far from the
origin (cancellation in SOS's GEMM distances). Training sets are small: the references are quadratic per row and
PyOD's LOCI fit cubic (80 rows: ~1 s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import export_cases
import export_data as data

NAME = "transductive"
TRAIN_ROWS = 80
FEATURES = 4


def train(case: export_cases.Case) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(TRAIN_ROWS, case.config.features or FEATURES))
    if case.dataset == "duplicates":
        x = np.vstack([x[:60], np.repeat(x[:2], 10, axis=0)])
    return data.variant(x, case.dataset)


def rows(train_rows: np.ndarray, case: export_cases.Case, det: Any) -> np.ndarray:
    """Fresh rows (rounded for integer data), far rows and corners at ±1e3, rows beyond the range, training rows
    (duplicates of themselves in the training batch) and rows at ±1e6."""
    around, _ = data.around(train_rows, fresh=30, far=6, beyond=16, centred=case.dataset == "shifted")
    if case.dataset == "integer":
        around = np.round(around)
    width = train_rows.shape[1]
    huge = np.array([[1e6] * width, [-1e6] * width])
    return np.vstack([around, train_rows[:20], huge]).astype(np.float64)


FAMILY = export_cases.Family(train, rows, data.sparse(5, range(30, 38)))

_DATASETS = ("normal", "float32", "integer", "duplicates", "shifted")
TABLE = (_DATASETS, {
    "rod-4": export_cases.Config("rod"),
    "rod-3": export_cases.Config("rod", features=3),  # rod_3D itself: no scaler, no sigmoid
    "rod-2": export_cases.Config("rod", features=2),  # padded with a zero column to 3
    "rod-7": export_cases.Config("rod", features=7),  # 35 subspaces
    # PyOD's SOS scores training rows with more than `perplexity` exact duplicates NaN (refused: the test file)
    "sos-default": export_cases.Config("sos", datasets=("normal", "float32", "integer", "shifted")),
    "sos-perplexity20-eps1e-3": export_cases.Config("sos", {"perplexity": 20.0, "eps": 1e-3}),
    "loci-default": export_cases.Config("loci"),
    # PyOD's LOCI scores a duplicated training row NaN there (MDEF / sigma = 0 / 0; refused: the test file)
    "loci-alpha0.3-k2": export_cases.Config("loci", {"alpha": 0.3, "k": 2},
                                            ("normal", "float32", "integer", "shifted")),
    # Few orders: each scored row costs a whole LMDD pass over the training batch per order (the default 50:
    # test_export_transductive).
    "lmdd-4orders": export_cases.Config("lmdd", {"n_iter": 4, "random_state": 0}),
    "lmdd-9orders": export_cases.Config("lmdd", {"n_iter": 9, "random_state": 12345}),
}, set())
