"""DIF (algorithms.dif, export.dif): what test_export_contract does not check. Its cases are in cases_dif.py."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from pynomaly import algorithms
from pynomaly.algorithms.dif import DIFDetector
from pynomaly.errors import InvalidArgument

import export_checks as checks
import export_data as data

_SMALL = {"n_ensemble": 2, "random_state": 0}


def _fit(params: dict[str, Any], train: np.ndarray) -> DIFDetector:
    algo = algorithms.get("dif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return algo.build(algo.resolve_params(params), 0.1).fit(train)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batch_size": 0}, r"params\.batch_size: must be an integer in \[1, 1000000\]"),
        ({"representation_dim": 0}, r"params\.representation_dim: must be an integer in \[1, 4096\]"),
        ({"hidden_neurons": []}, r"params\.hidden_neurons: must be null or a list of 1\.\.16 layer sizes"),
        ({"hidden_neurons": [10, 0]}, r"params\.hidden_neurons: must be null or a list of 1\.\.16 layer sizes"),
        ({"hidden_activation": "softmax"}, r"params\.hidden_activation: must be one of .*\"tanh\""),
        ({"skip_connection": 1}, r"params\.skip_connection: must be true or false"),
        ({"n_ensemble": 0}, r"params\.n_ensemble: must be an integer in \[1, 1000\]"),
        ({"n_estimators": 0}, r"params\.n_estimators: must be an integer in \[1, 1000\]"),
        ({"max_samples": 1}, r"params\.max_samples: must be an integer in \[2, 1000000\]"),
        ({"max_samples": 0.5}, r"params\.max_samples: must be an integer"),
        ({"random_state": -1}, r"params\.random_state: must be an integer in \[0, 4294967295\]"),
        ({"device": "cuda"}, r"params: unknown hyperparameter 'device'"),
    ],
)
def test_bad_hyperparameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        algorithms.get("dif").resolve_params(params)


def test_train_end_to_end() -> None:
    result = checks.train_end_to_end("dif", _SMALL, data.ensemble_train("float32"))
    assert result.manifest["algorithm"] == "dif"


def test_refused_unfitted_wrong_width_and_bare_pyod_dif() -> None:
    from pyod.models.dif import DIF

    checks.assert_refused(DIFDetector(0.1), data.ENSEMBLE_FEATURES, match="DIF is not fitted")
    det = checks.fitted("dif-2nets-normal").det
    checks.assert_refused(det, data.ENSEMBLE_FEATURES + 1, match="fitted on 6")
    # PyOD's own DIF standardises on the scored batch: only the frozen wrapper is served.
    checks.assert_refused(DIF(device="cpu"), data.ENSEMBLE_FEATURES, match="no ONNX converter for pyod.models.dif.DIF")


def test_the_frozen_score_is_pyods_training_score_on_training_rows() -> None:
    """On the training rows the frozen standardisation is the one PyOD fitted its forests' input with, so the
    reference there is PyOD's own training score, up to PyOD's float32 networks (float64 here)."""
    f = checks.fitted("dif-2nets-normal")
    np.testing.assert_allclose(f.algo.score(f.det, f.train), f.det.detector_.decision_scores_, rtol=1e-5)


def test_a_row_scores_alone_as_in_a_batch_where_pyod_standardises_it_to_zero() -> None:
    f = checks.fitted("dif-2nets-normal")
    rows = f.rows[:40]
    batch = f.algo.score(f.det, rows)
    alone = np.array([f.algo.score(f.det, rows[i : i + 1])[0] for i in range(len(rows))])
    np.testing.assert_allclose(alone, batch, rtol=1e-12)
    # PyOD's decision_function fits the standardisation on the batch: the same row alone scores differently.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: pinned memory asked for, no accelerator
        native_alone = np.array([f.det.detector_.decision_function(rows[i : i + 1])[0] for i in range(5)])
    assert not np.allclose(native_alone, batch[:5], rtol=1e-3)


def test_the_frozen_scaler_is_fitted_on_the_training_representations() -> None:
    f = checks.fitted("dif-2nets-normal")
    for h, mean, scale in zip(f.det.representations(f.train), f.det.mean_, f.det.scale_, strict=True):
        np.testing.assert_allclose(mean, h.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scale, h.std(axis=0), rtol=1e-12)


def test_trees_of_one_node_count_no_depth() -> None:
    """_cal_score skips a tree of one node (its depth counts 0, not c(leaf size)): the case with such trees is
    exact (test_export_contract), and it has them."""
    det = checks.fitted("dif-2samples-repeated").det
    sizes = [tree.tree_.node_count for forest in det.detector_.iForest_lst for tree in forest.estimators_]
    assert 1 in sizes and max(sizes) > 1


def test_fit_leaves_the_global_generators_alone() -> None:
    import torch

    np.random.seed(7)
    torch.manual_seed(7)
    expected_np, expected_torch = np.random.rand(3), torch.rand(3)
    np.random.seed(7)
    torch.manual_seed(7)
    _fit(_SMALL, data.ensemble_train("normal")[:60])
    np.testing.assert_array_equal(np.random.rand(3), expected_np)
    assert torch.equal(torch.rand(3), expected_torch)


def test_seeded_fits_score_alike() -> None:
    train, rows = data.ensemble_train("normal")[:80], data.ensemble_rows(data.ensemble_train("normal"))[:20]
    algo = algorithms.get("dif")
    first, second = _fit(_SMALL, train), _fit(_SMALL, train)
    np.testing.assert_array_equal(algo.score(first, rows), algo.score(second, rows))
