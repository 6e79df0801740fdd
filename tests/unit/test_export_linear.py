"""PyOD PCA graph vs PyOD's decision_function; real fits, real onnxruntime; degenerate components refused."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.pca import PCA

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, to_onnx

import export_checks as checks

# id -> (n_features, params). 4 features x 4 components use the direct (z - c)^2 distances, 10 the MatMul form.
CONFIGS: dict[str, tuple[int, dict[str, Any]]] = {
    "default-4": (4, {}),
    "default-10": (10, {}),
    "unstandardized-10": (10, {"standardization": False}),
    "unweighted-selected3-10": (10, {"weighted": False, "n_selected_components": 3}),
    "ncomp5-selected2-10": (10, {"n_components": 5, "n_selected_components": 2}),
    "ncomp0.8-10": (10, {"n_components": 0.8}),
    "mle-10": (10, {"n_components": "mle"}),
    "randomized-ncomp6-10": (10, {"svd_solver": "randomized", "n_components": 6, "random_state": 0}),
    "arpack-ncomp4-10": (10, {"svd_solver": "arpack", "n_components": 4, "random_state": 0}),
    "one-feature": (1, {}),
}
DATASETS = ["normal", "float32", "integer", "shifted"]
CASES = [pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS]


def _train(n_features: int, dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.5, 5.0, n_features)
    x = rng.normal(size=(300, n_features)) * scales
    if n_features > 1:
        x[:, 1] += 0.8 * x[:, 0]  # correlated: components are not the axes
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "integer":
        return np.round(x)
    if dataset == "shifted":
        return x + 1e3  # standardization cancels a large mean
    return x


def _score_rows(train: np.ndarray, det: PCA) -> np.ndarray:
    rng = np.random.default_rng(2)
    n_features = train.shape[1]
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(80, n_features))
    far = np.vstack([np.full(n_features, 1e3), np.full(n_features, -1e3), rng.uniform(-1e3, 1e3, (5, n_features))])
    # Rows on the scored component points (in the standardized space): distances near 0.
    on_components = det.selected_components_
    if det.standardization:
        on_components = on_components * det.scaler_.scale_ + det.scaler_.mean_
    return np.vstack([train[:60], beyond, far, on_components]).astype(np.float32)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    n_features, params = CONFIGS[config]
    algo = algorithms.get("pca")
    train = _train(n_features, dataset)
    det = algo.build(algo.resolve_params(params), 0.1).fit(train)
    model = to_onnx(det, n_features)
    sess = checks.session(model)
    return algo, det, model, sess, _score_rows(train, det)


_run = checks.run


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_onnx_matches_native(config: str, dataset: str) -> None:
    algo, det, _, sess, x32 = _case(config, dataset)
    checks.assert_matches_native(algo, det, sess, x32)


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(config: str, dataset: str) -> None:
    _, _, _, sess, x32 = _case(config, dataset)
    batch = _run(sess, x32)
    picked = np.r_[np.arange(0, len(x32), 9), np.arange(140, 147)]  # sparse, plus every far row
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])


@pytest.mark.parametrize("config", list(CONFIGS))
def test_contributions_sum_to_the_score(config: str) -> None:
    _, _, _, sess, x32 = _case(config, "normal")
    score, contributions = sess.run(["anomaly_score", "contributions"], {"X": x32})
    assert contributions.shape == x32.shape and np.all(contributions >= -1e-6 * score[:, None])
    np.testing.assert_allclose(contributions.astype(np.float64).sum(axis=1), score, rtol=1e-5)


@pytest.mark.parametrize("config", ["default-4", "default-10"])
def test_graph_contract_and_huge_rows_stay_finite(config: str) -> None:
    _, _, model, sess, _ = _case(config, "normal")
    n_features = CONFIGS[config][0]
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", n_features]
    outputs = {o.name: o for o in model.graph.output}
    assert set(outputs) == {"anomaly_score", "contributions"}
    assert [d.dim_param or d.dim_value for d in outputs["anomaly_score"].type.tensor_type.shape.dim] == ["N"]
    assert _run(sess, np.zeros((0, n_features), np.float32)).shape == (0,)
    # Scores of float32-range rows overflow float32: the graph clips them (and the contributions) to its max.
    huge = np.array([[3e38] * n_features, [-3e38] * n_features, [1e30] * n_features], np.float32)
    score, contributions = sess.run(["anomaly_score", "contributions"], {"X": huge})
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
    x32 = np.vstack([x, np.full((1, 5), 1e3), np.full((1, 5), -1e3)]).astype(np.float32)
    got = _run(sess, x32)
    assert np.all(np.isfinite(got))
    assert verification.compare(got, algorithms.get("pca").score(det, x32.astype(np.float64)))[1] <= 1e-5


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
    result = training.train(_spec(params, 10), _train(10, "float32"))
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
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
    with pytest.raises(ExportError, match="PCA"):
        to_onnx(det, n_features)


def test_registry() -> None:
    assert "pyod.models.pca.PCA" in CONVERTERS
