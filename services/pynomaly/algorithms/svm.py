"""One-class SVMs: PyOD OCSVM, scikit-learn's OneClassSVM and SGDOneClassSVM.

Not exposed: `cache_size` (kernel cache of the solver: speed only), `verbose`, SGD's `warm_start` (refits only),
and the 'precomputed' or callable kernels (a served row is features, not kernel values).
"""

from __future__ import annotations

import math
from typing import Any

from pynomaly.algorithms._spec import (
    Algorithm,
    Param,
    boolean,
    either,
    integer,
    literal,
    number,
    pyod_score,
    sklearn_score,
)


def _solver_iterations(v: Any) -> int:
    n = integer(-1)(v)
    if n == 0:
        raise ValueError("must be -1 or an integer ≥ 1")
    return n


def _kernel_params(gamma_default: str) -> tuple[Param, ...]:
    return (
        Param("kernel", "str", "rbf", "Kernel: 'rbf', 'poly', 'sigmoid' or 'linear'.",
              literal("rbf", "poly", "sigmoid", "linear")),
        Param("degree", "int", 3, "Degree of the 'poly' kernel, ≥ 0.", integer(0, 100)),
        Param("gamma", "float | 'scale' | 'auto'", gamma_default,
              "Kernel coefficient of 'rbf', 'poly', 'sigmoid': a number ≥ 0, 'scale' = 1 / (features × variance "
              "of X) or 'auto' = 1 / features.",
              either(literal("scale", "auto"), number(0.0, math.inf), what="'scale', 'auto' or a number ≥ 0")),
        Param("coef0", "float", 0.0, "Independent term of the 'poly' and 'sigmoid' kernels.",
              number(-math.inf, math.inf)),
        Param("tol", "float", 1e-3, "Solver stopping tolerance, > 0.", number(0.0, math.inf, lo_open=True)),
        Param("nu", "float", 0.5, "Upper bound on the share of training errors and lower bound on the share of "
              "support vectors, in (0, 1].", number(0.0, 1.0, lo_open=True)),
        Param("shrinking", "bool", True, "Use the shrinking heuristic.", boolean),
        Param("max_iter", "int", -1, "Solver iterations, ≥ 1, or -1 for no limit.", _solver_iterations),
    )


_KERNEL_NOTE = ("Kernel expansion Σ α_i K(sv_i, x) + intercept in float64: RBF as one MatMul over centred rows, "
                "polynomial powers multiplied as libsvm does; exact to float32 inputs.")


def _build_pyod_ocsvm(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.ocsvm import OCSVM

    return OCSVM(contamination=contamination, **p)


def _build_sklearn_ocsvm(p: dict[str, Any], contamination: float) -> Any:
    from sklearn.svm import OneClassSVM

    # contamination has no place in OneClassSVM: the platform sets the threshold from the training scores.
    return OneClassSVM(**p)


def _build_sgd(p: dict[str, Any], contamination: float) -> Any:
    from sklearn.linear_model import SGDOneClassSVM

    return SGDOneClassSVM(**p)


ALGORITHMS = [
    Algorithm(
        name="ocsvm",
        implementation="pyod.models.ocsvm.OCSVM",
        description="One-class SVM (libsvm): minus the signed distance to the learned support of the data.",
        params=_kernel_params("auto"),
        build=_build_pyod_ocsvm,
        score=pyod_score,
        export_note=_KERNEL_NOTE,
    ),
    Algorithm(
        name="sklearn.one_class_svm",
        implementation="sklearn.svm.OneClassSVM",
        description="scikit-learn's One-class SVM; score = -decision_function.",
        params=_kernel_params("scale"),
        build=_build_sklearn_ocsvm,
        score=sklearn_score,
        export_note=_KERNEL_NOTE,
    ),
    Algorithm(
        name="sklearn.sgd_one_class_svm",
        implementation="sklearn.linear_model.SGDOneClassSVM",
        description="Linear one-class SVM fitted by stochastic gradient descent (no kernel); score = "
        "-decision_function = offset_ - x·coef_. Linear: it separates the data from the origin, so rows farther "
        "out along coef_ score as more normal (breastw's large-valued anomalies: ROC-AUC 0.00, docs/parity.md).",
        params=(
            Param("nu", "float", 0.5, "Share of training errors / support vectors, in (0, 1].",
                  number(0.0, 1.0, lo_open=True)),
            Param("fit_intercept", "bool", True, "Fit the offset; false assumes centred data.", boolean),
            Param("max_iter", "int", 1000, "Passes over the data, ≥ 1.", integer(1, 1_000_000)),
            Param("tol", "float | null", 1e-3, "Stop when the loss improves by less than this, ≥ 0; null runs "
                  "max_iter passes.", either(literal(None), number(0.0, math.inf), what="a number ≥ 0 or null")),
            Param("shuffle", "bool", True, "Shuffle the rows after each pass.", boolean),
            Param("random_state", "int | null", None, "Seed; null draws a fresh one.",
                  integer(0, 2**32 - 1, none_ok=True)),
            Param("learning_rate", "str", "optimal", "Step schedule: 'optimal', 'constant', 'invscaling' or "
                  "'adaptive'.", literal("optimal", "constant", "invscaling", "adaptive")),
            Param("eta0", "float", 0.01, "Initial step of the 'constant', 'invscaling' and 'adaptive' schedules, "
                  "> 0.", number(0.0, math.inf, lo_open=True)),
            Param("power_t", "float", 0.5, "Exponent of the 'invscaling' schedule.", number(-math.inf, math.inf)),
            Param("average", "bool | int", False, "Average the weights: true, or an integer ≥ 1 = start averaging "
                  "after that many rows.", either(boolean, integer(1), what="true, false or an integer ≥ 1")),
        ),
        build=_build_sgd,
        score=sklearn_score,
        export_note="Linear score offset_ - x·coef_ in float64; exact to float32 inputs.",
    ),
]
