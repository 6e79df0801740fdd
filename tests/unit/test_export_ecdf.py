"""ECOD / COPOD graphs vs PyOD scoring each row alone (frozen training distribution); real fits, real onnxruntime."""

from __future__ import annotations

import copy
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.ecod import ECOD
from scipy.stats import skew

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, to_onnx

import export_checks as checks

N_FEATURES = 4
N_TRAIN = 200
NAMES = ["ecod", "copod"]
# normal: float64 values (no float32 equals a training value); float32: float32-exact values (rows can tie);
# integer: few distinct values (ties everywhere); symmetric: small-integer symmetric columns, where the
# skewness over training + row is exactly 0 for some rows (ECOD then adds both tails); constant: constant
# columns and a balanced binary one; skewed: exponential far from the origin.
DATASETS = ["normal", "float32", "integer", "symmetric", "constant", "skewed"]
CASES = [pytest.param(a, d, id=f"{a}-{d}") for a in NAMES for d in DATASETS]
# scipy warns on (near-)constant columns, which the constant data set has on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation")


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN, N_FEATURES))
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "integer":
        return np.round(3 * x)
    if dataset == "symmetric":
        x = rng.integers(-2, 3, size=(N_TRAIN, N_FEATURES)).astype(np.float64)
        x[:, 0] = np.resize([-1.0, 0.0, 1.0], N_TRAIN)
        x[:, 1] = np.resize([1.0, 2.0, 3.0, 3.0, 2.0, 1.0], N_TRAIN)
        return x
    if dataset == "constant":
        x[:, 1] = 0.5  # float32-exact: a row can equal it, making the column constant (scipy's skew: NaN -> 0)
        x[:, 2] = np.resize([0.0, 1.0], N_TRAIN)
        x[:, 3] = 0.1  # not float32-exact: no row equals it
        return x
    if dataset == "skewed":
        return 1e4 + 100 * rng.exponential(size=(N_TRAIN, N_FEATURES))
    return x


def _skew_roots(col: np.ndarray) -> np.ndarray:
    """Real x where the skewness of concat(col, x) changes sign (roots of m^3 * m3 as a cubic in x)."""
    m = len(col) + 1
    s1, s2, s3 = col.sum(), (col**2).sum(), (col**3).sum()
    coeffs = [m * m - 3 * m + 2, (6 - 3 * m) * s1, 6 * s1 * s1 - 3 * m * s2, m * m * s3 - 3 * m * s1 * s2 + 2 * s1**3]
    roots = np.roots(coeffs)
    return roots[np.abs(roots.imag) < 1e-6 * (1 + np.abs(roots.real))].real


