"""AE1SVM, LUNAR and DevNet: what test_export_contract does not check, on real fits."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MinMaxScaler, RobustScaler

from pynomaly import algorithms, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import supports, to_onnx

import export_checks as checks
import export_data as data


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("ae1svm", {"hidden_neurons": []}, "params.hidden_neurons: must be a list of 1..16 layer sizes"),
        ("ae1svm", {"hidden_neurons": [8, 0]}, "params.hidden_neurons: must be a list of 1..16 layer sizes"),
        ("ae1svm", {"hidden_activation": "softmax"}, 'params.hidden_activation: must be one of "elu"'),
        ("ae1svm", {"batch_norm": 1}, "params.batch_norm: must be true or false"),
        ("ae1svm", {"learning_rate": 0}, r"params.learning_rate: must be in \(0.0, 10.0\]"),
        ("ae1svm", {"epochs": 0}, r"params.epochs: must be an integer in \[1, 100000\]"),
        ("ae1svm", {"batch_size": 2.5}, "params.batch_size: must be an integer"),
        ("ae1svm", {"dropout_rate": 1.0}, r"params.dropout_rate: must be in \[0.0, 1.0\)"),
        ("ae1svm", {"weight_decay": -1e-3}, r"params.weight_decay: must be in \[0.0, 1.0\]"),
        ("ae1svm", {"preprocessing": "yes"}, "params.preprocessing: must be true or false"),
        ("ae1svm", {"alpha": -1}, r"params.alpha: must be in \[0.0, 1000000.0\]"),
        ("ae1svm", {"sigma": 0}, r"params.sigma: must be in \(0.0, 1000000.0\]"),
        ("ae1svm", {"kernel_approx_features": 0}, r"params.kernel_approx_features: must be an integer in \[1,"),
        ("ae1svm", {"nu": 0.1}, "params: unknown hyperparameter 'nu' for algorithm 'ae1svm'"),
        ("lunar", {"model_type": "weight"}, 'params.model_type: must be one of "WEIGHT", "SCORE"'),
        ("lunar", {"n_neighbours": 0}, r"params.n_neighbours: must be an integer in \[1, 10000\]"),
        ("lunar", {"negative_sampling": "GAUSSIAN"}, 'params.negative_sampling: must be one of "MIXED"'),
        ("lunar", {"val_size": 1.0}, r"params.val_size: must be in \(0.0, 1.0\)"),
        ("lunar", {"scaler": "robust"}, 'params.scaler: must be one of "minmax", "standard", "none"'),
        ("lunar", {"epsilon": -0.1}, r"params.epsilon: must be in \[0.0, "),
        ("lunar", {"proportion": 0}, r"params.proportion: must be in \(0.0, 100.0\]"),
        ("lunar", {"n_epochs": 0}, r"params.n_epochs: must be an integer in \[1, "),
        ("lunar", {"lr": float("nan")}, "params.lr: must be a finite number"),
        ("lunar", {"wd": -1}, r"params.wd: must be in \[0.0, 10.0\]"),
        ("lunar", {"leaf_size": 0}, r"params.leaf_size: must be an integer in \[1, "),
        ("lunar", {"metric": "manhattan"}, "params.metric: must be 'minkowski' .* only Euclidean distance"),
        ("lunar", {"p": 1}, "params.p: must be 2 \\(Euclidean\\)"),
        ("lunar", {"random_state": -1}, r"params.random_state: must be an integer in \[0, "),
        ("lunar", {"n_neighbors": 5}, "params: unknown hyperparameter 'n_neighbors' for algorithm 'lunar'"),
        ("devnet", {"network_depth": 3}, r"params.network_depth: must be 1 \(linear\), 2 .* or 4"),
        ("devnet", {"network_depth": True}, r"params.network_depth: must be 1 \(linear\), 2 .* or 4"),
        ("devnet", {"batch_size": 0}, r"params.batch_size: must be an integer in \[1, "),
        ("devnet", {"epochs": -1}, r"params.epochs: must be an integer in \[1, "),
        ("devnet", {"random_seed": None}, "params.random_seed: must be an integer"),
        ("devnet", {"nb_batch": 20}, "params: unknown hyperparameter 'nb_batch' for algorithm 'devnet'"),
    ],
)
def test_bad_params_name_the_parameter_and_what_is_valid(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("params.", r"params\.")):
        algorithms.get(name).resolve_params(params)


def test_defaults_are_pyods() -> None:
    from pyod.models.ae1svm import AE1SVM
    from pyod.models.devnet import DevNet
    from pyod.models.lunar import LUNAR

    for name, cls, renamed in [
        ("ae1svm", AE1SVM, {}),
        ("lunar", LUNAR, {"scaler": "minmax"}),  # PyOD's scaler=None means a fresh MinMaxScaler
        ("devnet", DevNet, {}),
    ]:
        defaults = cls().get_params()
        for p in algorithms.get(name).params:
            assert renamed.get(p.name, defaults[p.name]) == p.default, (name, p.name)


def test_listed_as_served_exactly_and_devnet_learns_from_labels() -> None:
    checks.assert_registered({"pyod.models.ae1svm.AE1SVM", "pyod.models.lunar.LUNAR", "pyod.models.devnet.DevNet",
                              "pynomaly.algorithms.neural.DevNetDetector"}, (), ("ae1svm", "lunar", "devnet"))
    assert [algorithms.get(n).serving for n in ("ae1svm", "lunar", "devnet")] == ["exact"] * 3
    assert [algorithms.get(n).needs_labels for n in ("ae1svm", "lunar", "devnet")] == [False, False, True]
    assert algorithms.get("ae1svm").exact_explanation


@pytest.mark.parametrize("name", ["ae1svm", "lunar", "devnet"])
def test_not_an_automl_candidate(name: str) -> None:
    """Torch detectors train for long (LUNAR: 200 full-batch epochs); DevNet needs labels."""
    with pytest.raises(InvalidArgument, match=f"'{name}' cannot be a candidate"):
        algorithms.get("auto").resolve_params({"candidates": [name]})


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ae1svm", {"epochs": 2, "hidden_neurons": [8, 4], "kernel_approx_features": 64}),
        ("lunar", {"n_epochs": 3, "random_state": 0}),
        ("devnet", {"epochs": 2}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    x = data.f32(np.random.default_rng(3).normal(size=(300, 4)))
    labels = data.far_labels(x) if name == "devnet" else None  # training passes them to fit(X, y)
    result = checks.train_end_to_end(name, params, x, list("abcd"), labels=labels)
    if labels is not None:
        assert result.manifest["labels"]["anomalies"] == labels.sum() == 30


@pytest.mark.parametrize(
    ("case_id", "unfitted"),
    [
        ("ae1svm-default-normal", "ae1svm"),
        ("lunar-default-normal", "lunar"),
        ("lunar-pyod-normal", None),
        ("devnet-default-normal", "devnet"),
        ("devnet-pyod-depth4-normal", None),
    ],
)
def test_wrong_width_or_unfitted_is_an_export_error(case_id: str, unfitted: str | None) -> None:
    det = checks.fitted(case_id).det
    assert supports(type(det))
    checks.assert_refused(det, data.DEEP_FEATURES + 1, f"n_features={data.DEEP_FEATURES + 1} but")
    if unfitted is not None:
        algo = algorithms.get(unfitted)
        checks.assert_refused(algo.build(algo.resolve_params({}), 0.1), data.DEEP_FEATURES, "is not fitted")


def test_ae1svm_score_is_the_reconstruction_error_alone() -> None:
    """PyOD's decision_function never reads the random-Fourier-feature / SVM head: the graph leaves it out."""
    algo, det, _, sess, _, rows, _ = checks.fitted("ae1svm-default-normal")
    other = copy.deepcopy(det)
    with torch.no_grad():
        for p in (other.model.rff.weights, other.model.rff.bias, other.model.svm_weights, other.model.svm_bias):
            p.normal_()
    np.testing.assert_array_equal(algo.score(other, rows), algo.score(det, rows))
    checks.assert_matches_native(sess, rows, algo.score(other, rows))


