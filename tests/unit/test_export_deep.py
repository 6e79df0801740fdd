"""PyOD's torch detectors (AutoEncoder, VAE, DeepSVDD): ONNX parity with the native scores, real fits.

Fits are a few epochs on a few hundred seeded rows: parity does not need a trained network, only a fitted one.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.metrics import roc_auc_score

from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.export import ExportError, supports, to_onnx

N_FEATURES = 6

# id -> (algorithm, params, dataset)
CONFIGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ae-default": ("auto_encoder", {"epoch_num": 2}, "normal"),
    "ae-raw-tanh-nobn": (
        "auto_encoder",
        {
            "epoch_num": 2,
            "preprocessing": False,
            "batch_norm": False,
            "hidden_activation_name": "tanh",
            "hidden_neuron_list": [8, 4, 2],
            "dropout_rate": 0.0,
        },
        "normal",
    ),
    "ae-constant-feature-elu": ("auto_encoder", {"epoch_num": 2, "hidden_activation_name": "elu"}, "constant"),
    "vae-default": ("vae", {"epoch_num": 2}, "normal"),
    "vae-bn-softplus-nodecoder": (
        "vae",
        {
            "epoch_num": 2,
            "batch_norm": True,
            "hidden_activation_name": "softplus",
            "output_activation_name": "sigmoid",
            "latent_dim": 3,
            "decoder_neuron_list": [],
            "logvar_clip": None,
        },
        "normal",
    ),
    "svdd-default": ("deep_svdd", {"epochs": 3, "random_state": 0}, "normal"),
    "svdd-use-ae-raw-leaky": (
        "deep_svdd",
        {
            "epochs": 3,
            "random_state": 0,
            "use_ae": True,
            "preprocessing": False,
            "hidden_neurons": [5, 3],
            "hidden_activation": "leaky_relu",
            "output_activation": "tanh",
            "optimizer": "sgd",
        },
        "normal",
    ),
}


def _train(dataset: str) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(240, N_FEATURES))
    if dataset == "constant":
        x[:, 2] = 3.5  # std 0: PyOD divides by std + 1e-8
    return x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    return np.vstack(
        [
            verification.verification_rows(train),
            rng.normal(size=(50, N_FEATURES)),
            rng.uniform(-1e3, 1e3, size=(20, N_FEATURES)),
            np.full((1, N_FEATURES), 1e3),
            np.full((1, N_FEATURES), -1e3),
        ]
    ).astype(np.float32)


@cache
def _case(config: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray]:
    name, params, dataset = CONFIGS[config]
    algo = algorithms.get(name)
    train = _train(dataset)
    det = algo.build(algo.resolve_params(params), 0.1).fit(train)
    model = to_onnx(det, N_FEATURES)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return algo, det, model, sess, _score_rows(train)


def _run(sess: ort.InferenceSession, x32: np.ndarray) -> np.ndarray:
    return sess.run(["anomaly_score"], {"X": x32})[0]


@pytest.mark.parametrize("config", CONFIGS)
def test_onnx_matches_native(config: str) -> None:
    algo, det, _, sess, x32 = _case(config)
    native = algo.score(det, x32.astype(np.float64))
    got = _run(sess, x32)
    assert got.shape == (len(x32),)
    assert got.dtype == np.float32
    assert np.isfinite(got).all() and np.isfinite(native).all()  # rows at ±1e3 included
    assert verification.compare(got, native)[1] <= 1e-5


@pytest.mark.parametrize("config", CONFIGS)
def test_row_alone_equals_row_in_batch(config: str) -> None:
    _, _, _, sess, x32 = _case(config)
    batch = _run(sess, x32)
    picked = np.r_[np.linspace(0, len(x32) - 1, 40).astype(int), len(x32) - 2, len(x32) - 1]
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    # The graph runs the network in float64: no float32 kernel picks a different rounding for one row.
    np.testing.assert_array_equal(alone, batch[picked])


@pytest.mark.parametrize("config", CONFIGS)
def test_graph_contract(config: str) -> None:
    _, _, model, _, _ = _case(config)
    onnx.checker.check_model(model, full_check=True)
    (x,), (y, *extra) = model.graph.input, model.graph.output
    assert (x.name, y.name) == ("X", "anomaly_score")
    assert x.type.tensor_type.elem_type == y.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["N", N_FEATURES]
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["N"]
    # The reconstruction models also give Explain its exact per-feature terms; DeepSVDD's distance is taken in
    # the embedding, which has no per-feature split.
    if config.startswith(("ae", "vae")):
        (c,) = extra
        assert c.name == "contributions" and c.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_param or d.dim_value for d in c.type.tensor_type.shape.dim] == ["N", N_FEATURES]
    else:
        assert extra == []


def test_list_algorithms_says_which_explain_exactly() -> None:
    assert algorithms.get("auto_encoder").exact_explanation and algorithms.get("vae").exact_explanation
    assert not algorithms.get("deep_svdd").exact_explanation


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.startswith(("ae", "vae"))])
def test_reconstruction_terms_sum_to_the_score(config: str) -> None:
    _, _, _, sess, x32 = _case(config)
    score, terms = sess.run(["anomaly_score", "contributions"], {"X": x32})
    assert terms.shape == x32.shape and np.all(terms >= 0) and np.all(np.isfinite(terms))
    np.testing.assert_allclose(terms.astype(np.float64).sum(axis=1), score, rtol=1e-5)
    # Batch-invariant like the score: a row's terms are the same bits alone and in a batch.
    alone = np.array([sess.run(["contributions"], {"X": x32[i : i + 1]})[0][0] for i in range(5)])
    np.testing.assert_array_equal(alone, terms[:5])


def test_export_leaves_the_detector_as_it_was() -> None:
    algo, det, _, sess, x32 = _case("ae-default")  # exported already: the graph is a float64 copy
    param = next(det.model.parameters())
    assert (str(param.dtype), param.device.type) == ("torch.float32", "cpu")
    assert verification.compare(_run(sess, x32[:20]), algo.score(det, x32[:20].astype(np.float64)))[1] <= 1e-5


@pytest.mark.parametrize("name", ["auto_encoder", "vae", "deep_svdd"])
def test_wrong_width_or_unfitted_is_an_export_error(name: str) -> None:
    algo = algorithms.get(name)
    config = {"auto_encoder": "ae-default", "vae": "vae-default", "deep_svdd": "svdd-default"}[name]
    _, det, _, _, _ = _case(config)
    assert supports(type(det))
    with pytest.raises(ExportError, match="n_features=4"):
        to_onnx(det, 4)
    with pytest.raises(ExportError, match="not fitted"):
        to_onnx(algo.build(algo.resolve_params({}), 0.1), N_FEATURES)


def test_vae_native_reference_is_the_deterministic_mean_path() -> None:
    algo, det, _, _, x32 = _case("vae-default")
    x = x32[:50].astype(np.float64)
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


@pytest.mark.parametrize("config", ["ae-default", "vae-default", "svdd-default"])
def test_detects_planted_outliers(config: str) -> None:
    algo, det, _, sess, _ = _case(config)
    rng = np.random.default_rng(7)
    rows = np.vstack([rng.normal(size=(200, N_FEATURES)), rng.uniform(-6, 6, size=(20, N_FEATURES))])
    labels = np.r_[np.zeros(200), np.ones(20)]
    assert roc_auc_score(labels, _run(sess, rows.astype(np.float32))) >= 0.8


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
    served = sess.run(None, {"X": x.astype(np.float32)})[0]
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
