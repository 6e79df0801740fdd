"""PyOD's PCA graph: what test_export_contract does not check; degenerate components refused."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from pyod.models.pca import PCA

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, to_onnx

import export_checks as checks
import export_data as data

_train, _score_rows = data.pca_train, data.pca_rows


@pytest.mark.parametrize("case_id", checks.params("linear", dataset="normal"))
def test_contributions_sum_to_the_score(case_id: str) -> None:
    _, _, _, sess, _, rows, _ = checks.fitted(case_id)
    score, contributions = sess.run(["anomaly_score", "contributions"], checks.feed(sess, rows))
    assert contributions.shape == rows.shape and np.all(contributions >= -1e-6 * score[:, None])
    np.testing.assert_allclose(contributions.sum(axis=1), score, rtol=1e-5)


@pytest.mark.parametrize(("case_id", "n_features"), [("pca-default-4-normal", 4), ("pca-default-10-normal", 10)])
def test_huge_rows_stay_finite(case_id: str, n_features: int) -> None:
    # Scores of float32-range rows overflow float32: the graph clips them (and the contributions) to its max.
    huge = np.array([[3e38] * n_features, [-3e38] * n_features, [1e30] * n_features])
    sess = checks.fitted(case_id).sess
    score, contributions = sess.run(["anomaly_score", "contributions"], checks.feed(sess, huge))
    assert np.all(np.isfinite(score)) and np.all(score > 1e29) and np.all(np.isfinite(contributions))


def test_whiten_does_not_change_the_score() -> None:
    train = _train(10, "normal")
    plain, whitened = PCA().fit(train), PCA(whiten=True).fit(train)
    x = _score_rows(train, plain).astype(np.float64)
    np.testing.assert_allclose(whitened.decision_function(x), plain.decision_function(x), rtol=1e-9)


def _dependent(kind: str) -> np.ndarray:
    """Training data whose last feature is a linear function of others, like ADBench cardio's.

    "sum": PyOD's last explained-variance ratio is exactly 0 (inf scores); "affine": ~1e-16 (scores ~1e16).
    """
    x = np.random.default_rng(3).normal(size=(300, 5))
    x[:, 4] = x[:, 0] + x[:, 1] if kind == "sum" else 2.0 * x[:, 0] - 0.5 * x[:, 2] + 3.0
    return x


def _fit(x: np.ndarray, **params: Any) -> PCA:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyOD divides by a zero ratio on the "sum" data
        return PCA(**params).fit(x)


@pytest.mark.parametrize("kind", ["sum", "affine"])
@pytest.mark.parametrize("solver", ["auto", "full"])
def test_rounding_level_components_are_left_out_as_pyod_would_with_n_components_at_the_rank(
    kind: str, solver: str
) -> None:
    x = _dependent(kind)
    det = _fit(x, svd_solver=solver)
    assert not np.all(np.isfinite(det.decision_scores_)) or det.decision_scores_.max() > 1e12  # PyOD's own
    reference = algorithms.get("pca").score(det, x)
    np.testing.assert_array_equal(reference, _fit(x, svd_solver=solver, n_components=4).decision_function(x))
    sess = ort.InferenceSession(to_onnx(det, 5).SerializeToString(), providers=["CPUExecutionProvider"])
    rows = np.vstack([x, np.full((1, 5), 1e3), np.full((1, 5), -1e3)])
    got = checks.run(sess, rows)
    assert np.all(np.isfinite(got))
    assert verification.compare(got, algorithms.get("pca").score(det, rows))[1] <= 1e-5


@pytest.mark.parametrize("kind", ["sum", "affine"])
def test_linearly_dependent_features_train(kind: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = training.train(_spec({}, 5), _dependent(kind))
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
    assert result.manifest["training_scores"]["max"] < 1e6


def test_only_rounding_level_components_selected_is_refused() -> None:
    det = _fit(_dependent("affine"), n_selected_components=1)
    with pytest.raises(ExportError, match="every selected component.*weighted=false"):
        to_onnx(det, 5)
    with pytest.raises(training.TrainingFailed, match="every selected component"):
        training.train(_spec({"n_selected_components": 1}, 5), _dependent("affine"))


def test_unweighted_keeps_every_component() -> None:
    det = _fit(_dependent("sum"), weighted=False)
    x = _dependent("sum")
    np.testing.assert_array_equal(algorithms.get("pca").score(det, x), det.decision_function(x))


def _spec(params: dict[str, Any], n_features: int) -> training.TrainSpec:
    return training.TrainSpec(model_name="m", algorithm="pca", params=algorithms.get("pca").resolve_params(params),
                              contamination=0.05, feature_names=[f"f{i}" for i in range(n_features)])


@pytest.mark.parametrize("params", [{}, {"n_components": 3, "svd_solver": "full"}])
def test_train_end_to_end(params: dict[str, Any]) -> None:
    checks.train_end_to_end("pca", params, _train(10, "float32"))
    algo = algorithms.get("pca")
    assert algo.exact_explanation and algo.exportable


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 1.5}, "n_components"),
        ({"n_components": "all"}, "n_components"),
        ({"n_selected_components": 0}, "n_selected_components"),
        ({"svd_solver": "lapack"}, "svd_solver"),
        ({"tol": -1.0}, "tol"),
        ({"iterated_power": -1}, "iterated_power"),
        ({"random_state": "seed"}, "random_state"),
        ({"weighted": 1}, "weighted"),
        ({"standardization": "yes"}, "standardization"),
        ({"whiten": True}, "whiten"),
        ({"n_jobs": 2}, "n_jobs"),
    ],
)
def test_bad_params_are_refused_by_name(params: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidArgument, match=name):
        algorithms.get("pca").resolve_params(params)


def test_defaults_are_pyods() -> None:
    defaults = algorithms.get("pca").resolve_params({})
    assert {k: v for k, v in PCA().get_params().items() if k in defaults} == defaults


@pytest.mark.parametrize(
    ("det", "n_features"),
    [
        pytest.param(PCA(), 4, id="unfitted"),
        pytest.param(PCA().fit(_train(4, "normal")), 5, id="wrong-width"),
    ],
)
def test_bad_input_raises_export_error(det: PCA, n_features: int) -> None:
    checks.assert_refused(det, n_features)


def test_registry() -> None:
    assert "pyod.models.pca.PCA" in CONVERTERS
