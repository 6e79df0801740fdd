"""PyOD's torch detectors: AutoEncoder, VAE and DeepSVDD.

All three train on the CPU (device="cpu"): the export check compares against PyOD's float32 scores, and CUDA
kernels would round differently from the CPU ones. pyod and torch are imported inside build/score only
(importing pyod's AutoEncoder costs ~2.6 s).

Determinism: AutoEncoder and VAE seed Python, numpy and torch from `random_state` in their constructor (PyOD's
own `_set_seed`), which `build` calls right before the fit; DeepSVDD is constructed at fit time (it needs the
feature count) inside a forked torch RNG and a saved numpy RNG state, both seeded from `random_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import (
    Algorithm,
    Check,
    Param,
    batch_epochs,
    boolean,
    integer,
    literal,
    number,
    pyod_score,
)

# pyod.utils.torch_utility.get_activation_by_name
_ACTIVATIONS = ("elu", "identity", "leaky_relu", "relu", "sigmoid", "softplus", "tanh")
# pyod.utils.torch_utility.get_optimizer_by_name (AutoEncoder, VAE)
_DL_OPTIMIZERS = ("adam", "sgd")
# pyod.models.deep_svdd.optimizer_dict, less sparseadam (needs sparse gradients) and lbfgs (needs a closure)
_SVDD_OPTIMIZERS = ("adam", "adamw", "nadam", "sgd", "rmsprop", "adagrad", "adadelta", "asgd")
# PyOD's standardization divides by std + this (pyod.utils.torch_utility.TorchDataset's eps).
TORCH_DATASET_EPS = 1e-8
_MAX_WIDTH = 4096
_MAX_LAYERS = 16


def layer_sizes(min_len: int) -> Check:
    def check(v: Any) -> Any:
        what = f"a list of {min_len}..{_MAX_LAYERS} layer sizes, each an integer in [1, {_MAX_WIDTH}]"
        if isinstance(v, str | bytes) or not isinstance(v, Sequence) or not min_len <= len(v) <= _MAX_LAYERS:
            raise ValueError(f"must be {what}")
        try:
            return [integer(1, _MAX_WIDTH)(n) for n in v]
        except ValueError:
            raise ValueError(f"must be {what}") from None

    return check


def _logvar_clip(v: Any) -> Any:
    if v is None:
        return None
    what = "null or [lower, upper], two finite numbers with lower < upper"
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) != 2:
        raise ValueError(f"must be {what}")
    try:
        lo, hi = (number(-1e4, 1e4)(x) for x in v)
    except ValueError:
        raise ValueError(f"must be {what}") from None
    if lo >= hi:
        raise ValueError(f"must be {what}")
    return [lo, hi]


def _common(
    epochs: tuple[str, int], lr: tuple[str, float], optimizer: tuple[str, tuple[str, ...]]
) -> tuple[Param, ...]:
    """Training parameters, under each detector's own PyOD names."""
    return (
        Param(epochs[0], "int", epochs[1], "Training epochs, >= 1.", integer(1, 100_000)),
        Param("batch_size", "int", 32, "Rows per gradient step, >= 1.", integer(1, 1_000_000)),
        Param(lr[0], "float", lr[1], "Learning rate, in (0, 10].", number(0.0, 10.0, lo_open=True)),
        Param(optimizer[0], "str", "adam", "torch optimizer.", literal(*optimizer[1])),
        Param(
            "dropout_rate", "float", 0.2, "Dropout probability in training, in [0, 1).", number(0.0, 1.0, hi_open=True)
        ),
        Param("preprocessing", "bool", True, "Standardize features with the training mean and std.", boolean),
    )


def _activation(name: str, default: str, what: str) -> Param:
    return Param(name, "str", default, f"Activation of {what}.", literal(*_ACTIVATIONS))


_SEED_42 = Param("random_state", "int", 42, "Seed of torch, numpy and random.", integer(0, 2**32 - 1))
_WEIGHT_DECAY = Param(
    "weight_decay", "float", 1e-5, "L2 penalty of the optimizer (PyOD's optimizer_params).", number(0.0, 1.0)
)

