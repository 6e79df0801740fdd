"""Parity of the distance-based graphs (KNN, LOF, sklearn LOF, KDE, INNE) with the native detectors."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.inne import INNE
from pyod.models.kde import KDE
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from sklearn.neighbors import LocalOutlierFactor

from pynomaly import algorithms, training
from pynomaly.errors import InvalidArgument
from pynomaly.export import ExportError, supports, to_onnx
from pynomaly.export.neighbors import ROW_BLOCK

import export_checks as checks

# id -> (algorithm name, params)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "knn-largest": ("knn", {}),
    "knn-mean-k1": ("knn", {"method": "mean", "n_neighbors": 1}),
    "knn-median-k6": ("knn", {"method": "median", "n_neighbors": 6}),
    "knn-median-k7": ("knn", {"method": "median", "n_neighbors": 7, "metric": "euclidean"}),
    "knn-k100": ("knn", {"n_neighbors": 100}),  # too few rows per k for group minima: one TopK
    "lof-default": ("lof", {}),
    "lof-k5": ("lof", {"n_neighbors": 5}),
    "skl-lof-default": ("sklearn.local_outlier_factor", {}),
    "skl-lof-k35": ("sklearn.local_outlier_factor", {"n_neighbors": 35}),
    "kde-default": ("kde", {}),
    "kde-0.3": ("kde", {"bandwidth": 0.3}),
    "kde-scott": ("kde", {"bandwidth": "scott"}),
    "inne-default": ("inne", {"random_state": 0}),
    "inne-30x16": ("inne", {"n_estimators": 30, "max_samples": 16, "random_state": 1}),
}
# normal: float64 N(0, 1), 6 features; float32: the same rounded to float32, as rows arrive through the API
# (INNE's centres then reappear exactly among scored rows); wide: 20 features (where sklearn's "auto" would
# search by brute force); duplicates: float32 rows repeated more often than n_neighbors; integer: values on a
# grid, so that many rows sit exactly on INNE's sphere boundaries (LOF is left out: tied neighbours are picked
# in different orders).
DATASETS = ["normal", "float32", "wide", "duplicates", "integer"]
SKIP = {("kde", "duplicates"), ("inne", "wide"), ("lof", "integer"), ("sklearn.local_outlier_factor", "integer")}
CASES = [
    pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS if (CONFIGS[c][0], d) not in SKIP
]


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dataset == "wide":
        return rng.normal(size=(300, 20))
    x = rng.normal(size=(300, 6))
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "duplicates":
        x = x.astype(np.float32).astype(np.float64)
        return np.vstack([x[:200], np.repeat(x[:4], 25, axis=0)])
    if dataset == "integer":
        return np.round(2 * x)
    return x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    n_features = train.shape[1]
    fresh = rng.normal(size=(120, n_features))
    far = np.vstack([rng.uniform(-1e3, 1e3, size=(10, n_features)), np.full((1, n_features), 1e3),
                     np.full((1, n_features), -1e3)])
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(60, n_features))
    near = train[:20] + 1e-4 * rng.normal(size=(20, n_features))
    # Every training row: equal to the training set's points (and to INNE's centres).
    return np.vstack([fresh, far, beyond, near, train]).astype(np.float32)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    name, params = CONFIGS[config]
    algo = algorithms.get(name)
    train = _train(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's "duplicate values" warning on purpose
        det = algo.build(algo.resolve_params(params), 0.1).fit(train)
    model = to_onnx(det, train.shape[1])
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
    batch = _run(sess, x32)
    picked = np.r_[np.arange(0, len(x32), 9), np.arange(120, 132)]  # sparse, plus every far row
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])
    # Blocks of rows: the same rows in another order and batch size score the same.
    order = np.random.default_rng(5).permutation(len(x32))[: 3 * ROW_BLOCK + 7]
    np.testing.assert_array_equal(_run(sess, x32[order]), batch[order])


@pytest.mark.parametrize("config", list(CONFIGS))
def test_graph_contract(config: str) -> None:
    _, _, model, sess, x32 = _case(config, "normal")
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", x32.shape[1]]
    assert out.name == "anomaly_score" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert _run(sess, np.zeros((0, x32.shape[1]), np.float32)).shape == (0,)


@pytest.mark.parametrize("dataset", ["float32", "duplicates", "integer"])
def test_inne_rows_equal_to_centres_match(dataset: str) -> None:
    """Training rows are the centres exactly, on the boundaries of their neighbours' spheres."""
    algo, det, _, sess, x32 = _case("inne-default", dataset)
    centres = det._centroids.reshape(-1, x32.shape[1])
    is_centre = (x32.astype(np.float64)[:, None, :] == centres[None]).all(axis=2).any(axis=1)
    assert is_centre.sum() > 100
    native = algo.score(det, x32[is_centre].astype(np.float64))
    np.testing.assert_allclose(_run(sess, x32[is_centre]), native, rtol=1e-6)


