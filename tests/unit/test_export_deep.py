"""PyOD's torch detectors (AutoEncoder, VAE, DeepSVDD): what test_export_contract does not check, real fits."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.metrics import roc_auc_score

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import ExportError, supports, to_onnx

import export_checks as checks
import export_data as data

N_FEATURES = data.DEEP_FEATURES
_train = data.deep_train


def test_list_algorithms_says_which_explain_exactly() -> None:
    assert algorithms.get("auto_encoder").exact_explanation and algorithms.get("vae").exact_explanation
    assert not algorithms.get("deep_svdd").exact_explanation


@pytest.mark.parametrize("case_id", checks.params("deep", names=("auto_encoder", "vae")))
def test_reconstruction_terms_sum_to_the_score(case_id: str) -> None:
    _, _, _, sess, _, rows, _ = checks.fitted(case_id)
    score, terms = sess.run(["anomaly_score", "contributions"], checks.feed(sess, rows))
    assert terms.shape == rows.shape and np.all(terms >= 0) and np.all(np.isfinite(terms))
    np.testing.assert_allclose(terms.sum(axis=1), score, rtol=1e-12)
    # Batch-invariant like the score: a row's terms are the same alone and in a batch.
    alone = np.array([sess.run(["contributions"], checks.feed(sess, rows[i : i + 1]))[0][0] for i in range(5)])
    checks.assert_same_scores(alone.ravel(), terms[:5].ravel())


def test_export_leaves_the_detector_as_it_was() -> None:
    algo, det, _, sess, _, rows, _ = checks.fitted("ae-default-normal")  # exported already: a float64 copy
    param = next(det.model.parameters())
    assert (str(param.dtype), param.device.type) == ("torch.float32", "cpu")
    assert verification.compare(checks.run(sess, rows[:20]), algo.score(det, rows[:20]))[1] <= 1e-5


@pytest.mark.parametrize("name", ["auto_encoder", "vae", "deep_svdd"])
def test_wrong_width_or_unfitted_is_an_export_error(name: str) -> None:
    algo = algorithms.get(name)
    config = {"auto_encoder": "ae-default", "vae": "vae-default", "deep_svdd": "svdd-default"}[name]
    det = checks.fitted(f"{config}-normal").det
    assert supports(type(det))
    with pytest.raises(ExportError, match="n_features=4"):
        to_onnx(det, 4)
    with pytest.raises(ExportError, match="not fitted"):
        to_onnx(algo.build(algo.resolve_params({}), 0.1), N_FEATURES)


def test_vae_native_reference_is_the_deterministic_mean_path() -> None:
    algo, det, _, _, _, rows, _ = checks.fitted("vae-default-normal")
    x = rows[:50]
    # PyOD's own decision_function decodes a sampled latent: two calls disagree, so it cannot be a reference.
    assert not np.array_equal(det.decision_function(x), det.decision_function(x))
    np.testing.assert_array_equal(algo.score(det, x), algo.score(det, x))
    # Batch-invariant up to torch's float32 kernels (as PyOD's own scores are).
    np.testing.assert_allclose(algo.score(det, x[:1]), algo.score(det, x)[:1], rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [("auto_encoder", {"epoch_num": 2}), ("vae", {"epoch_num": 2}), ("deep_svdd", {"epochs": 3, "random_state": 5})],
)
def test_fit_is_reproducible_with_a_seed(name: str, params: dict[str, Any]) -> None:
    algo = algorithms.get(name)
    x = _train("normal")
    state = np.random.get_state()[1].copy()
    first = algo.score(algo.build(algo.resolve_params(params), 0.1).fit(x), x)
    if name == "deep_svdd":  # fitted with its own seed; numpy's global state is given back
        np.testing.assert_array_equal(np.random.get_state()[1], state)
    second = algo.score(algo.build(algo.resolve_params(params), 0.1).fit(x), x)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("case_id", ["ae-default-normal", "vae-default-normal", "svdd-default-normal"])
def test_detects_planted_outliers(case_id: str) -> None:
    sess = checks.fitted(case_id).sess
    rng = np.random.default_rng(7)
    rows = np.vstack([rng.normal(size=(200, N_FEATURES)), rng.uniform(-6, 6, size=(20, N_FEATURES))])
    labels = np.r_[np.zeros(200), np.ones(20)]
    assert roc_auc_score(labels, checks.run(sess, rows)) >= 0.8


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("auto_encoder", {"epoch_num": 2, "hidden_neuron_list": [8, 4]}),
        ("vae", {"epoch_num": 2, "encoder_neuron_list": [16, 8], "decoder_neuron_list": [8, 16]}),
        ("deep_svdd", {"epochs": 3, "random_state": 0}),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    algo = algorithms.get(name)
    x = np.random.default_rng(3).normal(size=(300, 4))
    spec = training.TrainSpec(
        model_name="m",
        algorithm=name,
        params=algo.resolve_params(params),
        contamination=0.05,
        feature_names=["a", "b", "c", "d"],
    )
    result = training.train(spec, x)
    check = result.manifest["export_check"]
    assert check["max_rel_error"] <= 1e-5
    assert check["rows"] == 300 + verification.SYNTHETIC_ROWS
    sess = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    served = sess.run(None, {"X": x})[0]
    assert served.dtype == np.float64
    assert np.mean(served > result.manifest["threshold"]) == pytest.approx(0.05, abs=0.02)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("auto_encoder", {"hidden_neurons": [8]}, "params: unknown hyperparameter 'hidden_neurons'"),
        ("auto_encoder", {"hidden_neuron_list": []}, "params.hidden_neuron_list"),
        ("auto_encoder", {"hidden_neuron_list": [8, 0]}, "params.hidden_neuron_list"),
        ("auto_encoder", {"hidden_neuron_list": "64,32"}, "params.hidden_neuron_list"),
        ("auto_encoder", {"hidden_neuron_list": [8.5]}, "params.hidden_neuron_list"),
        ("auto_encoder", {"epoch_num": 0}, "params.epoch_num"),
        ("auto_encoder", {"batch_size": 2.5}, "params.batch_size"),
        ("auto_encoder", {"lr": 0}, "params.lr"),
        ("auto_encoder", {"dropout_rate": 1.0}, "params.dropout_rate"),
        ("auto_encoder", {"optimizer_name": "lbfgs"}, "params.optimizer_name"),
        ("auto_encoder", {"hidden_activation_name": "softmax"}, "params.hidden_activation_name"),
        ("auto_encoder", {"batch_norm": 1}, "params.batch_norm"),
        ("auto_encoder", {"random_state": None}, "params.random_state"),
        ("auto_encoder", {"weight_decay": -1e-3}, "params.weight_decay"),
        ("vae", {"latent_dim": 0}, "params.latent_dim"),
        ("vae", {"logvar_clip": [1.0, -1.0]}, "params.logvar_clip"),
        ("vae", {"logvar_clip": [1.0]}, "params.logvar_clip"),
        ("vae", {"encoder_neuron_list": []}, "params.encoder_neuron_list"),
        ("vae", {"beta": -1}, "params.beta"),
        ("deep_svdd", {"hidden_neurons": [8]}, "params.hidden_neurons"),
        ("deep_svdd", {"optimizer": "sparseadam"}, "params.optimizer"),
        ("deep_svdd", {"epochs": -1}, "params.epochs"),
        ("deep_svdd", {"learning_rate": float("nan")}, "params.learning_rate"),
        ("deep_svdd", {"random_state": -1}, "params.random_state"),
        ("deep_svdd", {"validation_size": 0.2}, "params: unknown hyperparameter 'validation_size'"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field.replace(".", r"\.")):
        algorithms.get(name).resolve_params(params)


def test_defaults_are_pyods() -> None:
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.deep_svdd import DeepSVDD
    from pyod.models.vae import VAE

    for name, cls, renamed in [
        ("auto_encoder", AutoEncoder, {}),
        ("vae", VAE, {"logvar_clip": (-30.0, 20.0)}),
        ("deep_svdd", DeepSVDD, {"hidden_neurons": [64, 32]}),  # PyOD's None means [64, 32]
    ]:
        pyod_defaults = cls(**({"n_features": 1} if cls is DeepSVDD else {})).get_params()
        for p in algorithms.get(name).params:
            if p.name == "weight_decay":
                assert pyod_defaults["optimizer_params"] == {"weight_decay": p.default}
                continue
            expected = renamed.get(p.name, pyod_defaults[p.name])
            assert (tuple(p.default) if name == "vae" and p.name == "logvar_clip" else p.default) == expected, p.name


def test_listing_algorithms_imports_no_torch() -> None:
    code = ("import sys, pynomaly.algorithms, pynomaly.export, pynomaly.export.torch_module; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
