"""Detectors built on other detectors' scores: PyOD's XGBOD (learns from labels) and LSCP.

XGBOD (pyod 3.6.7 models/xgbod.py) fits its unsupervised members ("TOS": KNN, LOF, HBOS, OCSVM and IForest at
several settings by default; the members flagged for it on the training data standardised), appends their
scores to the row, and fits an XGBoost classifier on the labels; the score is that classifier's probability of
an anomaly. Its members are given like an ensemble's (pynomaly.algorithms.ensemble.member): exportable PyOD
detectors, by name or {algorithm, params}. Only the "gbtree" booster is offered: the export writes its trees.

LSCP (models/lscp.py) scores a row with its members' standardised scores, averaged over the members that best
correlate, on the row's local region of training rows, with a pseudo ground truth (the training rows' largest
standardised member score). The local region is the training rows among the row's nearest neighbours in at least
11 of 20 random feature subsets, and PyOD draws those subsets anew from the detector's RandomState at every
decision_function call: the same row scores differently from call to call. Served frozen: the subsets are the 20
that the call after the fit draws, from the RandomState as the fit left it (`lscp_score` copies it for each call,
so every call draws those). Everything else is PyOD's decision_function, and with the draw fixed it is a function
of the row alone (every step is per row, against the training data), so the reference scores batches.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

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

def _build_lscp(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.lscp import LSCP

    p = dict(p)
    detectors = [_build_member(m, contamination) for m in p.pop("detector_list")]
    if p["random_state"] is None:
        # A seed of its own: PyOD would draw from NumPy's global generator, whose state nothing keeps.
        p["random_state"] = int(np.random.SeedSequence().generate_state(1)[0])
    return LSCP(detectors, contamination=contamination, **p)


def lscp_score(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD's LSCP decision_function with the draw of feature subsets frozen: each call draws from a copy of the
    RandomState the fit left, so every call draws the same 20 subsets."""
    state = det.random_state
    det.random_state = copy.deepcopy(state)
    try:
        with warnings.catch_warnings():
            # PyOD warns on every call about local regions outside [30, 200] rows and constant correlation inputs.
            warnings.simplefilter("ignore")
            return pyod_score(det, X)
    finally:
        det.random_state = state


_MEMBER_TYPE = "str | {algorithm, params}"

_LSCP_NOTE = (
    "Frozen: the 20 random feature subsets of the local regions are those the first call after the fit draws "
    "(PyOD draws new ones at every call, so its scores change from call to call); then PyOD's decision_function. "
    "The graph: the members' own graphs, standardised with the training scores' scaler; per subset the k nearest "
    "training rows (squared distances by MatMul, TopK; exact ties go to the lower training index), their counts "
    "(ScatterElements), the region (count above min(10, second-largest count - 1)); per member the Pearson "
    "correlation with the pseudo ground truth over the region (scipy's rules: constant -> 0, 2 rows -> ±1); the "
    "histogram of np.histogram's edges, every fullest bin's members (closed bins, as PyOD selects) averaged. Exact "
    "to float64 rounding where the neighbours are not tied."
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
    Algorithm(
        name="lscp",
        implementation="pyod.models.lscp.LSCP",
        description="Locally Selective Combination: per row, the members that best agree with a pseudo ground "
        "truth on the row's local region of training rows, averaged.",
        params=(
            Param("detector_list", f"list[{_MEMBER_TYPE}]", [{"algorithm": "hbos", "params": {}},
                                                            {"algorithm": "iforest", "params": {}}],
                  "At least 2 member detectors: exportable PyOD algorithms, by name or {algorithm, params}.",
                  members(2)),
            Param("local_region_size", "int", 30, "Training neighbours per local-region search, ≥ 2 (at most the "
                  "training rows).", integer(2, 100_000)),
            Param("local_max_features", "float", 1.0, "Largest share of features per local-region draw, in "
                  "[0.5, 1].", number(0.5, 1.0)),
            Param("n_bins", "int", 10, "Histogram bins over member competence (at most the members), ≥ 1.",
                  integer(1, 1000)),
            Param("random_state", "int | null", None, "Seed of the feature subsets; null draws a fresh one.",
                  integer(0, 2**32 - 1, none_ok=True)),
        ),
        build=_build_lscp,
        score=lscp_score,
        frozen=True,
        export_limit="data with tied distances in a feature subset (duplicate rows, discrete features): PyOD's "
        "KD-tree breaks the tie at the k-th neighbour in its own order, the graph by training index. PyOD's own "
        "fit and score fail (np.histogram: 'Too many bins for data range') on rows whose members' correlations "
        "differ by a few float64 steps (seen on ADBench annthyroid); the graph counts every member there.",
        export_note=_LSCP_NOTE,
    ),
]
