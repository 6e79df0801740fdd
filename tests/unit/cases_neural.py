"""Export cases of the neural family (AE1SVM, LUNAR, DevNet): picked up by export_cases.py.

Fits are 2-3 epochs on a few hundred seeded rows: parity needs a fitted network, not a good one. AE1SVM and
DevNet score the deep family's rows (verification rows, fresh rows, rows at ±1e3); LUNAR the neighbour family's
(and every training row: its own nearest reference point, at distance 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import export_cases
import export_data as data

NAME = "neural"


def _train(case: export_cases.Case) -> np.ndarray:
    if case.algorithm == "lunar":
        return data.neighbors_train(case.dataset)
    return data.deep_train(case.dataset)


def _rows(train: np.ndarray, case: export_cases.Case, det: Any) -> np.ndarray:
    if case.algorithm == "lunar":
        return data.neighbors_rows(train)
    return data.deep_rows(train)


FAMILY = export_cases.Family(_train, _rows, lambda n: np.r_[np.linspace(0, n - 1, 40).astype(int), n - 2, n - 1])

CONTRIBUTIONS = frozenset({"ae1svm"})


def pyod_lunar() -> Any:
    """PyOD's LUNAR as a user fits it: algorithm "auto" (a k-d tree on 6 features; on 20, brute force with the
    GEMM expansion, whose rounding the float32 distances the network reads absorb), 3 epochs."""
    from pyod.models.lunar import LUNAR

    return LUNAR(n_epochs=3, random_state=0)


def pyod_devnet() -> Any:
    """PyOD's DevNet itself (the registry's "devnet" wraps it, seeded), the deepest network."""
    from pyod.models.devnet import DevNet

    return DevNet(network_depth=4, epochs=2, device="cpu")


_LUNAR = ("normal", "float32", "wide", "duplicates")
_AE1SVM_RAW = {"epochs": 2, "preprocessing": False, "batch_norm": False, "hidden_activation": "tanh",
               "hidden_neurons": [8, 4], "dropout_rate": 0.0, "kernel_approx_features": 50}

# normal: N(0, 1), 6 features; constant: a column of std 0 (AE1SVM standardizes it by 1e-6 + 1e-8); LUNAR's
# neighbour search also on float32 (rows equal to reference points), wide (20 features) and duplicates (rows
# repeated more often than k); its other networks and scalers on normal.
TABLE = (("normal",), {
    "ae1svm-default": export_cases.Config("ae1svm", {"epochs": 2}, ("normal", "constant")),
    "ae1svm-raw-tanh-nobn": export_cases.Config("ae1svm", _AE1SVM_RAW),
    "lunar-default": export_cases.Config("lunar", {"n_epochs": 3, "random_state": 0}, _LUNAR),
    "lunar-score-k10-standard": export_cases.Config("lunar", {"model_type": "SCORE", "n_neighbours": 10,
                                                              "scaler": "standard", "n_epochs": 3,
                                                              "random_state": 0}),
    "lunar-unscaled-uniform-k1": export_cases.Config("lunar", {"scaler": "none", "negative_sampling": "UNIFORM",
                                                               "n_neighbours": 1, "n_epochs": 3,
                                                               "random_state": 1}),
    "lunar-pyod": export_cases.Config("lunar", datasets=("normal", "wide"), factory=pyod_lunar),
    "devnet-default": export_cases.Config("devnet", {"epochs": 2}),
    "devnet-pyod-depth4": export_cases.Config("devnet", factory=pyod_devnet),
}, set())