_AE_PARAMS = (
    Param(
        "hidden_neuron_list",
        "list[int]",
        [64, 32],
        "Encoder layer sizes; the decoder mirrors them: [F, 64, 32, 32, 64, F].",
        layer_sizes(1),
    ),
    _activation("hidden_activation_name", "relu", "the hidden layers"),
    Param("batch_norm", "bool", True, "Batch normalization after each hidden layer.", boolean),
    *_common(("epoch_num", 10), ("lr", 1e-3), ("optimizer_name", _DL_OPTIMIZERS)),
    _WEIGHT_DECAY,
    _SEED_42,
)

_VAE_PARAMS = (
    Param("encoder_neuron_list", "list[int]", [128, 64, 32], "Encoder layer sizes.", layer_sizes(1)),
    Param("decoder_neuron_list", "list[int]", [32, 64, 128], "Decoder layer sizes.", layer_sizes(0)),
    Param("latent_dim", "int", 2, "Latent dimensions, >= 1.", integer(1, _MAX_WIDTH)),
    _activation("hidden_activation_name", "relu", "the hidden layers"),
    _activation("output_activation_name", "identity", "the output layer"),
    Param("batch_norm", "bool", False, "Batch normalization after each hidden layer.", boolean),
    Param("beta", "float", 1.0, "Weight of the KL term (beta-VAE), >= 0.", number(0.0, 1e6)),
    Param("capacity", "float", 0.0, "Cap on the KL term (loss bottleneck), >= 0.", number(0.0, 1e6)),
    Param(
        "logvar_clip",
        "[float, float] | null",
        [-30.0, 20.0],
        "Bounds of the latent log-variance in training; null: no clipping.",
        _logvar_clip,
    ),
    *_common(("epoch_num", 30), ("lr", 1e-3), ("optimizer_name", _DL_OPTIMIZERS)),
    _WEIGHT_DECAY,
    _SEED_42,
)

_SVDD_PARAMS = (
    Param(
        "hidden_neurons",
        "list[int]",
        [64, 32],
        "Layer sizes, the last one the embedding (at least two); with use_ae the decoder mirrors them.",
        layer_sizes(2),
    ),
    Param(
        "use_ae",
        "bool",
        False,
        "AutoEncoder variant: the center lives in the reconstruction space (needs min(hidden_neurons) <= "
        "features). Its scores can sit so close to 0 that PyOD's own float32 rounding exceeds the 1e-5 export "
        "check (seen with tiny networks); typical fits measured 2-4e-6.",
        boolean,
    ),
    _activation("hidden_activation", "relu", "the hidden layers"),
    _activation("output_activation", "sigmoid", "the reconstruction layer (use_ae only)"),
    *_common(("epochs", 100), ("learning_rate", 1e-4), ("optimizer", _SVDD_OPTIMIZERS)),
    Param("l2_regularizer", "float", 0.5e-6, "Weight decay of the optimizer, in [0, 1].", number(0.0, 1.0)),
    Param(
        "random_state",
        "int | null",
        None,
        "Seed of torch and numpy for the fit; null draws fresh ones.",
        integer(0, 2**32 - 1, none_ok=True),
    ),
)


