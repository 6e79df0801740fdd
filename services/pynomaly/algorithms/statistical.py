"""Statistical detectors: PyOD's MAD, KPCA, QMCD, CD and RGraph.

MAD, KPCA and QMCD score a new row from what the fit stored (a median and MAD; the training kernel, its centring
and eigenvectors; the min-max scaler and the scaled training rows): served exactly.

CD (Cook's distance) is frozen. PyOD's decision_function regresses each column on the others with the models fitted
at training, but takes the leverages from the scored batch's own hat matrix, the residual variance over the batch,
and min-max normalises the distances over the batch: a row's score depends on the rest of the batch, and a row
alone has leverage 1 and scores NaN. The served score is the one PyOD gives the row scored within the training
rows (its decision_function on vstack([X_train, row]), the last score): the row's normalised Cook's distance as one
more training row, the regressions not refitted. A training row scored so counts twice (its leverage is shared
with its copy), so it scores a little below its decision_scores_. PyOD's CD keeps no training rows: the detector is
built as `pynomaly.algorithms._cooks.CD`, PyOD's class whose fit also keeps X_train_.

RGraph is refused (see its export note).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import (
    Algorithm,
    Param,
    boolean,
    fraction_or_count,
    integer,
    literal,
    number,
    pyod_score,
)

_SEED = Param("random_state", "int | null", None, "Seed; null draws a fresh one.", integer(0, 2**32 - 1, none_ok=True))
_KERNELS = ("rbf", "poly", "sigmoid", "linear", "cosine")


def _build_mad(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.mad import MAD

    return MAD(contamination=contamination, **p)


def _build_kpca(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.kpca import KPCA

    return KPCA(contamination=contamination, n_jobs=1, **p)


def _build_qmcd(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.qmcd import QMCD

    return QMCD(contamination=contamination, **p)


def _build_cd(p: dict[str, Any], contamination: float) -> Any:
    from pynomaly.algorithms._cooks import CD

    return CD(contamination=contamination, **p)


def _build_rgraph(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.rgraph import RGraph

    return RGraph(contamination=contamination, verbose=False, **p)


def score_within_training(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD's CD score of each row scored within the training rows: decision_function(vstack([X_train_, row]))[-1].

    decision_function reuses the fitted regressions and changes nothing on the detector."""
    X = np.asarray(X, dtype=np.float64)
    train = np.asarray(det.X_train_, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PyOD's nanmean over a feature whose distances are NaN
        return np.array([det.decision_function(np.vstack([train, X[i : i + 1]]))[-1] for i in range(len(X))],
                        dtype=np.float64)


def _kernel(v: Any) -> Any:
    if v == "precomputed":
        raise ValueError("must be one of " + ", ".join(_KERNELS) + ": 'precomputed' takes a kernel matrix, not rows, "
                         "so there is nothing to serve")
    return literal(*_KERNELS)(v)


def _degree(v: Any) -> Any:
    try:
        return integer(1)(v)
    except ValueError:
        raise ValueError("must be an integer ≥ 1 (a fractional degree makes PyOD's poly kernel NaN wherever "
                         "gamma x·y + coef0 < 0)") from None


def _positive_or_null(v: Any) -> Any:
    return None if v is None else number(0.0, math.inf, lo_open=True)(v)


_KPCA_NOTE = (
    "Exact, float64: the kernel of the row against the training rows (one MatMul; rbf as scikit-learn computes "
    "it, -2 x·t + |x|² + |t|²), centred with the training kernel's column means, projected onto the scaled "
    "eigenvectors (MatMul), and PyOD's reconstruction error k(x, x) - 2 mean_t k(x, t) + mean K - |projection|², "
    "in Loop blocks of rows; cost and graph size grow with the training rows. Refused where PyOD's scores are "
    "rounding noise: components kept beyond the kernel's numerical rank (PyOD divides by the square roots of "
    "rounding-level eigenvalues); as many components as training rows (n_components=null, PyOD's default), which "
    "reconstruct each training row exactly, its score 0 up to rounding (|score| < 1e-13, ROC-AUC 0.47-0.56 on "
    "ADBench wbc, pima, cardio), so no threshold can come from the training scores; or over 5 % of the training "
    "scores within 1e-12 (of the terms summed) of another row's, their order rounding noise (an rbf kernel too "
    "narrow for unscaled features isolates most rows: ADBench pima, satellite). The default here is 10 components: "
    "the best "
    "mean training ROC-AUC of 5, 10, 20 and 50 over the 12 ADBench sets (0.853; 2000-row samples). Where PyOD's "
    "float64 arithmetic overflows (inf, inf - inf) the graph serves ±1.8e308."
)
_KPCA_LIMIT = (
    "fits whose training scores are rounding noise, refused at export saying why: as many components as training "
    "rows or beyond the kernel's rank (each training row reconstructed exactly), or most rows isolated by an rbf "
    "kernel too narrow for unscaled features (ADBench pima and satellite with the default gamma: over 5 % of the "
    "training scores within 1e-12 of another's, so their order is rounding noise)."
)
_QMCD_NOTE = (
    "Exact, float64: the row min-max scaled with the training scaler, the wrap-around discrepancy "
    "-(4/3)^d + 1/n² Σ_t Π_k (3/2 - |x_k - t_k| + |x_k - t_k|²) against the n scaled training rows, flipped as "
    "at training (max + min of the training scores minus it) where PyOD flipped it; in Loop blocks of rows. Cost "
    "grows with the training rows. Beyond float32's range the score is clipped (PyOD overflows to inf there)."
)
_CD_NOTE = (
    "Frozen: the score PyOD gives the row scored within the training rows (decision_function of "
    "vstack([X_train, row]), the last score). Per column j, with the regression of j on the other columns fitted "
    "at training: the row's residual r and leverage h = q / (1 + q), q = a' (A'A)^-1 a (a: the row's other "
    "columns, A: the training rows'), and every training row's leverage updated for the added row (h_t - u_t² / "
    "(1 + q)); the normalised Cook's distance (d_row - min d) / (max d - min d) over the n + 1 rows, where d = r² "
    "h / (1 - h)² (the residual variance cancels); the mean over the columns, NaN ones left out as PyOD's "
    "nanmean. Float64 MatMuls against the training rows, in Loop blocks of rows; per-row cost n x d²."
)
_CD_LIMIT = (
    "training columns that are exactly collinear (one a linear combination of others, or all zero, e.g. ADBench "
    "cardio): a new row outside the training rows' span then has leverage 1 up to rounding, where PyOD's score "
    "is rounding noise; the export check fails and the job is refused."
)
_RGRAPH_NOTE = (
    "PyOD's RGraph scores new rows in blocks of blocksize_test_data rows: each block is appended to the training "
    "rows and the whole elastic-net self-representation is solved again (one lasso problem per training row and "
    "per new row, each over all the others, new rows included, by LARS or coordinate descent with an active-set "
    "search), then a random walk over all the rows gives the scores. A row's score depends on the other rows of "
    "its block, and even a row alone needs n + 1 iterative, data-dependent lasso solves: no fixed graph computes "
    "it, and a frozen graph would have to re-solve them per row."
)

ALGORITHMS = [
    Algorithm(
        name="mad",
        implementation="pyod.models.mad.MAD",
        description="Median Absolute Deviation, for one feature: the modified z-score 0.6745 |x - median| / MAD. "
        "PyOD's threshold (a z-score, 3.5) only sets PyOD's own labels: the served threshold comes from "
        "contamination or threshold_method, as for every detector (pass threshold 3.5 to Detect for the classic "
        "cut-off).",
        params=(),
        build=_build_mad,
        score=pyod_score,
        n_features=1,
        export_limit="training values whose median absolute deviation is 0, refused at export saying why.",
        export_note="Exact, float64, one feature (training on more columns is refused: WRONG_WIDTH): 0.6745 "
        "|x - median| / MAD with the training median and MAD, as PyOD computes it. Training data whose MAD is 0 "
        "(over half the values equal the median) is refused: PyOD scores every other value inf (1.8e308 after its "
        "nan_to_num).",
    ),
    Algorithm(
        name="kpca",
        implementation="pyod.models.kpca.KPCA",
        description="Kernel PCA: the row's reconstruction error in the kernel's feature space from the leading "
        "components of the training kernel.",
        params=(
            Param("n_components", "int | null", 10, "Components kept, ≥ 1 and below the training rows; null = "
                  "every non-zero one, which reconstructs every training row exactly (refused: see the export note). "
                  "PyOD's default is null; 10 here.", integer(1, none_ok=True)),
            Param("n_selected_components", "int | null", None,
                  "Components that score (the leading ones), ≤ n_components; null = all kept.",
                  integer(1, none_ok=True)),
            Param("kernel", "str", "rbf", "One of " + ", ".join(_KERNELS) + ".", _kernel),
            Param("gamma", "float | null", None, "Coefficient of the rbf, poly and sigmoid kernels, > 0; null = "
                  "1 / features.", _positive_or_null),
            Param("degree", "int", 3, "Degree of the poly kernel, an integer ≥ 1.", _degree),
            Param("coef0", "float", 1.0, "Independent term of the poly and sigmoid kernels.",
                  number(-math.inf, math.inf)),
            Param("eigen_solver", "str", "auto", "scikit-learn's solver: 'auto', 'dense', 'arpack' or "
                  "'randomized'.", literal("auto", "dense", "arpack", "randomized")),
            Param("tol", "float", 0.0, "Tolerance of the 'arpack' solver, ≥ 0 (0: arpack's own).",
                  number(0.0, math.inf)),
            Param("max_iter", "int | null", None, "Iterations of the 'arpack' solver; null: arpack's own.",
                  integer(1, none_ok=True)),
            Param("remove_zero_eig", "bool", False, "Drop components of eigenvalue 0 (always done when "
                  "n_components is null).", boolean),
            Param("sampling", "bool", False, "Fit on a random subset of the rows (subset_size).", boolean),
            Param("subset_size", "int | float", 20, "With sampling: a count of rows ≥ 2 or a fraction in (0, 1].",
                  fraction_or_count),
            _SEED,
        ),
        build=_build_kpca,
        score=pyod_score,
        max_training_rows=5000,
        export_limit=_KPCA_LIMIT,
        export_note=_KPCA_NOTE,
    ),
    Algorithm(
        name="qmcd",
        implementation="pyod.models.qmcd.QMCD",
        description="Quasi-Monte Carlo Discrepancy: the wrap-around discrepancy of the row against the training "
        "rows, min-max scaled (flipped where the training scores are left-skewed or light-tailed). "
        "Parameter-free.",
        params=(),
        build=_build_qmcd,
        score=pyod_score,
        max_training_rows=20_000,
        export_note=_QMCD_NOTE,
    ),
    Algorithm(
        name="cd",
        implementation="pyod.models.cd.CD",
        description="Cook's distance: each feature regressed (linear least squares) on the others; the row's "
        "influence on those regressions, normalised over the training rows and averaged over the features. Needs "
        "at least 2 features. Parameter-free (the regression is PyOD's default, LinearRegression).",
        params=(),
        build=_build_cd,
        score=score_within_training,
        frozen=True,
        slow_reference=True,
        export_limit=_CD_LIMIT,
        export_note=_CD_NOTE,
    ),
    Algorithm(
        name="rgraph",
        implementation="pyod.models.rgraph.RGraph",
        description="R-graph: elastic-net subspace-clustering representation of each row by the others, scored by "
        "a random walk over the representation graph. Scores are relative to the scored block (PyOD's behaviour).",
        params=(
            Param("transition_steps", "int", 10, "Random-walk steps, ≥ 1.", integer(1, 10_000)),
            Param("n_nonzero", "int", 10, "Largest coefficients kept per row, ≥ 1.", integer(1)),
            Param("gamma", "float", 50.0, "Elastic-net regularisation: alpha = alpha0 / gamma, > 0.",
                  number(0.0, math.inf, lo_open=True)),
            Param("gamma_nz", "bool", True, "Scale alpha by the row's largest coherence (alpha0).", boolean),
            Param("algorithm", "str", "lasso_lars", "Lasso solver: 'lasso_lars' or 'lasso_cd'.",
                  literal("lasso_lars", "lasso_cd")),
            Param("tau", "float", 1.0, "Elastic-net mix in [0, 1] (1: lasso).", number(0.0, 1.0)),
            Param("maxiter_lasso", "int", 1000, "Iterations of the lasso solver, ≥ 1.", integer(1)),
            Param("preprocessing", "bool", True, "Standardize features first.", boolean),
            Param("blocksize_test_data", "int", 10, "New rows scored together, ≥ 1.", integer(1)),
            Param("support_init", "str", "L2", "Active-support start: 'L2' or 'knn'.", literal("L2", "knn")),
            Param("maxiter", "int", 40, "Active-support iterations, ≥ 1.", integer(1)),
            Param("support_size", "int", 100, "Active-support size, ≥ 1.", integer(1)),
            Param("active_support", "bool", True, "Solve by the active-support search.", boolean),
            Param("fit_intercept_LR", "bool", False, "Intercept of the linear regression used when gamma ≥ 1e4.",
                  boolean),
        ),
        build=_build_rgraph,
        score=pyod_score,
        exportable=False,
        export_note=_RGRAPH_NOTE,
    ),
]
