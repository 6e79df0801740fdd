"""ECOD / COPOD graphs (PyOD scoring each row alone against the frozen training distribution): what
test_export_contract does not check."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from pyod.models.ecod import ECOD
from scipy.stats import skew

from pynomaly import algorithms, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, to_onnx

import export_checks as checks
import export_data as data

N_FEATURES = data.ECDF_FEATURES
N_TRAIN = data.ECDF_TRAIN_ROWS
NAMES = ["ecod", "copod"]
_train, _score_rows = data.ecdf_train, data.ecdf_rows
# scipy warns on (near-)constant columns, which the constant data set has on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation")


@pytest.mark.parametrize("case_id", checks.params("ecdf"))
def test_contributions_sum_to_the_score(case_id: str) -> None:
    _, _, _, sess, _, rows, native = checks.fitted(case_id)
    score, contributions = sess.run(["anomaly_score", "contributions"], checks.feed(sess, rows))
    assert contributions.shape == rows.shape and np.all(contributions >= 0)
    np.testing.assert_allclose(contributions.sum(axis=1), native, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float64_training_values_tie_with_their_float64_rows(name: str) -> None:
    """A discrete feature stored as float64 (0.1, 0.2, ...) keeps its ties with the float64 rows that equal it; a
    float32 row of such a value is another value (PyOD's own score of it)."""
    rng = np.random.default_rng(4)
    train = rng.integers(0, 5, size=(N_TRAIN, N_FEATURES)) / 10 + rng.integers(0, 2, size=(N_TRAIN, 1)) * 0.03
    algo = algorithms.get(name)
    det = algo.build({}, 0.1).fit(train)
    sess = ort.InferenceSession(to_onnx(det, N_FEATURES).SerializeToString(), providers=["CPUExecutionProvider"])
    rows = train[:40]
    # PyOD scoring the float64 rows alone against the float64 training data: what the user means.
    meant = np.array([copy.deepcopy(det).decision_function(rows[i : i + 1])[0] for i in range(len(rows))])
    assert verification.compare(checks.run(sess, rows), meant)[1] <= 1e-12
    rounded = rows.astype(np.float32).astype(np.float64)
    native = np.array([copy.deepcopy(det).decision_function(rounded[i : i + 1])[0] for i in range(len(rows))])
    assert verification.compare(checks.run(sess, rounded), native)[1] <= 1e-12
    assert not np.allclose(native, meant, rtol=1e-3)  # the ties are lost: the float32 rows score otherwise


@pytest.mark.parametrize("dataset", ["normal", "integer", "skewed"])
def test_skewness_sign_steps_are_exact(dataset: str) -> None:
    """The exported sign of m3(train column + x) against exact rational arithmetic, at and around every step."""
    from pynomaly.export.ecdf import _keys, _sign_runs, _skew_cubic, _values

    col = _train(dataset)[:40, 0]
    starts, signs = _sign_runs(_skew_cubic(col))
    assert 2 <= len(starts) <= 4  # a cubic with positive leading coefficient: 1 or 3 sign changes (+ zeros)
    near_steps = (starts[1:, None] + np.arange(-2, 3)).ravel()
    probe = np.unique(np.concatenate([near_steps, _keys(np.array([0.0, 1e30, -1e30, 1e300, -1e300]))]))
    for key in probe:
        x = Fraction(float(_values(np.array([key]))[0]))
        z = [Fraction(float(v)) for v in col] + [x]
        mean = sum(z) / len(z)
        exact = sum((v - mean) ** 3 for v in z)
        assert signs[np.searchsorted(starts, key, side="right") - 1] == (exact > 0) - (exact < 0), key


@pytest.mark.parametrize("name", NAMES)
def test_rows_near_a_constant_columns_value_get_pyods_own_skewness(name: str) -> None:
    """Column 3 of the constant data is 0.1 throughout: scipy's mean of it is off 0.1 by a few ulps, so for rows
    at or near 0.1 PyOD's skewness sign is that of its rounding, not of the exact third moment."""
    _, det, _, sess, train, _, _ = checks.fitted(f"{name}-constant")
    assert np.all(train[:, 3] == 0.1)
    steps = np.unique(np.r_[np.arange(-40, 41), np.linspace(-1600, 1600, 41).astype(int), [-5000, 5000]])
    rows = np.repeat(train[:1], len(steps), axis=0)
    rows[:, 3] = [np.float64(0.1) + k * np.spacing(0.1) for k in steps]
    native = algorithms.get(name).score(det, rows)
    assert verification.compare(checks.run(sess, rows), native)[1] <= 1e-12


def test_exact_zero_skewness_is_exercised() -> None:
    """The symmetric data must hit PyOD's skewness == 0 branch, or the parity test above proves less."""
    train = _train("symmetric")
    rows = _score_rows(train)[:140].astype(np.float64)
    zero = [skew(np.append(train[:, f], r[f])) == 0 for r in rows for f in range(2)]
    assert sum(zero) >= 10


@pytest.mark.parametrize("case_id", checks.params("ecdf", dataset="normal"))
def test_huge_rows_stay_finite(case_id: str) -> None:
    checks.assert_huge_rows_finite(checks.fitted(case_id).sess, [3e38, -3e38], N_FEATURES)


def test_native_reference_leaves_the_detector_untouched() -> None:
    _, det, _, _, _, rows, native = checks.fitted("ecod-normal")
    before = det.O.copy()
    rows = rows[:5]
    alone = [copy.deepcopy(det).decision_function(rows[i : i + 1])[0] for i in range(5)]
    np.testing.assert_array_equal(native[:5], alone)
    algorithms.get("ecod").score(det, rows)
    np.testing.assert_array_equal(det.O, before)


@pytest.mark.parametrize("name", NAMES)
def test_train_end_to_end(name: str) -> None:
    checks.train_end_to_end(name, {}, _train("float32"))
    algo = algorithms.get(name)
    assert algo.exact_explanation and algo.exportable


@pytest.mark.parametrize("name", NAMES)
def test_params_are_refused_by_name(name: str) -> None:
    with pytest.raises(InvalidArgument, match="n_jobs"):
        algorithms.get(name).resolve_params({"n_jobs": 2})


def _with_training_value(value: float) -> ECOD:
    det = ECOD().fit(_train("normal"))
    det.X_train[3, 1] = value  # PyOD refuses such data; a detector could still hold it
    return det


@pytest.mark.parametrize(
    ("det", "n_features", "match"),
    [
        pytest.param(ECOD(), N_FEATURES, "ECOD", id="unfitted"),
        pytest.param(ECOD().fit(_train("normal")), N_FEATURES + 1, "n_features", id="wrong-width"),
        pytest.param(ECOD().fit(_train("normal")[:1]), N_FEATURES, "at least 2", id="one-row"),
        pytest.param(_with_training_value(np.inf), N_FEATURES, "training values must be finite", id="inf"),
    ],
)
def test_bad_input_raises_export_error(det: Any, n_features: int, match: str) -> None:
    checks.assert_refused(det, n_features, match)


def test_registry() -> None:
    assert {"pyod.models.ecod.ECOD", "pyod.models.copod.COPOD"} <= set(CONVERTERS)
