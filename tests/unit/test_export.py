"""Forest and histogram graphs (PyOD IForest, sklearn IsolationForest, HBOS): what test_export_contract does not
check, and the export registry's refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest
from sklearn.ensemble import IsolationForest

from pynomaly.export import ExportError, supports, to_onnx

import export_checks as checks
import export_data as data

N_FEATURES = data.FOREST_FEATURES
_train = data.forest_train


@pytest.mark.parametrize("case_id", checks.params("forest"))
def test_one_tree_ensemble_node(case_id: str) -> None:
    model = checks.fitted(case_id).model
    assert [n.op_type for n in model.graph.node].count("TreeEnsemble") == 1


@pytest.mark.parametrize("case_id", checks.params("forest", names=("hbos",)))
def test_hbos_contributions_sum_to_the_score(case_id: str) -> None:
    """Additive: the per-feature terms (a second output) sum to the score."""
    X = np.random.default_rng(1).normal(size=(50, N_FEATURES)) * 3
    sess = checks.fitted(case_id).sess
    score, terms = sess.run(None, checks.feed(sess, X))
    assert score.dtype == terms.dtype == np.float64
    np.testing.assert_allclose(terms.sum(axis=1), score, rtol=1e-12)


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
    rows = np.vstack([train[:5], train[:5] + 1.0 + 1e-9])  # float64 values: sklearn rounds them to float32
    np.testing.assert_allclose(checks.run(sess, rows), -est.decision_function(rows), rtol=1e-12)


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
    checks.assert_refused(estimator, n_features)


def test_registry() -> None:
    checks.assert_registered({"pyod.models.iforest.IForest", "sklearn.ensemble._iforest.IsolationForest",
                              "pyod.models.hbos.HBOS"}, (IForest, IsolationForest, HBOS),
                             ("iforest", "sklearn.isolation_forest", "hbos"))