def _build_auto_encoder(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.auto_encoder import AutoEncoder

    p = dict(p)
    return AutoEncoder(
        contamination=contamination,
        device="cpu",
        verbose=0,
        optimizer_params={"weight_decay": p.pop("weight_decay")},
        **p,
    )


def _build_vae(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.vae import VAE

    p = dict(p)
    clip = p.pop("logvar_clip")
    return VAE(
        contamination=contamination,
        device="cpu",
        verbose=0,
        optimizer_params={"weight_decay": p.pop("weight_decay")},
        logvar_clip=None if clip is None else tuple(clip),
        **p,
    )


def standardized(det: Any, X: np.ndarray) -> np.ndarray:
    """The float32 rows PyOD's AutoEncoder/VAE feed their network: (X - mean) / (std + eps) in float64."""
    X = np.asarray(X, dtype=np.float64)
    if det.preprocessing:
        X = (X - det.X_mean) / (det.X_std + TORCH_DATASET_EPS)
    return X.astype(np.float32)


def vae_mean_score(det: Any, X: np.ndarray) -> np.ndarray:
    """The VAE's reconstruction error through the latent mean: ||x - decode(mu(x))||, x standardized.

    PyOD's VAE.decision_function decodes a *sampled* z = mu + eps * sigma (reparameterize draws eps even in
    eval mode), so its scores are random: two calls differ, and no graph can match them. The platform scores
    with the deterministic mean path instead (eps = 0), same standardization, network and distance as PyOD,
    all rows in one pass; this is the native reference the export is checked against.
    """
    import torch
    from pyod.utils.stat_models import pairwise_distances_no_broadcast

    x = standardized(det, X)
    det.model.eval()
    with torch.no_grad():
        t = torch.from_numpy(x)
        mu, _ = det.model.encode(t)
        recon = det.model.decode(mu).numpy()
    return np.asarray(pairwise_distances_no_broadcast(x, recon), dtype=np.float64)


class DeepSVDDDetector:
    """PyOD's DeepSVDD, constructed at fit time: PyOD wants the feature count in its constructor.

    Fits seeded (torch RNG forked, numpy's global state restored afterwards) when random_state is set;
    `detector_` is the fitted pyod.models.deep_svdd.DeepSVDD.
    """

    def __init__(self, contamination: float, **params: Any):
        self.contamination = contamination
        self.params = params

    def fit(self, X: np.ndarray, y: Any = None) -> DeepSVDDDetector:
        import torch
        from pyod.models.deep_svdd import DeepSVDD

        p = dict(self.params)
        seed = p["random_state"]
        np_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    np.random.seed(seed)  # DeepSVDD shuffles with numpy's global RNG
                det = DeepSVDD(
                    n_features=np.shape(X)[1],
                    contamination=self.contamination,
                    verbose=0,
                    **p,
                )  # seeds torch itself when random_state is set
                det.fit(X)
        finally:
            np.random.set_state(np_state)
        self.detector_ = det
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.detector_.decision_function(X)


def _build_deep_svdd(p: dict[str, Any], contamination: float) -> Any:
    return DeepSVDDDetector(contamination, **p)


# AutoEncoder, VAE: PyOD's BaseDeepLearningDetector drops the last partial batch (drop_last=True).
_PYOD_DL_EPOCHS = batch_epochs("epoch_num", drop_last=True)


ALGORITHMS = [
    Algorithm(
        name="auto_encoder",
        implementation="pyod.models.auto_encoder.AutoEncoder",
        description="AutoEncoder (torch): rows the network reconstructs badly are anomalous; "
        "score = Euclidean reconstruction error of the standardized row.",
        params=_AE_PARAMS,
        build=_build_auto_encoder,
        score=pyod_score,
        export_note="torch.onnx export of standardize (float64) + eval-mode network + Euclidean error (float32).",
        exact_explanation=True,
        epochs=_PYOD_DL_EPOCHS,
    ),
    Algorithm(
        name="vae",
        implementation="pyod.models.vae.VAE",
        description="Variational AutoEncoder (torch): score = reconstruction error through the latent mean "
        "(deterministic; PyOD's decision_function samples the latent and is random).",
        params=_VAE_PARAMS,
        build=_build_vae,
        score=vae_mean_score,
        export_note="torch.onnx export of standardize + encoder -> latent mean -> decoder + Euclidean error; "
        "the score is the mean-path reconstruction error, not PyOD's sampled decision_function.",
        exact_explanation=True,
        epochs=_PYOD_DL_EPOCHS,
    ),
    Algorithm(
        name="deep_svdd",
        implementation="pyod.models.deep_svdd.DeepSVDD",
        description="Deep SVDD (torch): a network maps normal rows close to a center; "
        "score = squared distance of the embedding to the center.",
        params=_SVDD_PARAMS,
        build=_build_deep_svdd,
        score=pyod_score,
        export_note="torch.onnx export of standardize (float64) + eval-mode network + squared distance to c.",
        epochs=batch_epochs("epochs"),
    ),
]