def test_ae1svm_constant_column_is_scaled_by_pyods_floor() -> None:
    """A column of std 0: PyOD stores 1e-6 and divides by 1e-6 + 1e-8; rows off that value score huge, finitely."""
    _, det, _, sess, train, rows, native = checks.fitted("ae1svm-default-constant")
    assert det.std[2] == 1e-6
    checks.assert_matches_native(sess, rows, native)
    assert np.max(checks.run(sess, rows)) > 1e6 * np.max(checks.run(sess, train))


def test_lunar_scores_training_rows_as_any_row() -> None:
    """PyOD's LUNAR excludes no row from its own neighbours: the training split (and the negative samples) form
    the reference set, so a training row in the split is its own nearest point at distance 0; its training score
    is decision_function's, and the graph scores it as any row."""
    algo, det, _, sess, train, _, _ = checks.fitted("lunar-default-normal")
    split = len(train) - math.ceil(0.1 * len(train))
    assert len(det.neigh._fit_X) == 2 * split  # + proportion (1.0) negative samples per row of the split
    nearest, _ = det.neigh.kneighbors(det.scaler_.transform(train.astype(np.float32)), 1)
    assert np.sum(nearest[:, 0] == 0) == split
    np.testing.assert_array_equal(det.decision_function(train), det.decision_scores_)
    checks.assert_matches_native(sess, train, algo.score(det, train))


