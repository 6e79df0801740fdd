"""Export cases of the "supervised" family (algorithms.supervised; export.supervised, export.lscp): XGBOD, fitted
on labels (export_checks.fitted passes export_data.far_labels), and LSCP (frozen), on the ensembles' data.

normal: float64 N(0, 1); float32: the same rounded to float32, as the API delivers rows (rows then equal XGBoost's
split values, which are training values); integer: few distinct values (ties in member scores and in splits).
"""

from __future__ import annotations

import export_cases as cases
import export_data as data

NAME = "supervised"
FAMILY = cases.Family(lambda c: data.ensemble_train(c.dataset), lambda t, c, d: data.ensemble_rows(t),
                      data.sparse(11, range(60, 70)))

_MEMBERS = ["hbos", {"algorithm": "iforest", "params": {"n_estimators": 20}}, "ocsvm",
            {"algorithm": "knn", "params": {"n_neighbors": 3}}]

TABLE = (("normal", "float32", "integer"), {
    # PyOD's default members: 8 KNN, 8 LOF, 7 HBOS, 11 OCSVM, 7 IForest (~3 s to fit here).
    "xgbod-default": cases.Config("xgbod", datasets=("normal",)),
    "xgbod-members-depth5": cases.Config("xgbod", {"estimator_list": _MEMBERS,
                                                   "standardization_flag_list": [False, False, True, True],
                                                   "max_depth": 5, "n_estimators": 40}),
    "xgbod-logitraw-sampled": cases.Config("xgbod", {
        "estimator_list": ["lof", "mcd"], "objective": "binary:logitraw", "base_score": 0.3, "n_estimators": 25,
        "subsample": 0.7, "colsample_bytree": 0.6, "colsample_bylevel": 0.8, "learning_rate": 0.3,
        "reg_alpha": 0.5, "random_state": 3}, ("normal", "float32")),
    # No split gains enough: every tree is one leaf.
    "xgbod-stumps": cases.Config("xgbod", {"estimator_list": ["hbos"], "gamma": 1e6, "n_estimators": 3,
                                           "base_score": 0.2}, ("normal",)),
    # LSCP on integer data: distances tie (its export_limit); this seeded default fit has no tie at a k-th neighbour.
    "lscp-default": cases.Config("lscp", {"random_state": 0}),
    "lscp-4members-k10": cases.Config("lscp", {
        "detector_list": ["hbos", "iforest", "ocsvm", {"algorithm": "knn", "params": {"n_neighbors": 3}}],
        "local_region_size": 10, "local_max_features": 0.7, "n_bins": 3, "random_state": 1}, ("normal",)),
    # Two identical members (identical correlations), regions of 2 rows (correlations of exactly ±1).
    "lscp-twins-k2": cases.Config("lscp", {"detector_list": ["hbos", "hbos", "mcd"], "local_region_size": 2,
                                           "random_state": 2}, ("normal", "float32")),
}, set())
