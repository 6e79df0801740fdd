"""PyOD's CBLOF (k-means clusters, large/small split, use_weights): what test_export_contract does not check."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from pyod.models.cblof import CBLOF
from sklearn.cluster import MiniBatchKMeans

from pynomaly import algorithms, training
from pynomaly.errors import InvalidArgument
from pynomaly.export import supports

import export_checks as checks
import export_data as data

_train = data.cluster_train


@pytest.mark.parametrize("case_id", checks.params("cluster"))
def test_both_branches_of_the_score_are_exercised(case_id: str) -> None:
    assert len(checks.fitted(case_id).det.small_cluster_labels_) > 0  # PyOD scores large and small clusters apart


@pytest.mark.parametrize("params", [{"random_state": 0}, {"use_weights": True, "n_clusters": 6, "random_state": 3}])
def test_train_end_to_end(params: dict[str, Any]) -> None:
    checks.train_end_to_end("cblof", params, _train("float32"))


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
    checks.assert_refused(est, n_features, match)
