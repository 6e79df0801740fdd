"""Detectors built on other detectors' scores: PyOD's XGBOD (learns from labels) and LSCP.

XGBOD (pyod 3.6.7 models/xgbod.py) fits its unsupervised members ("TOS": KNN, LOF, HBOS, OCSVM and IForest at
several settings by default; the members flagged for it on the training data standardised), appends their
scores to the row, and fits an XGBoost classifier on the labels; the score is that classifier's probability of
an anomaly. Its members are given like an ensemble's (pynomaly.algorithms.ensemble.member): exportable PyOD
detectors, by name or {algorithm, params}. Only the "gbtree" booster is offered: the export writes its trees.

LSCP: see its own section below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynomaly.algorithms import _registry
from pynomaly.algorithms._spec import (
    Algorithm,
    Check,
    Param,
    boolean,
    either,
    integer,
    literal,
    number,
    pyod_score,
)
from pynomaly.algorithms.ensemble import members

_INF = float("inf")


def _flags(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str | Mapping) or not isinstance(v, list | tuple) or not v:
        raise ValueError("must be null or a non-empty list of true/false, one per member of estimator_list")
    return [boolean(b) for b in v]


def _non_negative(hi: float = _INF) -> Check:
    return number(0.0, hi)


def _build_member(spec: Mapping[str, Any], contamination: float) -> Any:
    algo = _registry.get(spec["algorithm"])
    return algo.build(algo.resolve_params(spec.get("params") or {}), contamination)


def _build_xgbod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.xgbod import XGBOD

    p = dict(p)
    specs = p.pop("estimator_list")
    estimators = None if specs is None else [_build_member(m, contamination) for m in specs]
    # XGBOD takes no contamination (its **kwargs would hand it to XGBoost, which warns it is unused; the platform
    # sets the threshold from the served training scores) and passes `silent` on to XGBoost, which has no such
    # parameter any more: None is dropped, any other value warned about. One thread, as every detector trains here.
    return XGBOD(estimator_list=estimators, silent=None, n_jobs=1, nthread=None, **p)


_XGBOD_PARAMS = (
    Param("estimator_list", "list[str | {algorithm, params}] | null", None,
          "The unsupervised members whose scores are appended to the row: exportable PyOD algorithms, by name or "
          "{algorithm, params}; null: PyOD's default (KNN and LOF with k in 1..50 below the row count, HBOS with "
          "5..50 bins, OCSVM with nu in 0.01..0.99, IForest with 10..200 trees).",
          either(literal(None), members(1), what="null or a list of at least 1 member")),
    Param("standardization_flag_list", "list[bool] | null", None,
          "Per member of estimator_list: fit and score it on standardised rows; null: all true (PyOD's default "
          "members choose their own). As many as estimator_list.", _flags),
    Param("max_depth", "int", 3, "Depth of each boosted tree, in [1, 30].", integer(1, 30)),
    Param("learning_rate", "float", 0.1, "Boosting learning rate (eta), in (0, 1].",
          number(0.0, 1.0, lo_open=True)),
    Param("n_estimators", "int", 100, "Boosted trees, in [1, 5000].", integer(1, 5000)),
    Param("objective", "str", "binary:logistic", "'binary:logistic' (score = probability) or 'binary:logitraw' "
          "(score = the margin).", literal("binary:logistic", "binary:logitraw")),
    Param("booster", "str", "gbtree", "Only 'gbtree' (PyOD's default): the export writes its trees.",
          literal("gbtree")),
    Param("gamma", "float", 0.0, "Least loss reduction to split a leaf, ≥ 0.", _non_negative()),
    Param("min_child_weight", "float", 1.0, "Least hessian sum in a child, ≥ 0.", _non_negative()),
    Param("max_delta_step", "float", 0.0, "Cap on each leaf's step, ≥ 0 (0: none).", _non_negative()),
    Param("subsample", "float", 1.0, "Share of rows per tree, in (0, 1].", number(0.0, 1.0, lo_open=True)),
    Param("colsample_bytree", "float", 1.0, "Share of columns per tree, in (0, 1].",
          number(0.0, 1.0, lo_open=True)),
    Param("colsample_bylevel", "float", 1.0, "Share of columns per tree level, in (0, 1].",
          number(0.0, 1.0, lo_open=True)),
    Param("reg_alpha", "float", 0.0, "L1 penalty on leaf weights, ≥ 0.", _non_negative()),
    Param("reg_lambda", "float", 1.0, "L2 penalty on leaf weights, ≥ 0.", _non_negative()),
    Param("scale_pos_weight", "float", 1.0, "Weight of the anomalies against the inliers, > 0.",
          number(0.0, 1e9, lo_open=True)),
    Param("base_score", "float", 0.5, "Initial probability of every row, in (0, 1) (the margin it starts from: "
          "log(p / (1 - p)) for binary:logistic, p itself for binary:logitraw).",
          number(0.0, 1.0, lo_open=True, hi_open=True)),
    Param("random_state", "int | null", 0, "Seed of XGBoost and of the IForest members; null: XGBoost's seed 0 "
          "and fresh seeds for the forests.", integer(0, 2**31 - 1, none_ok=True)),
)

_XGBOD_NOTE = (
    "The row is standardised (the training StandardScaler, float64) for the members flagged so; each member's own "
    "graph scores it in float64; the row and the member scores are rounded to float32 as XGBoost reads them, and "
    "one TreeEnsemble (a target per tree, x < split as XGBoost compares) gives each tree's float32 leaf; the "
    "margin adds them in float32 in tree order from the base margin, as XGBoost does, then the logistic link in "
    "float64 (XGBoost's own is float32: 1e-7 relative). Exact where the members' graphs are."
)

ALGORITHMS = [
    Algorithm(
        name="xgbod",
        implementation="pyod.models.xgbod.XGBOD",
        description="XGBOD: the scores of many unsupervised detectors appended to the row, and an XGBoost "
        "classifier fitted on labels over both; score = the classifier's probability of an anomaly.",
        params=_XGBOD_PARAMS,
        build=_build_xgbod,
        score=pyod_score,
        needs_labels=True,
        export_limit="with LOF members (the default has 8), data with duplicate rows: see lof.",
        export_note=_XGBOD_NOTE,
    ),
]