def _boundary_rows(train: np.ndarray) -> np.ndarray:
    """Per column: each training value and each skewness sign change, as float32 and one float32 step either side."""
    cols = []
    for f in range(N_FEATURES):
        values = np.concatenate([np.unique(train[:, f]), _skew_roots(train[:, f])]).astype(np.float32)
        up, down = np.nextafter(values, np.float32(np.inf)), np.nextafter(values, np.float32(-np.inf))
        cols.append(np.concatenate([values, up, down]))
    n = max(len(c) for c in cols)
    # A different phase per column, so rows mix values of different rank.
    return np.stack([np.roll(np.resize(c, n), 7 * f) for f, c in enumerate(cols)], axis=1)


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo + 1.0
    fresh = rng.uniform(lo - span / 2, hi + span / 2, size=(60, N_FEATURES))
    whole = np.round(rng.uniform(lo - 2, hi + 2, size=(40, N_FEATURES)))  # ties with integer training data
    far = np.array([[1e3] * N_FEATURES, [-1e3] * N_FEATURES, [1e3, -1e3] * (N_FEATURES // 2)])
    return np.vstack([fresh, whole, far, train[:20], lo[None], hi[None], _boundary_rows(train)]).astype(np.float32)


@cache
def _case(name: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray, np.ndarray]:
    algo = algorithms.get(name)
    train = _train(dataset)
    det = algo.build(algo.resolve_params({}), 0.1).fit(train)
    model = to_onnx(det, N_FEATURES)
    sess = checks.session(model)
    x32 = _score_rows(train)
    return algo, det, model, sess, x32, algo.score(det, x32.astype(np.float64))


_run = checks.run


@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_onnx_matches_pyod_scoring_each_row_alone(name: str, dataset: str) -> None:
    _, _, _, sess, x32, native = _case(name, dataset)
    got = _run(sess, x32)
    assert got.shape == (len(x32),) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    assert verification.compare(got, native)[1] <= 1e-5


@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(name: str, dataset: str) -> None:
    _, _, _, sess, x32, _ = _case(name, dataset)
    batch = _run(sess, x32)
    picked = np.r_[np.arange(0, len(x32), 11), np.arange(100, 103)]  # sparse, plus the far rows
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])


@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_contributions_sum_to_the_score(name: str, dataset: str) -> None:
    _, _, _, sess, x32, native = _case(name, dataset)
    score, contributions = sess.run(["anomaly_score", "contributions"], {"X": x32})
    assert contributions.shape == x32.shape and np.all(contributions >= 0)
    np.testing.assert_allclose(contributions.astype(np.float64).sum(axis=1), native, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_float64_training_values_tie_with_their_float32_rows(name: str) -> None:
    """A discrete feature stored as float64 (0.1, 0.2, ...) must keep its ties when rows arrive as float32."""
    rng = np.random.default_rng(4)
    train = rng.integers(0, 5, size=(N_TRAIN, N_FEATURES)) / 10 + rng.integers(0, 2, size=(N_TRAIN, 1)) * 0.03
    algo = algorithms.get(name)
    det = algo.build({}, 0.1).fit(train)
    sess = ort.InferenceSession(to_onnx(det, N_FEATURES).SerializeToString(), providers=["CPUExecutionProvider"])
    rows = train[:40]
    # PyOD scoring the float64 rows alone against the float64 training data: what the user means.
    meant = np.array([copy.deepcopy(det).decision_function(rows[i : i + 1])[0] for i in range(len(rows))])
    assert verification.compare(_run(sess, rows.astype(np.float32)), meant)[1] <= 1e-5


@pytest.mark.parametrize("dataset", ["normal", "integer", "skewed"])
def test_skewness_sign_steps_are_exact(dataset: str) -> None:
    """The exported sign of m3(train column + x) against exact rational arithmetic, at and around every step."""
    from pynomaly.export.ecdf import _keys, _sign_runs, _skew_cubic, _values

    col = _train(dataset)[:40, 0].astype(np.float32).astype(np.float64)
    starts, signs = _sign_runs(_skew_cubic(col))
    assert 2 <= len(starts) <= 4  # a cubic with positive leading coefficient: 1 or 3 sign changes (+ zeros)
    near_steps = (starts[1:, None] + np.arange(-2, 3)).ravel()
    probe = np.unique(np.concatenate([near_steps, _keys(np.array([0.0, 1e30, -1e30]))]))
    for key in probe:
        x = Fraction(float(_values(np.array([key]))[0]))
        z = [Fraction(float(v)) for v in col] + [x]
        mean = sum(z) / len(z)
        exact = sum((v - mean) ** 3 for v in z)
        assert signs[np.searchsorted(starts, key, side="right") - 1] == (exact > 0) - (exact < 0), key


def test_exact_zero_skewness_is_exercised() -> None:
    """The symmetric data must hit PyOD's skewness == 0 branch, or the parity test above proves less."""
    train = _train("symmetric")
    rows = _score_rows(train)[:140].astype(np.float64)
    zero = [skew(np.append(train[:, f], r[f])) == 0 for r in rows for f in range(2)]
    assert sum(zero) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_graph_contract(name: str) -> None:
    _, _, model, sess, _, _ = _case(name, "normal")
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", N_FEATURES]
    outputs = {o.name: o for o in model.graph.output}
    out = outputs["anomaly_score"]
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert set(outputs) == {"anomaly_score", "contributions"}
    assert _run(sess, np.zeros((0, N_FEATURES), np.float32)).shape == (0,)
    huge = np.array([[3e38] * N_FEATURES, [-3e38] * N_FEATURES], np.float32)
    assert np.all(np.isfinite(_run(sess, huge)))


def test_native_reference_leaves_the_detector_untouched() -> None:
    _, det, _, _, x32, native = _case("ecod", "normal")
    before = det.O.copy()
    rows = x32[:5].astype(np.float64)
    alone = [copy.deepcopy(det).decision_function(rows[i : i + 1])[0] for i in range(5)]
    np.testing.assert_array_equal(native[:5], alone)
    algorithms.get("ecod").score(det, rows)
    np.testing.assert_array_equal(det.O, before)


@pytest.mark.parametrize("name", NAMES)
def test_train_end_to_end(name: str) -> None:
    x = _train("float32")
    algo = algorithms.get(name)
    spec = training.TrainSpec(model_name="m", algorithm=name, params=algo.resolve_params({}), contamination=0.05,
                              feature_names=[f"f{i}" for i in range(N_FEATURES)])
    result = training.train(spec, x)
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
    assert algo.exact_explanation and algo.exportable


@pytest.mark.parametrize("name", NAMES)
def test_params_are_refused_by_name(name: str) -> None:
    with pytest.raises(InvalidArgument, match="n_jobs"):
        algorithms.get(name).resolve_params({"n_jobs": 2})


@pytest.mark.parametrize(
    ("det", "n_features", "match"),
    [
        pytest.param(ECOD(), N_FEATURES, "ECOD", id="unfitted"),
        pytest.param(ECOD().fit(_train("normal")), N_FEATURES + 1, "n_features", id="wrong-width"),
        pytest.param(ECOD().fit(_train("normal")[:1]), N_FEATURES, "at least 2", id="one-row"),
        pytest.param(ECOD().fit(_train("normal") * 1e39), N_FEATURES, "finite in float32", id="beyond-float32"),
    ],
)
def test_bad_input_raises_export_error(det: Any, n_features: int, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        to_onnx(det, n_features)


def test_registry() -> None:
    assert {"pyod.models.ecod.ECOD", "pyod.models.copod.COPOD"} <= set(CONVERTERS)
