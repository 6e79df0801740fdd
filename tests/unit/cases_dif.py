"""Export cases of the "dif" family (algorithms.dif: PyOD's DIF, served frozen), on the ensembles' data and on
"repeated": 3 distinct rows, so that isolation trees drawn from 2 of them often hold one node (_cal_score skips
those). Few networks and trees: parity needs a fitted DIF, not a good one.
"""

from __future__ import annotations

import numpy as np

import export_cases as cases
import export_data as data

NAME = "dif"


def train(dataset: str) -> np.ndarray:
    if dataset == "repeated":
        return np.repeat(np.random.default_rng(5).normal(size=(3, data.ENSEMBLE_FEATURES)), 80, axis=0)
    return data.ensemble_train(dataset)


def rows(train: np.ndarray) -> np.ndarray:
    """Fewer rows than the ensembles' (the reference loops over rows and trees in Python): fresh, far, the
    corners, beyond the bounds, and training rows."""
    fresh, _ = data.around(train, fresh=30, far=6, beyond=20)
    return np.vstack([fresh, train[::3]]).astype(np.float64)


FAMILY = cases.Family(lambda c: train(c.dataset), lambda t, c, d: rows(t), data.sparse(7, range(30, 38)))

TABLE = (("normal", "float32", "integer"), {
    "dif-2nets": cases.Config("dif", {"n_ensemble": 2, "random_state": 0}),  # PyOD's network: 500, 100, 20
    "dif-softplus-skip": cases.Config("dif", {
        "n_ensemble": 2, "hidden_neurons": [16], "hidden_activation": "softplus", "skip_connection": True,
        "representation_dim": 5, "max_samples": 64, "n_estimators": 4, "random_state": 1}, ("normal",)),
    "dif-elu": cases.Config("dif", {"n_ensemble": 2, "hidden_activation": "elu", "random_state": 2}, ("normal",)),
    "dif-leaky-relu-3layers": cases.Config("dif", {"n_ensemble": 2, "hidden_activation": "leaky_relu",
                                                   "hidden_neurons": [8, 8, 8], "random_state": 2}, ("normal",)),
    "dif-sigmoid": cases.Config("dif", {"n_ensemble": 2, "hidden_activation": "sigmoid", "random_state": 3},
                                ("normal",)),
    "dif-relu-identity-out": cases.Config("dif", {"n_ensemble": 2, "hidden_activation": "relu", "random_state": 4,
                                                  "representation_dim": 3}, ("normal",)),
    "dif-2samples": cases.Config("dif", {"n_ensemble": 2, "n_estimators": 10, "max_samples": 2,
                                         "hidden_activation": "identity", "random_state": 0}, ("repeated",)),
}, set())
