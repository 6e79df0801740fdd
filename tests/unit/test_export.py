"""Parity of the exported ONNX graphs with the native detectors (real fits, real onnxruntime)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest
from sklearn.ensemble import IsolationForest

from pynomaly.export import CONVERTERS, ExportError, supports, to_onnx
from pynomaly.export._graph import floor_f32

N_FEATURES = 6


def _pyod_score(det: Any, x: np.ndarray) -> np.ndarray:
    return det.decision_function(x)


def _sklearn_score(est: IsolationForest, x: np.ndarray) -> np.ndarray:
    return -est.decision_function(x)


# id -> (factory, native score with the served convention: higher = more anomalous)
CONFIGS: dict[str, tuple[Callable[[], Any], Callable[[Any, np.ndarray], np.ndarray]]] = {
    "iforest-default": (lambda: IForest(random_state=0), _pyod_score),
    "iforest-50x64": (lambda: IForest(n_estimators=50, max_samples=64, random_state=0), _pyod_score),
    "iforest-maxfeat0.5": (lambda: IForest(max_features=0.5, random_state=0), _pyod_score),
    "iforest-bootstrap": (lambda: IForest(bootstrap=True, random_state=0), _pyod_score),
    "iforest-maxsamples0.5": (lambda: IForest(max_samples=0.5, random_state=0), _pyod_score),
    "skl-isoforest-default": (lambda: IsolationForest(random_state=0), _sklearn_score),
    "skl-isoforest-maxfeat0.6": (lambda: IsolationForest(max_features=0.6, random_state=0), _sklearn_score),
    "hbos-default": (lambda: HBOS(), _pyod_score),
    "hbos-5bins": (lambda: HBOS(n_bins=5), _pyod_score),
    "hbos-30bins-alpha0.5-tol0.2": (lambda: HBOS(n_bins=30, alpha=0.5, tol=0.2), _pyod_score),
    "hbos-auto": (lambda: HBOS(n_bins="auto"), _pyod_score),
}
DATASETS = ["normal", "integer"]
CASES = [pytest.param(c, d, id=f"{c}-{d}") for c in CONFIGS for d in DATASETS]


def _train(dataset: str) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(500, N_FEATURES))
    # Integer values sit exactly on training values, bin edges and (often) the edges' float32 neighbours.
    return np.round(3 * x) if dataset == "integer" else x


def _critical_values(det: Any) -> list[np.ndarray]:
    """Per feature, float64 values where native decisions flip: split thresholds, bin edges, tol bounds."""
    if isinstance(det, HBOS):
        if isinstance(det.hist_, list):
            edges = [np.asarray(e) for e in det.bin_edges_]
        else:
            edges = list(np.asarray(det.bin_edges_).T)
        return [
            np.concatenate([e, [e[0] - (e[1] - e[0]) * det.tol, e[-1] + (e[-1] - e[-2]) * det.tol]])
            for e in edges
        ]
    forest = det.detector_ if isinstance(det, IForest) else det
    thresholds = np.concatenate([t.tree_.threshold[t.tree_.children_left >= 0] for t in forest.estimators_])
    # Every threshold in every column: no need to know which feature a tree split on.
    sample = np.random.default_rng(1).choice(thresholds, size=min(3000, thresholds.size), replace=False)
    return [sample] * N_FEATURES


def _boundary_rows(det: Any) -> np.ndarray:
    """Rows of float32 values at and one float32 step either side of each critical value."""
    cols = []
    for v in _critical_values(det):
        nearest = v.astype(np.float32)
        cols.append(
            np.concatenate(
                [
                    nearest,
                    np.nextafter(nearest, np.float32(np.inf)),
                    np.nextafter(nearest, np.float32(-np.inf)),
                ]
            )
        )
    n = max(len(c) for c in cols)
    # Different phase per column so each row mixes values of different rank.
    return np.stack([np.roll(np.resize(c, n), 7 * f) for f, c in enumerate(cols)], axis=1)


def _score_rows(train: np.ndarray, dataset: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    fresh = rng.normal(size=(100, N_FEATURES))
    far = rng.uniform(-50, 50, size=(20, N_FEATURES))
    if dataset == "integer":
        fresh, far = np.round(3 * fresh), np.round(far)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo
    # Overshoots below/above the training range from on-the-edge to far beyond: each HBOS config's
    # tolerance (tol * bin width) falls between two of these.
    fracs = np.array([0.0, 1e-3, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.3, 1.0])[:, None]
    edge_rows = np.vstack([lo - fracs * span, hi + fracs * span])
    mixed = np.where(np.arange(N_FEATURES) % 2 == 0, lo - 0.01 * span, hi + 0.5 * span)
    return np.vstack([fresh, train[:30], far, edge_rows, mixed[None]])


@cache
def _case(config: str, dataset: str) -> tuple[Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    factory, _ = CONFIGS[config]
    train = _train(dataset)
    det = factory().fit(train)
    model = to_onnx(det, N_FEATURES)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x32 = np.vstack([_score_rows(train, dataset), _boundary_rows(det)]).astype(np.float32)
    return det, model, sess, x32


def _run(sess: ort.InferenceSession, x32: np.ndarray) -> np.ndarray:
    return sess.run(["anomaly_score"], {"X": x32})[0]


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_onnx_matches_native(config: str, dataset: str) -> None:
    det, _, sess, x32 = _case(config, dataset)
    native = CONFIGS[config][1](det, x32.astype(np.float64))
    got = _run(sess, x32)
    assert got.shape == (len(x32),)
    assert got.dtype == np.float32
    atol = 1e-6 * max(1.0, float(np.abs(native).max()))
    np.testing.assert_allclose(got, native, rtol=1e-5, atol=atol)


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(config: str, dataset: str) -> None:
    _, _, sess, x32 = _case(config, dataset)
    batch = _run(sess, x32)
    # Sparse over the fresh rows, all far/edge rows (100:200), spread over the boundary rows.
    picked = np.r_[np.arange(0, 100, 10), np.arange(100, 200), np.linspace(200, len(x32) - 1, 40).astype(int)]
    picked = np.unique(picked[picked < len(x32)])
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_graph_contract(config: str, dataset: str) -> None:
    det, model, sess, _ = _case(config, dataset)
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out, *extra) = model.graph.input, model.graph.output
    if config.startswith("hbos"):  # additive: per-feature terms as a second output, summing to the score
        (contrib,) = extra
        assert contrib.name == "contributions"
        assert [d.dim_param or d.dim_value for d in contrib.type.tensor_type.shape.dim] == ["N", N_FEATURES]
        X = np.random.default_rng(1).normal(size=(50, N_FEATURES)).astype(np.float32) * 3
        score, terms = sess.run(None, {"X": X})
        np.testing.assert_allclose(terms.astype(np.float64).sum(axis=1), score, rtol=1e-5)
    else:
        assert extra == []
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", N_FEATURES]
    assert out.name == "anomaly_score" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert [n.op_type for n in model.graph.node].count("TreeEnsemble") == 1
    assert _run(sess, np.zeros((0, N_FEATURES), np.float32)).shape == (0,)


@pytest.mark.parametrize(
    ("factory", "train"),
    [
        # Identical rows: every tree is a single leaf.
        pytest.param(
            lambda: IsolationForest(n_estimators=5, random_state=0), np.ones((40, 3)), id="one-leaf"
        ),
        # One row per tree: sklearn's denominator c(1) is 0 and it defines the ratio as 1.
        pytest.param(
            lambda: IsolationForest(n_estimators=5, max_samples=1, random_state=0),
            np.random.default_rng(0).normal(size=(40, 3)),
            id="max-samples-1",
        ),
    ],
)
def test_degenerate_forests(factory: Callable[[], IsolationForest], train: np.ndarray) -> None:
    est = factory().fit(train)
    sess = ort.InferenceSession(to_onnx(est, 3).SerializeToString(), providers=["CPUExecutionProvider"])
    x32 = np.vstack([train[:5], train[:5] + 1.0]).astype(np.float32)
    np.testing.assert_allclose(_run(sess, x32), -est.decision_function(x32.astype(np.float64)), rtol=1e-6)


def test_unsupported_estimator_raises_naming_class() -> None:
    from pyod.models.cof import COF

    cof = COF().fit(_train("normal")[:60])
    assert not supports(COF)
    with pytest.raises(ExportError, match="COF"):
        to_onnx(cof, N_FEATURES)


@pytest.mark.parametrize(
    ("estimator", "n_features"),
    [
        pytest.param(IForest(), N_FEATURES, id="unfitted-iforest"),
        pytest.param(HBOS(), N_FEATURES, id="unfitted-hbos"),
        pytest.param(IsolationForest(random_state=0).fit(_train("normal")), 5, id="wrong-width-isoforest"),
        pytest.param(HBOS().fit(_train("normal")), 7, id="wrong-width-hbos"),
    ],
)
def test_bad_input_raises_export_error(estimator: Any, n_features: int) -> None:
    with pytest.raises(ExportError, match=type(estimator).__name__):
        to_onnx(estimator, n_features)


def test_registry() -> None:
    assert {"pyod.models.iforest.IForest", "sklearn.ensemble._iforest.IsolationForest",
            "pyod.models.hbos.HBOS"} <= set(CONVERTERS)
    assert all(supports(cls) for cls in (IForest, IsolationForest, HBOS))


def test_floor_f32_is_largest_float32_not_above() -> None:
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.normal(scale=1e3, size=1000), [0.0, -0.0, 1.5, np.inf, -np.inf, 1e300, -1e300]])
    down = floor_f32(v)
    assert np.all(down <= v)
    assert np.all(down.astype(np.float32).astype(np.float64) == down)
    finite = np.isfinite(down)
    with np.errstate(over="ignore"):  # the step above float32's max is inf, which is fine here
        up = np.nextafter(down[finite].astype(np.float32), np.float32(np.inf)).astype(np.float64)
    assert np.all(up > v[finite])
