"""Parity of the one-class SVM graphs (PyOD OCSVM, sklearn OneClassSVM, SGDOneClassSVM) with the native detectors."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.ocsvm import OCSVM
from sklearn.linear_model import SGDOneClassSVM
from sklearn.svm import OneClassSVM

from pynomaly import algorithms, training
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, supports, to_onnx

import export_checks as checks

N_FEATURES = 6

# id -> (algorithm name, params)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "ocsvm-default": ("ocsvm", {}),
    "ocsvm-nu0.1-gamma2": ("ocsvm", {"nu": 0.1, "gamma": 2.0}),
    "ocsvm-poly": ("ocsvm", {"kernel": "poly"}),
    "ocsvm-poly4-coef1": ("ocsvm", {"kernel": "poly", "degree": 4, "coef0": 1.0, "gamma": 0.3}),
    "ocsvm-poly0": ("ocsvm", {"kernel": "poly", "degree": 0}),
    "ocsvm-sigmoid": ("ocsvm", {"kernel": "sigmoid", "gamma": 0.1, "coef0": 0.5}),
    "ocsvm-linear": ("ocsvm", {"kernel": "linear"}),
    "skl-ocsvm-default": ("sklearn.one_class_svm", {}),
    "skl-ocsvm-poly5": ("sklearn.one_class_svm", {"kernel": "poly", "degree": 5, "coef0": 0.5}),
    "sgd-default": ("sklearn.sgd_one_class_svm", {"random_state": 0}),
    "sgd-avg-nointercept": ("sklearn.sgd_one_class_svm", {"average": True, "fit_intercept": False, "random_state": 0}),
    "sgd-invscaling": ("sklearn.sgd_one_class_svm", {"learning_rate": "invscaling", "eta0": 0.1, "nu": 0.2,
                                                     "random_state": 1}),
}
# normal: float64 N(0, 1); float32: rounded to float32 as the API delivers rows (support vectors then reappear
# exactly among scored rows); integer: few distinct values; shifted: far from the origin (the RBF graph centres
# rows before its |x|² - 2 x·sv + |sv|² expansion).
DATASETS = ["normal", "float32", "integer", "shifted"]
CASES = [pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS]


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, N_FEATURES))
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "integer":
        return np.round(2 * x)
    if dataset == "shifted":
        return (x + 500.0).astype(np.float32).astype(np.float64)
    return x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    center = train.mean(axis=0)
    fresh = center + rng.normal(size=(100, N_FEATURES))
    far = np.vstack([rng.uniform(-1e3, 1e3, size=(10, N_FEATURES)), np.full((1, N_FEATURES), 1e3),
                     np.full((1, N_FEATURES), -1e3)])
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(50, N_FEATURES))
    return np.vstack([fresh, far, beyond, train[:80]]).astype(np.float32)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    name, params = CONFIGS[config]
    algo = algorithms.get(name)
    train = _train(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD may stop at max_iter on the shifted data: a fit is all we need
        det = algo.build(algo.resolve_params(params), 0.1).fit(train)
    model = to_onnx(det, N_FEATURES)
    sess = checks.session(model)
    return algo, det, model, sess, _score_rows(train)


_run = checks.run


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_onnx_matches_native(config: str, dataset: str) -> None:
    algo, det, _, sess, x32 = _case(config, dataset)
    checks.assert_matches_native(algo, det, sess, x32)


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(config: str, dataset: str) -> None:
    _, _, _, sess, x32 = _case(config, dataset)
    picked = np.r_[np.arange(0, len(x32), 7), np.arange(100, 112)]  # sparse, plus every far row
    checks.assert_batch_invariant(sess, x32, picked)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_graph_contract_and_huge_rows_stay_finite(config: str) -> None:
    _, _, model, sess, _ = _case(config, "normal")
    checks.assert_graph_contract(model, sess, N_FEATURES)
    # Polynomial kernels of float32-range rows overflow float32: the graph clips to the largest float32.
    huge = np.array([[3e38] * N_FEATURES, [-3e38] * N_FEATURES, [1e15] * N_FEATURES], np.float32)
    assert np.all(np.isfinite(_run(sess, huge)))


def test_pyod_ocsvm_is_minus_sklearn_decision_function() -> None:
    _, det, _, sess, x32 = _case("ocsvm-default", "normal")
    assert isinstance(det.detector_, OneClassSVM) and det.detector_.gamma == "auto"
    expected = -det.detector_.decision_function(x32.astype(np.float64))
    np.testing.assert_allclose(_run(sess, x32), expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_sgd_one_class_svm_is_linear() -> None:
    _, det, _, sess, x32 = _case("sgd-default", "normal")
    expected = det.offset_[0] - x32.astype(np.float64) @ det.coef_
    np.testing.assert_allclose(_run(sess, x32), expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ocsvm", {"nu": 0.2}),
        ("sklearn.one_class_svm", {"kernel": "poly", "degree": 2}),
        ("sklearn.sgd_one_class_svm", {"random_state": 0}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    x = _train("float32")
    algo = algorithms.get(name)
    spec = training.TrainSpec(model_name="m", algorithm=name, params=algo.resolve_params(params),
                              contamination=0.05, feature_names=[f"f{i}" for i in range(N_FEATURES)])
    result = training.train(spec, x)
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
    sess = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"X": x[:3].astype(np.float32)})[0].shape == (3,)


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
    with pytest.raises(ExportError, match=match):
        to_onnx(estimator, n_features)


def test_registry() -> None:
    assert {"pyod.models.ocsvm.OCSVM", "sklearn.svm._classes.OneClassSVM",
            "sklearn.linear_model._stochastic_gradient.SGDOneClassSVM"} <= set(CONVERTERS)
    assert all(supports(cls) for cls in (OCSVM, OneClassSVM, SGDOneClassSVM))
    for name in ("ocsvm", "sklearn.one_class_svm", "sklearn.sgd_one_class_svm"):
        algo = algorithms.get(name)
        assert algo.exportable and algo.export_note
