"""Gaussian-model graphs (PyOD MCD, sklearn EllipticEnvelope, PyOD GMM): what test_export_contract does not check."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from pyod.models.gmm import GMM
from pyod.models.mcd import MCD
from sklearn.covariance import EllipticEnvelope

from pynomaly import algorithms, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import to_onnx

import export_checks as checks
import export_data as data

N_FEATURES = data.COVARIANCE_FEATURES
_train, _score_rows = data.covariance_train, data.centred_rows


@pytest.mark.parametrize("case_id", checks.params("covariance", dataset="normal"))
def test_huge_rows_stay_finite(case_id: str) -> None:
    # Squared distances of float32-range rows overflow float32: the graph clips to the largest float32.
    got = checks.assert_huge_rows_finite(checks.fitted(case_id).sess, [3e38, -3e38, 1e20], N_FEATURES)
    assert np.all(got > 1e30)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mcd", {"random_state": 0}),
        ("sklearn.elliptic_envelope", {"support_fraction": 0.9, "random_state": 0}),
        ("gmm", {"n_components": 2, "covariance_type": "diag", "random_state": 0}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    checks.train_end_to_end(name, params, _train("float32"))


def test_elliptic_envelope_score_is_distance_plus_offset() -> None:
    f = checks.fitted("ee-default-normal")
    expected = f.det.mahalanobis(f.rows) + f.det.offset_
    np.testing.assert_allclose(checks.run(f.sess, f.rows), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_mcd_without_stored_precision_uses_the_pseudo_inverse() -> None:
    x = _train("normal")
    det = MCD(store_precision=False, random_state=0).fit(x)
    sess = ort.InferenceSession(to_onnx(det, N_FEATURES).SerializeToString(), providers=["CPUExecutionProvider"])
    rows = _score_rows(x)
    assert verification.compare(checks.run(sess, rows), det.decision_function(rows))[1] <= 1e-9


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
    checks.assert_refused(estimator, n_features)


def test_registry() -> None:
    checks.assert_registered({"pyod.models.mcd.MCD", "sklearn.covariance._elliptic_envelope.EllipticEnvelope",
                              "pyod.models.gmm.GMM"}, (MCD, EllipticEnvelope, GMM),
                             ("mcd", "sklearn.elliptic_envelope", "gmm"))
