"""Distance-based graphs (KNN, LOF, sklearn LOF, KDE, INNE): what test_export_contract does not check."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from pyod.models.inne import INNE
from pyod.models.kde import KDE
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from sklearn.neighbors import LocalOutlierFactor

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument
from pynomaly.export import ExportError, to_onnx
from pynomaly.export.neighbors import ROW_BLOCK

import export_checks as checks
import export_data as data

_train = data.neighbors_train


@pytest.mark.parametrize("case_id", checks.params("neighbors"))
def test_blocks_of_rows_score_alike_in_any_order(case_id: str) -> None:
    """Rows are scored in blocks of ROW_BLOCK: the same rows in another order and batch size score the same."""
    _, _, _, sess, _, rows, _ = checks.fitted(case_id)
    order = np.random.default_rng(5).permutation(len(rows))[: 3 * ROW_BLOCK + 7]
    checks.assert_same_scores(checks.run(sess, rows[order]), checks.run(sess, rows)[order])


@pytest.mark.parametrize("dataset", ["float32", "duplicates", "integer"])
def test_inne_rows_equal_to_centres_match(dataset: str) -> None:
    """Training rows are the centres exactly, on the boundaries of their neighbours' spheres."""
    algo, det, _, sess, _, rows, _ = checks.fitted(f"inne-default-{dataset}")
    centres = det._centroids.reshape(-1, rows.shape[1])
    is_centre = (rows[:, None, :] == centres[None]).all(axis=2).any(axis=1)
    assert is_centre.sum() > 100
    native = algo.score(det, rows[is_centre])
    np.testing.assert_allclose(checks.run(sess, rows[is_centre]), native, rtol=1e-12)


@pytest.mark.parametrize("dataset", ["normal", "wide"])
def test_kde_reference_equals_pyod_near_the_data(dataset: str) -> None:
    """The KDE reference is PyOD's model: PyOD's tree agrees with it wherever PyOD is accurate (near the data)."""
    algo, det, _, _, train, _, _ = checks.fitted(f"kde-default-{dataset}")
    rows = train[:100] + 0.1 * np.random.default_rng(3).normal(size=(100, train.shape[1]))
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
    x = data.f32(np.random.default_rng(4).normal(size=(400, 5)))
    checks.train_end_to_end(name, params, x, list("abcde"))


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
    checks.assert_refused(factory(), n_features, match)


def test_sklearn_lof_without_novelty_is_refused() -> None:
    with pytest.raises(ExportError, match="novelty"):
        to_onnx(LocalOutlierFactor().fit(_train("normal")), 6)
