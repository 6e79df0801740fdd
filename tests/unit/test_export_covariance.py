"""Parity of the Gaussian-model graphs (PyOD MCD, sklearn EllipticEnvelope, PyOD GMM) with the native detectors."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.gmm import GMM
from pyod.models.mcd import MCD
from sklearn.covariance import EllipticEnvelope

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, supports, to_onnx

import export_checks as checks

N_FEATURES = 5

# id -> (algorithm name, params)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "mcd-default": ("mcd", {"random_state": 0}),
    "mcd-centered-sf0.8": ("mcd", {"assume_centered": True, "support_fraction": 0.8, "random_state": 0}),
    "ee-default": ("sklearn.elliptic_envelope", {"random_state": 0}),
    "ee-sf0.7": ("sklearn.elliptic_envelope", {"support_fraction": 0.7, "random_state": 1}),
    "gmm-default": ("gmm", {"random_state": 0}),
    "gmm-3-full": ("gmm", {"n_components": 3, "random_state": 0}),
    "gmm-3-tied": ("gmm", {"n_components": 3, "covariance_type": "tied", "random_state": 0}),
    "gmm-3-diag": ("gmm", {"n_components": 3, "covariance_type": "diag", "random_state": 0}),
    "gmm-4-spherical": ("gmm", {"n_components": 4, "covariance_type": "spherical", "random_state": 0}),
}
# normal: float64 N(0, 1); float32: the same rounded to float32 (as rows arrive through the API); integer: few
# distinct values (ties, a near-degenerate covariance); shifted: far from the origin (cancellation in x - μ).
DATASETS = ["normal", "float32", "integer", "shifted"]
CASES = [pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS]


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, N_FEATURES)) * [1.0, 2.0, 0.5, 1.0, 3.0]
    x[:, 1] += 0.8 * x[:, 0]  # correlated features: a non-diagonal covariance
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "integer":
        return np.round(2 * x)
    if dataset == "shifted":
        return x + 1e3
    return x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    center = train.mean(axis=0)
    fresh = center + rng.normal(size=(100, N_FEATURES))
    far = np.vstack([rng.uniform(-1e3, 1e3, size=(10, N_FEATURES)), np.full((1, N_FEATURES), 1e3),
                     np.full((1, N_FEATURES), -1e3)])
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(50, N_FEATURES))
    return np.vstack([fresh, far, beyond, train[:60]]).astype(np.float32)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    name, params = CONFIGS[config]
    algo = algorithms.get(name)
    train = _train(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MinCovDet warns on near-singular covariances (integer data), on purpose
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
    # Squared distances of float32-range rows overflow float32: the graph clips to the largest float32.
    huge = np.array([[3e38] * N_FEATURES, [-3e38] * N_FEATURES, [1e20] * N_FEATURES], np.float32)
    got = _run(sess, huge)
    assert np.all(np.isfinite(got)) and np.all(got > 1e30)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mcd", {"random_state": 0}),
        ("sklearn.elliptic_envelope", {"support_fraction": 0.9, "random_state": 0}),
        ("gmm", {"n_components": 2, "covariance_type": "diag", "random_state": 0}),
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


def test_elliptic_envelope_score_is_distance_plus_offset() -> None:
    _, det, _, sess, x32 = _case("ee-default", "normal")
    expected = det.mahalanobis(x32.astype(np.float64)) + det.offset_
    np.testing.assert_allclose(_run(sess, x32), expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_mcd_without_stored_precision_uses_the_pseudo_inverse() -> None:
    x = _train("normal")
    det = MCD(store_precision=False, random_state=0).fit(x)
    sess = ort.InferenceSession(to_onnx(det, N_FEATURES).SerializeToString(), providers=["CPUExecutionProvider"])
    x32 = _score_rows(x)
    assert verification.compare(_run(sess, x32), det.decision_function(x32.astype(np.float64)))[1] <= 1e-5


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("mcd", {"support_fraction": 0}, "params.support_fraction"),
        ("mcd", {"support_fraction": 1.5}, "params.support_fraction"),
        ("mcd", {"assume_centered": 1}, "params.assume_centered"),
        ("mcd", {"store_precision": False}, "unknown hyperparameter 'store_precision'"),
        ("sklearn.elliptic_envelope", {"contamination": 0.2}, "unknown hyperparameter 'contamination'"),
        ("sklearn.elliptic_envelope", {"random_state": -1}, "params.random_state"),
        ("gmm", {"n_components": 0}, "params.n_components"),
        ("gmm", {"covariance_type": "banded"}, "params.covariance_type"),
        ("gmm", {"reg_covar": -1e-6}, "params.reg_covar"),
        ("gmm", {"init_params": "zeros"}, "params.init_params"),
        ("gmm", {"n_init": 1.5}, "params.n_init"),
        ("gmm", {"means_init": [[0.0]]}, "unknown hyperparameter 'means_init'"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        algorithms.get(name).resolve_params(params)


@pytest.mark.parametrize(
    ("estimator", "n_features"),
    [
        pytest.param(MCD(), N_FEATURES, id="unfitted-mcd"),
        pytest.param(EllipticEnvelope(), N_FEATURES, id="unfitted-ee"),
        pytest.param(GMM(), N_FEATURES, id="unfitted-gmm"),
        pytest.param(MCD(random_state=0).fit(_train("normal")), 4, id="wrong-width-mcd"),
        pytest.param(GMM(random_state=0).fit(_train("normal")), 6, id="wrong-width-gmm"),
    ],
)
def test_bad_input_raises_export_error(estimator: Any, n_features: int) -> None:
    with pytest.raises(ExportError, match=type(estimator).__name__):
        to_onnx(estimator, n_features)


def test_registry() -> None:
    assert {"pyod.models.mcd.MCD", "sklearn.covariance._elliptic_envelope.EllipticEnvelope",
            "pyod.models.gmm.GMM"} <= set(CONVERTERS)
    assert all(supports(cls) for cls in (MCD, EllipticEnvelope, GMM))
    for name in ("mcd", "sklearn.elliptic_envelope", "gmm"):
        algo = algorithms.get(name)
        assert algo.exportable and algo.export_note
