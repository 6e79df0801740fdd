"""Export cases of the proximity family (ABOD, Sampling, HDBSCAN, COF), picked up by export_cases.py.

Data: normal: a dense N(0, 1) mass and a small tight group away from it (clusters for HDBSCAN), 5 features,
float64; float32: the same rounded to float32, as float32 clients send rows (training rows then reappear exactly);
wide: 20 features (PyOD's HDBSCAN then searches by brute force); duplicates: float32 rows, some present 3 times
(identical neighbours, a row equal to several training rows); integer: values on a grid, so distinct rows are
equidistant everywhere: Sampling (its score, a minimum distance, does not depend on which tied row is nearest) and
COF (equal distances in index order); ABOD and HDBSCAN would take tied rows in their trees' order (a declared limit).
Rows: fresh, far (±1e3, corners), beyond the bounds, next to training rows, and training rows themselves. COF's
reference runs PyOD's COF once per row: its cases stay few and small.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import export_cases
import export_data as data

NAME = "proximity"
FEATURES, WIDE = 5, 20


def train(case: export_cases.Case) -> np.ndarray:
    rng = np.random.default_rng(0)
    width = WIDE if case.dataset == "wide" else FEATURES
    x = np.vstack([rng.normal(size=(130, width)), rng.normal(size=(20, width)) * 0.3 + 4.0])
    if case.dataset == "duplicates":
        x = data.f32(x[:120])
        return np.vstack([x, np.repeat(x[:10], 2, axis=0)])
    return data.variant(x, case.dataset)


def rows(train_rows: np.ndarray, case: export_cases.Case, det: Any) -> np.ndarray:
    scored, rng = data.around(train_rows, fresh=30, far=4, beyond=16)
    near = train_rows[:10] + 1e-4 * rng.normal(size=(10, train_rows.shape[1]))
    return np.vstack([scored, near, train_rows[::5]]).astype(np.float64)


FAMILY = export_cases.Family(train, rows, data.sparse(5, range(30, 36)))

_ALL = ("normal", "float32", "wide", "duplicates")
TABLE = (_ALL, {
    "abod-default": export_cases.Config("abod"),
    "abod-k10": export_cases.Config("abod", {"n_neighbors": 10, "metric": "euclidean"}),
    "sampling-default": export_cases.Config("sampling", {"random_state": 0}, (*_ALL, "integer")),
    "sampling-half": export_cases.Config("sampling", {"subset_size": 0.5, "random_state": 1}, (*_ALL, "integer")),
    "hdbscan-default": export_cases.Config("hdbscan"),
    "hdbscan-mcs10-ms3-balltree": export_cases.Config(
        "hdbscan", {"min_cluster_size": 10, "min_samples": 3, "algorithm": "ball_tree"}),
    "cof-default": export_cases.Config("cof", datasets=("normal",)),
    "cof-k5-memory": export_cases.Config("cof", {"n_neighbors": 5, "method": "memory"},
                                         ("float32", "wide", "duplicates", "integer")),
    # ABOD as a member: FeatureBagging composes its graph per subspace through to_onnx.
    "fb-abod": export_cases.Config("feature_bagging", {"base_estimator": "abod", "n_estimators": 3,
                                                       "random_state": 0}, ("normal",), requires=("combo",)),
}, set())