@pytest.mark.parametrize("dataset", ["normal", "wide"])
def test_kde_reference_equals_pyod_near_the_data(dataset: str) -> None:
    """The KDE reference is PyOD's model: PyOD's tree agrees with it wherever PyOD is accurate (near the data)."""
    algo, det, _, _, _ = _case("kde-default", dataset)
    rows = _train(dataset)[:100] + 0.1 * np.random.default_rng(3).normal(size=(100, _train(dataset).shape[1]))
    np.testing.assert_allclose(algo.score(det, rows), det.decision_function(rows), rtol=1e-10)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("knn", {"n_neighbors": 3, "method": "mean"}),
        ("lof", {"n_neighbors": 10}),
        ("sklearn.local_outlier_factor", {}),
        ("kde", {"bandwidth": "silverman"}),
        ("inne", {"n_estimators": 50, "random_state": 0}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    # Float32-exact rows, as the API delivers them: verification then scores exact training rows.
    x = np.random.default_rng(4).normal(size=(400, 5)).astype(np.float32).astype(np.float64)
    algo = algorithms.get(name)
    spec = training.TrainSpec(model_name="m", algorithm=name, params=algo.resolve_params(params),
                              contamination=0.05, feature_names=list("abcde"))
    result = training.train(spec, x)
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
    sess = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"X": x[:3].astype(np.float32)})[0].shape == (3,)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("knn", {"metric": "manhattan"}, "params.metric"),
        ("knn", {"p": 1}, "params.p"),
        ("knn", {"method": "max"}, "params.method"),
        ("knn", {"n_neighbors": 0}, "params.n_neighbors"),
        ("knn", {"radius": 2.0}, "radius"),
        ("lof", {"metric": "cosine"}, "params.metric"),
        ("lof", {"n_neighbors": 2.5}, "params.n_neighbors"),
        ("sklearn.local_outlier_factor", {"p": 3}, "params.p"),
        ("kde", {"bandwidth": 0}, "params.bandwidth"),
        ("kde", {"bandwidth": "wide"}, "params.bandwidth"),
        ("kde", {"kernel": "tophat"}, "kernel"),
        ("inne", {"max_samples": 0}, "params.max_samples"),
        ("inne", {"n_estimators": True}, "params.n_estimators"),
        ("sod", {"alpha": 2.0}, "params.alpha"),
        ("cof", {"method": "slow"}, "params.method"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        algorithms.get(name).resolve_params(params)


def test_metric_message_says_only_euclidean_is_exported() -> None:
    with pytest.raises(InvalidArgument, match="only Euclidean"):
        algorithms.get("knn").resolve_params({"metric": "chebyshev"})


def test_defaults_are_the_libraries() -> None:
    for name, cls in [("knn", KNN), ("lof", LOF), ("sklearn.local_outlier_factor", LocalOutlierFactor),
                      ("kde", KDE), ("inne", INNE)]:
        defaults = cls().get_params()
        for p in algorithms.get(name).params:
            assert defaults[p.name] == p.default, (name, p.name)


@pytest.mark.parametrize("name", ["cof", "sod"])
def test_batch_relative_detectors_are_listed_but_not_exportable(name: str) -> None:
    algo = algorithms.get(name)
    assert not algo.exportable and "batch" in algo.export_note
    det = algo.build(algo.resolve_params({}), 0.1).fit(_train("normal")[:60])
    assert not supports(type(det))


def _fitted(factory: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory().fit(_train("normal"))


@pytest.mark.parametrize(
    ("factory", "n_features", "match"),
    [
        pytest.param(KNN, 6, "KNN", id="unfitted-knn"),
        pytest.param(lambda: _fitted(KNN), 5, "KNN", id="wrong-width-knn"),
        pytest.param(lambda: _fitted(lambda: KNN(metric="manhattan")), 6, "Euclidean", id="manhattan-knn"),
        pytest.param(lambda: _fitted(lambda: LOF(p=1)), 6, "Euclidean", id="p1-lof"),
        pytest.param(lambda: _fitted(lambda: KDE(metric="manhattan")), 6, "Euclidean", id="manhattan-kde"),
        pytest.param(lambda: _fitted(lambda: INNE(n_estimators=5)), 7, "INNE", id="wrong-width-inne"),
    ],
)
def test_bad_input_raises_export_error(factory: Any, n_features: int, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        to_onnx(factory(), n_features)


def test_sklearn_lof_without_novelty_is_refused() -> None:
    with pytest.raises(ExportError, match="novelty"):
        to_onnx(LocalOutlierFactor().fit(_train("normal")), 6)