def _lunar(**params: Any) -> Any:
    from pyod.models.lunar import LUNAR

    return LUNAR(n_epochs=1, random_state=0, **params).fit(data.neighbors_train("normal")[:120])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        pytest.param({"scaler": MinMaxScaler(clip=True)}, "only MinMaxScaler \\(clip=False\\), StandardScaler",
                     id="minmax-clip"),
        pytest.param({"scaler": RobustScaler()}, "not RobustScaler", id="robust"),
        pytest.param({"metric": "manhattan"}, "only the Euclidean metric is exported", id="manhattan"),
    ],
)
def test_lunar_other_scalers_and_metrics_are_refused(params: dict[str, Any], match: str) -> None:
    checks.assert_refused(_lunar(**params), 6, match)


def test_devnet_fit_is_seeded_by_random_seed() -> None:
    import pyod.models.devnet  # noqa: F401  (importing it seeds torch's and numpy's global RNGs with 42)

    algo = algorithms.get("devnet")
    x = data.deep_train("normal")[:120]
    y = data.far_labels(x)

    def fitted(seed: int) -> Any:
        det = algo.build(algo.resolve_params({"epochs": 1, "network_depth": 1, "random_seed": seed}), 0.1)
        return det.fit(x, y)

    state = torch.get_rng_state()
    first = fitted(7)
    assert torch.equal(torch.get_rng_state(), state)  # the fit forks torch's RNG: the caller's is left as it was
    np.testing.assert_array_equal(algo.score(fitted(7), x), algo.score(first, x))
    assert not np.array_equal(algo.score(fitted(8), x), algo.score(first, x))


@pytest.mark.parametrize("case_id", ["lunar-default-normal", "lunar-score-k10-standard-normal", "lunar-pyod-wide",
                                     "devnet-default-normal", "devnet-pyod-depth4-normal", "devnet-linear"])
def test_reference_is_pyods_network_in_float64(case_id: str) -> None:
    """LUNAR's and DevNet's reference: PyOD's fitted model with its layers in float64. It is a fixed function of
    the row (alone as in any batch) and differs from PyOD's float32 decision_function by PyOD's own rounding."""
    if case_id == "devnet-linear":  # the linear network: its scores cross 0 inside the data
        algo = algorithms.get("devnet")
        x = data.deep_train("normal")
        det = algo.build(algo.resolve_params({"epochs": 1, "network_depth": 1}), 0.1).fit(x, data.far_labels(x))
        rows = data.deep_rows(x)
    else:
        algo, det, _, _, _, rows, _ = checks.fitted(case_id)
    reference = algo.score(det, rows)
    pyod = np.asarray(det.decision_function(rows), np.float64)
    assert np.max(np.abs(reference - pyod)) <= 1e-6 * np.max(np.abs(pyod))
    alone = np.concatenate([algo.score(det, rows[i : i + 1]) for i in range(0, len(rows), 17)])
    assert verification.compare(alone, reference[::17])[1] <= 1e-12
    if case_id == "devnet-linear":
        sess = checks.session(to_onnx(det, x.shape[1]))
        checks.assert_matches_native(sess, rows, reference)
        assert np.min(np.abs(reference)) < 1e-3 * np.max(np.abs(reference))  # the rows do pass near 0


@pytest.mark.parametrize("case_id", ["ae1svm-default-normal", "lunar-default-normal"])
def test_detects_planted_outliers(case_id: str) -> None:
    """A quality floor, as PyOD's tests keep one (DevNet's, which learns from labels, is the next test)."""
    sess = checks.fitted(case_id).sess
    rng = np.random.default_rng(7)
    rows = np.vstack([rng.normal(size=(200, 6)), rng.uniform(-6, 6, size=(20, 6))])
    assert roc_auc_score(np.r_[np.zeros(200), np.ones(20)], checks.run(sess, rows)) >= 0.9


def test_devnet_learns_from_the_labels_where_pyods_fit_does_not() -> None:
    """DevNet's quality floor on held-out rows: anomalies of a kind labelled in training score above new normal
    rows. PyOD 3.6.7's own fit (deviation_loss called with its arguments swapped and broadcast [B, 1] against
    [B]) learns nothing from the labels: the same data, network and seed rank the new anomalies lowest."""
    from pyod.models.devnet import DevNet

    rng = np.random.default_rng(11)
    x = np.vstack([rng.normal(size=(400, 5)), rng.normal(3.0, 0.5, size=(20, 5))])
    y = np.r_[np.zeros(400, int), np.ones(20, int)]
    new = np.vstack([rng.normal(size=(200, 5)), rng.normal(3.0, 0.5, size=(20, 5))])
    truth = np.r_[np.zeros(200), np.ones(20)]
    algo = algorithms.get("devnet")
    det = algo.build(algo.resolve_params({"epochs": 20}), 0.1).fit(x, y)
    assert roc_auc_score(truth, checks.run(checks.session(to_onnx(det, 5)), new)) >= 0.95
    assert np.mean(det.detector_.labels_[y == 1]) == 1.0  # the threshold flags every labelled anomaly
    torch.manual_seed(42)
    pyod = DevNet(contamination=0.1, device="cpu", epochs=20).fit(x, y)
    assert roc_auc_score(truth, pyod.decision_function(new)) < 0.5
