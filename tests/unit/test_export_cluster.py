"""Parity of the CBLOF graph with PyOD's CBLOF (k-means clusters, large/small split, use_weights)."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.cblof import CBLOF
from sklearn.cluster import MiniBatchKMeans

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import ExportError, supports, to_onnx

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {"random_state": 0},
    "weights": {"random_state": 0, "use_weights": True},
    "k4-alpha0.8-beta2": {"n_clusters": 4, "alpha": 0.8, "beta": 2, "random_state": 1},
    "k12-weights": {"n_clusters": 12, "use_weights": True, "random_state": 2},
}
DATASETS = ["blobs", "float32", "wide"]
CASES = [pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS]


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    n_features = 20 if dataset == "wide" else 5
    # One dense mass plus a small far group, so that small clusters exist.
    x = np.vstack([rng.normal(size=(400, n_features)), rng.normal(size=(25, n_features)) * 0.5 + 6])
    return x.astype(np.float32).astype(np.float64) if dataset == "float32" else x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    n_features = train.shape[1]
    lo, hi = train.min(axis=0), train.max(axis=0)
    return np.vstack([
        rng.normal(size=(100, n_features)),
        rng.uniform(-1e3, 1e3, size=(10, n_features)),
        rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(60, n_features)),
        train,
    ]).astype(np.float32)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    algo = algorithms.get("cblof")
    train = _train(dataset)
    det = algo.build(algo.resolve_params(CONFIGS[config]), 0.1).fit(train)
    model = to_onnx(det, train.shape[1])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return algo, det, model, sess, _score_rows(train)


def _run(sess: ort.InferenceSession, x32: np.ndarray) -> np.ndarray:
    return sess.run(["anomaly_score"], {"X": x32})[0]


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_onnx_matches_native(config: str, dataset: str) -> None:
    algo, det, _, sess, x32 = _case(config, dataset)
    assert len(det.small_cluster_labels_) > 0  # both branches of PyOD's score are exercised
    native = algo.score(det, x32.astype(np.float64))
    got = _run(sess, x32)
    assert got.shape == (len(x32),) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    assert verification.compare(got, native)[1] <= 1e-5


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(config: str, dataset: str) -> None:
    _, _, _, sess, x32 = _case(config, dataset)
    batch = _run(sess, x32)
    picked = np.r_[np.arange(0, len(x32), 7), np.arange(100, 110)]
    np.testing.assert_array_equal(np.array([_run(sess, x32[i : i + 1])[0] for i in picked]), batch[picked])


def test_graph_contract() -> None:
    _, _, model, sess, x32 = _case("weights", "blobs")
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 5]
    assert out.name == "anomaly_score" and [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _run(sess, np.zeros((0, 5), np.float32)).shape == (0,)


@pytest.mark.parametrize("params", [{"random_state": 0}, {"use_weights": True, "n_clusters": 6, "random_state": 3}])
def test_train_end_to_end(params: dict[str, Any]) -> None:
    x = _train("float32")
    algo = algorithms.get("cblof")
    spec = training.TrainSpec(model_name="m", algorithm="cblof", params=algo.resolve_params(params),
                              contamination=0.05, feature_names=[f"f{i}" for i in range(x.shape[1])])
    result = training.train(spec, x)
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5


def test_unusable_clustering_fails_the_job() -> None:
    """PyOD raises when no large/small split exists; the platform reports it as a fit failure."""
    x = np.random.default_rng(1).normal(size=(200, 3))
    algo = algorithms.get("cblof")
    spec = training.TrainSpec(model_name="m", algorithm="cblof",
                              params=algo.resolve_params({"n_clusters": 2, "alpha": 0.99, "beta": 1000}),
                              contamination=0.05, feature_names=["a", "b", "c"])
    with pytest.raises(training.TrainingFailed, match="could not fit"):
        training.train(spec, x)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n_clusters": 1}, "params.n_clusters"),
        ({"alpha": 1.0}, "params.alpha"),
        ({"beta": 1}, "params.beta"),
        ({"use_weights": 1}, "params.use_weights"),
        ({"random_state": -1}, "params.random_state"),
        ({"clustering_estimator": "dbscan"}, "clustering_estimator"),
    ],
)
def test_bad_params_name_the_parameter(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        algorithms.get("cblof").resolve_params(params)


def test_defaults_are_pyods() -> None:
    defaults = CBLOF().get_params()
    assert all(defaults[p.name] == p.default for p in algorithms.get("cblof").params)
    assert supports(CBLOF)


@pytest.mark.parametrize(
    ("factory", "n_features", "match"),
    [
        pytest.param(lambda: CBLOF(), 5, "CBLOF", id="unfitted"),
        pytest.param(lambda: CBLOF(random_state=0).fit(_train("blobs")), 4, "CBLOF", id="wrong-width"),
        pytest.param(
            lambda: CBLOF(clustering_estimator=MiniBatchKMeans(8, random_state=0, n_init=3)).fit(_train("blobs")),
            5, "k-means", id="other-clustering",
        ),
    ],
)
def test_bad_input_raises_export_error(factory: Any, n_features: int, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = factory()
    with pytest.raises(ExportError, match=match):
        to_onnx(est, n_features)
