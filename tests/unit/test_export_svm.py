"""One-class SVM graphs (PyOD OCSVM, sklearn OneClassSVM, SGDOneClassSVM): what test_export_contract does not check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pyod.models.ocsvm import OCSVM
from sklearn.linear_model import SGDOneClassSVM
from sklearn.svm import OneClassSVM

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument

import export_checks as checks
import export_data as data

N_FEATURES = data.SVM_FEATURES
_train = data.svm_train


@pytest.mark.parametrize("case_id", checks.params("svm", dataset="normal"))
def test_huge_rows_stay_finite(case_id: str) -> None:
    # Polynomial kernels of float32-range rows overflow float32: the graph clips to the largest float32.
    checks.assert_huge_rows_finite(checks.fitted(case_id).sess, [3e38, -3e38, 1e15], N_FEATURES)


def test_pyod_ocsvm_is_minus_sklearn_decision_function() -> None:
    _, det, _, sess, _, rows, _ = checks.fitted("ocsvm-default-normal")
    assert isinstance(det.detector_, OneClassSVM) and det.detector_.gamma == "auto"
    expected = -det.detector_.decision_function(rows)
    np.testing.assert_allclose(checks.run(sess, rows), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_sgd_one_class_svm_is_linear() -> None:
    _, det, _, sess, _, rows, _ = checks.fitted("sgd-default-normal")
    expected = det.offset_[0] - rows @ det.coef_
    np.testing.assert_allclose(checks.run(sess, rows), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ocsvm", {"nu": 0.2}),
        ("sklearn.one_class_svm", {"kernel": "poly", "degree": 2}),
        ("sklearn.sgd_one_class_svm", {"random_state": 0}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    checks.train_end_to_end(name, params, _train("float32"))


def test_max_iter_accepts_minus_one_as_an_integer() -> None:
    assert algorithms.get("ocsvm").resolve_params({"max_iter": -1.0})["max_iter"] == -1
    assert algorithms.get("ocsvm").resolve_params({"max_iter": 50.0})["max_iter"] == 50


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("ocsvm", {"kernel": "precomputed"}, "params.kernel"),
        ("ocsvm", {"nu": 0.0}, "params.nu"),
        ("ocsvm", {"nu": 1.5}, "params.nu"),
        ("ocsvm", {"gamma": -1.0}, "params.gamma"),
        ("ocsvm", {"gamma": "large"}, "params.gamma"),
        ("ocsvm", {"degree": 2.5}, "params.degree"),
        ("ocsvm", {"max_iter": 0}, "params.max_iter"),
        ("ocsvm", {"tol": 0}, "params.tol"),
        ("ocsvm", {"cache_size": 500}, "unknown hyperparameter 'cache_size'"),
        ("sklearn.one_class_svm", {"shrinking": "no"}, "params.shrinking"),
        ("sklearn.one_class_svm", {"coef0": float("inf")}, "params.coef0"),
        ("sklearn.sgd_one_class_svm", {"learning_rate": "pa1"}, "params.learning_rate"),
        ("sklearn.sgd_one_class_svm", {"eta0": 0.0}, "params.eta0"),
        ("sklearn.sgd_one_class_svm", {"average": 0}, "params.average"),
        ("sklearn.sgd_one_class_svm", {"tol": -1.0}, "params.tol"),
        ("sklearn.sgd_one_class_svm", {"warm_start": True}, "unknown hyperparameter 'warm_start'"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        algorithms.get(name).resolve_params(params)


@pytest.mark.parametrize(
    ("estimator", "n_features", "match"),
    [
        pytest.param(OCSVM(), N_FEATURES, "OCSVM", id="unfitted-ocsvm"),
        pytest.param(OneClassSVM(), N_FEATURES, "OneClassSVM", id="unfitted-skl"),
        pytest.param(SGDOneClassSVM(), N_FEATURES, "SGDOneClassSVM", id="unfitted-sgd"),
        pytest.param(OCSVM().fit(_train("normal")), 5, "OCSVM", id="wrong-width-ocsvm"),
        pytest.param(SGDOneClassSVM(random_state=0).fit(_train("normal")), 7, "SGDOneClassSVM", id="wrong-width-sgd"),
        pytest.param(OneClassSVM(kernel="precomputed").fit(np.eye(N_FEATURES)), N_FEATURES, "precomputed",
                     id="precomputed-kernel"),
    ],
)
def test_bad_input_raises_export_error(estimator: Any, n_features: int, match: str) -> None:
    checks.assert_refused(estimator, n_features, match)


def test_registry() -> None:
    checks.assert_registered({"pyod.models.ocsvm.OCSVM", "sklearn.svm._classes.OneClassSVM",
                              "sklearn.linear_model._stochastic_gradient.SGDOneClassSVM"},
                             (OCSVM, OneClassSVM, SGDOneClassSVM),
                             ("ocsvm", "sklearn.one_class_svm", "sklearn.sgd_one_class_svm"))
