"""PyOD's adversarial detectors (torch): SO_GAAL, MO_GAAL, ALAD and AnoGAN.

All train on the CPU (device "cpu"; MO_GAAL picks CUDA when it can, so build sets its device after construction).
None of them takes a seed in PyOD: their fits draw from torch's (and ALAD's from numpy's) global generators.
SO_GAAL and MO_GAAL print a line per epoch to stdout: PyOD has no switch for it.

pyod.models.so_gaal_new holds a second SO_GAAL class (on BaseDeepLearningDetector). It is not served: PyOD
documents, exports and tests only pyod.models.so_gaal.SO_GAAL (its docs, README, examples and model selector),
which is what `from pyod.models.so_gaal import SO_GAAL` gives; the other is an unreferenced draft whose
generator step trains on D(noise) rather than D(G(noise)), so its generator never learns.

How each scores (and so what the graphs compute): see pynomaly.export.gan. The native references below are
PyOD's own decision_function run in float64 (its modules copied to float64, eval mode, on the float32-rounded
rows PyOD feeds them): PyOD computes in float32, and no graph can follow its rounding (pynomaly.export.gan says
how far it goes). ALAD's is also the only one that is not PyOD's scores up to rounding: PyOD scores ALAD with
dropout on (its modules are never put in eval mode), so at random; `alad_score` is the eval-mode score.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import Algorithm, Check, Param, boolean, integer, literal, number
from pynomaly.algorithms.deep import layer_sizes

# pyod.utils.torch_utility.get_activation_by_name (AnoGAN)
_TORCH_ACTIVATIONS = ("elu", "identity", "leaky_relu", "relu", "sigmoid", "softmax", "softplus", "tanh")
# ALAD's own get_activation
_ALAD_ACTIVATIONS = ("relu", "sigmoid", "tanh")


def _rate(name: str, default: float, what: str) -> Param:
    return Param(name, "float", default, f"{what}, in (0, 10].", number(0.0, 10.0, lo_open=True))


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


_GAAL_COMMON = (
    Param("stop_epochs", "int", 20, "Epochs the generator(s) train; the discriminator trains 3x as many.",
          integer(1, 100_000)),
    _rate("lr_d", 0.01, "Learning rate of the discriminator"),
    _rate("lr_g", 0.0001, "Learning rate of the generator(s)"),
    Param("momentum", "float", 0.9, "Momentum of the SGD optimizers, in [0, 1].", number(0.0, 1.0)),
)
_DROPOUT = Param("dropout_rate", "float", 0.2, "Dropout probability in training, in [0, 1).",
                 number(0.0, 1.0, hi_open=True))
_PREPROCESSING = Param("preprocessing", "bool", False, "Standardize features (StandardScaler on the training data).",
                       boolean)
_BATCH = Param("batch_size", "int", 32, "Rows per gradient step, >= 1.", integer(1, 1_000_000))

_ALAD_PARAMS = (
    Param("activation_hidden_gen", "str", "tanh", "Activation of the encoder's and decoder's hidden layers.",
          literal(*_ALAD_ACTIVATIONS)),
    Param("activation_hidden_disc", "str", "tanh", "Activation of the discriminators' hidden layers.",
          literal(*_ALAD_ACTIVATIONS)),
    Param("output_activation", "str | null", None, "Activation of the encoder's and decoder's outputs; null: none.",
          literal(None, *_ALAD_ACTIVATIONS)),
    _DROPOUT,
    Param("latent_dim", "int", 2, "Latent dimensions, >= 1.", integer(1, 4096)),
    Param("dec_layers", "list[int]", [5, 10, 25], "Decoder hidden layer sizes.", layer_sizes(0)),
    Param("enc_layers", "list[int]", [25, 10, 5], "Encoder hidden layer sizes.", layer_sizes(0)),
    Param("disc_xx_layers", "list[int]", [25, 10, 5], "Hidden layer sizes of the (x, x) discriminator, which scores.",
          layer_sizes(0)),
    Param("disc_zz_layers", "list[int]", [25, 10, 5], "Hidden layer sizes of the (z, z) discriminator.",
          layer_sizes(0)),
    Param("disc_xz_layers", "list[int]", [25, 10, 5], "Hidden layer sizes of the (x, z) discriminator.",
          layer_sizes(0)),
    _rate("learning_rate_gen", 0.0001, "Learning rate of the encoder and decoder"),
    _rate("learning_rate_disc", 0.0001, "Learning rate of the discriminators"),
    Param("add_recon_loss", "bool", False, "Add the reconstruction error to the generator's loss.", boolean),
    Param("lambda_recon_loss", "float", 0.1, "Weight of the reconstruction loss, >= 0.", number(0.0, 1e6)),
    Param("epochs", "int", 200, "Training steps (one batch each), >= 1.", integer(1, 1_000_000)),
    _PREPROCESSING,
    Param("add_disc_zz_loss", "bool", True, "Train with the (z, z) discriminator's loss.", boolean),
    Param("spectral_normalization", "bool", False, "Spectral normalization of the discriminators' layers.", boolean),
    _BATCH,
)

_ANOGAN_PARAMS = (
    Param("activation_hidden", "str", "tanh", "Activation of the hidden layers.", literal(*_TORCH_ACTIVATIONS)),
    _DROPOUT,
    Param("latent_dim_G", "int", 2, "Dimensions of the generator's latent space, >= 1.", integer(1, 4096)),
    Param("G_layers", "list[int]", [20, 10, 3, 10, 20], "Generator hidden layer sizes.", layer_sizes(1)),
    Param("D_layers", "list[int]", [20, 10, 5], "Discriminator hidden layer sizes.", layer_sizes(1)),
    Param("epochs", "int", 500, "Training epochs, >= 1.", integer(1, 100_000)),
    _PREPROCESSING,
    _rate("learning_rate", 0.001, "Learning rate of the generator and discriminator"),
    _rate("learning_rate_query", 0.01, "Learning rate of the latent search on the training rows"),
    Param("epochs_query", "int", 20, "Latent-search steps per training row in the fit, >= 1.", integer(1, 100_000)),
    _BATCH,
    Param("output_activation", "str | null", None, "Activation of the generator's output; null: none.",
          literal(None, *_TORCH_ACTIVATIONS)),
)


def _build_so_gaal(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.so_gaal import SO_GAAL

    return SO_GAAL(contamination=contamination, **p)


def _build_mo_gaal(p: dict[str, Any], contamination: float) -> Any:
    import torch
    from pyod.models.mo_gaal import MO_GAAL

    det = MO_GAAL(contamination=contamination, **p)
    det.device = torch.device("cpu")
    return det


def _build_alad(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.alad import ALAD

    return ALAD(contamination=contamination, device="cpu", verbose=0, **p)


def _build_anogan(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.anogan import AnoGAN

    return AnoGAN(contamination=contamination, device="cpu", verbose=0, **p)


def eval64(module: Any) -> Any:
    """A float64 eval-mode CPU copy of `module`, run once on a zero row, so that a spectrally normalized layer's
    `weight` is the eval-mode one (weight_orig over the sigma of its stored vectors)."""
    import torch

    # A spectral-norm layer keeps its last training-mode `weight`, a non-leaf tensor deepcopy refuses: copy it
    # detached (the forward below recomputes it).
    memo = {id(m.weight): m.weight.detach().clone() for m in module.modules()
            if hasattr(m, "weight_orig") and isinstance(getattr(m, "weight", None), torch.Tensor)}
    copied = copy.deepcopy(module, memo).cpu().double().eval()
    first = next(m for m in copied.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        copied(torch.zeros(1, first.in_features, dtype=torch.float64))
    return copied


def _rows32(det: Any, X: np.ndarray) -> np.ndarray:
    """The rows as PyOD's float32 tensor holds them (standardized in float64 first with preprocessing), in float64."""
    X = np.asarray(X, dtype=np.float64)
    if getattr(det, "preprocessing", False):
        X = det.scaler_.transform(X)
    return X.astype(np.float32).astype(np.float64)


_GAAL_SATURATED = (
    "a discriminator that has saturated, refused at export saying so: over 5 % of the training rows scored below "
    "float32's smallest normal number (PyOD's own scores 0.0), so they tie and no threshold exists among them "
    "(ADBench satellite with 2 epochs: every row)."
)


def gaal_score(det: Any, X: np.ndarray) -> np.ndarray:
    """SO_GAAL's and MO_GAAL's decision_function, the discriminator's output, computed in float64."""
    import torch

    with torch.no_grad():
        return np.asarray(eval64(det.discriminator)(torch.from_numpy(_rows32(det, X))).numpy().ravel())


def alad_eval_modules(det: Any) -> tuple[Any, Any, Any]:
    """Float64 eval-mode copies of ALAD's encoder, decoder and (x, x) discriminator."""
    return eval64(det.enc), eval64(det.dec), eval64(det.disc_xx)


def alad_score(det: Any, X: np.ndarray) -> np.ndarray:
    """ALAD's get_outlier_scores in eval mode, computed in float64: (D_xx(x, x) - D_xx(x, dec(enc(x))))^2."""
    import torch

    enc, dec, disc_xx = alad_eval_modules(det)
    with torch.no_grad():
        x = torch.from_numpy(_rows32(det, X))
        d = disc_xx(torch.cat((x, x), dim=1)) - disc_xx(torch.cat((x, dec(enc(x))), dim=1))
    return np.asarray((d * d).numpy().ravel())


def anogan_constants(det: Any) -> tuple[np.ndarray, float]:
    """(g, D(g)): the sample AnoGAN's decision_function compares every row with, G(z_gamma_layer(0)), and its
    discriminator output, as PyOD computes them (float32, eval mode, a batch of one zero latent)."""
    import torch

    query = copy.deepcopy(det.query_model).cpu().eval()
    with torch.no_grad():
        _, g, d_g = query(torch.zeros((1, det.latent_dim_G)))
    return g.numpy()[0], float(d_g.numpy().ravel()[0])


def anogan_score(det: Any, X: np.ndarray) -> np.ndarray:
    """AnoGAN's decision_function with the discriminator in float64: mean_j |x_j - g_j| + |D(x) - D(g)|, the
    differences x - g in float32 as PyOD takes them."""
    import torch

    g, d_g = anogan_constants(det)
    x = _rows32(det, X)
    gap = np.abs(x.astype(np.float32) - g).astype(np.float64).mean(axis=1)
    with torch.no_grad():
        d_x = eval64(det.discriminator)(torch.from_numpy(x)).numpy().ravel()
    return np.asarray(gap + np.abs(d_x - d_g))


def _build_so_gaal_new(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.so_gaal_new import SO_GAAL

    return SO_GAAL(contamination=contamination, **p)


ALGORITHMS = [
    Algorithm(
        name="so_gaal",
        implementation="pyod.models.so_gaal.SO_GAAL",
        description="Single-Objective Generative Adversarial Active Learning (torch): a generator makes potential "
        "outliers, a discriminator learns the boundary; score = the discriminator's output D(x), as PyOD's "
        "decision_function returns it (the paper's outlier score is 1 - D(x): pyod issue 119, open).",
        params=_GAAL_COMMON,
        build=_build_so_gaal,
        score=gaal_score,
        export_note="Graph of the discriminator, sigmoid(W2 relu(W1 x + b1) + b2), in float64 on the row rounded "
        "to float32 (PyOD's tensor); checked against PyOD's decision_function run in float64. PyOD's own float32 "
        "scores differ from it by their rounding (about 1e-6 relative).",
        export_limit=_GAAL_SATURATED,
    ),
    Algorithm(
        name="mo_gaal",
        implementation="pyod.models.mo_gaal.MO_GAAL",
        description="Multiple-Objective Generative Adversarial Active Learning (torch): k generators make potential "
        "outliers at k quantiles of the discriminator's output; score = the discriminator's output D(x), as "
        "PyOD's decision_function returns it (the paper's outlier score is 1 - D(x): pyod issue 119, open).",
        params=(Param("k", "int", 10, "Number of generators, >= 1.", integer(1, 1000)), *_GAAL_COMMON),
        build=_build_mo_gaal,
        score=gaal_score,
        # After every batch the discriminator scores all training rows (the generators' targets): rows^2 / 500
        # row passes an epoch. ~3 min of CPU at 49k rows (shuttle), ~13 min at 100k.
        max_training_rows=50_000,
        export_note="Graph of the one discriminator (the generators only train it), as for so_gaal: float64 on "
        "the row rounded to float32, checked against PyOD's decision_function run in float64.",
        export_limit=_GAAL_SATURATED,
    ),
    Algorithm(
        name="alad",
        implementation="pyod.models.alad.ALAD",
        description="Adversarially Learned Anomaly Detection (torch): an encoder/decoder trained against three "
        "discriminators; score = (D_xx(x, x) - D_xx(x, dec(enc(x))))^2, with dropout off (eval mode).",
        params=_ALAD_PARAMS,
        build=_build_alad,
        score=alad_score,
        export_note="Graph of standardize + encoder + decoder + the (x, x) discriminator twice, in float64 on the "
        "row rounded to float32, eval mode. PyOD's decision_function runs its modules in training mode (dropout "
        "on, spectral norm iterating): random scores. Served and checked against the eval-mode score computed "
        "in float64 (pynomaly.algorithms.gan.alad_score), PyOD's networks and formula. Without dropout and "
        "spectral norm PyOD's scores are deterministic and differ from it by float32 rounding, up to ~1e-3 "
        "relative on rows scored near 0 (a squared difference of two sigmoid outputs).",
    ),
    Algorithm(
        name="anogan",
        implementation="pyod.models.anogan.AnoGAN",
        description="AnoGAN (torch): a GAN of the training data; score = mean |x - g| + |D(x) - D(g)| for the "
        "generated sample g of the latent the fit's query model ended on (PyOD's decision_function).",
        params=_ANOGAN_PARAMS,
        build=_build_anogan,
        score=anogan_score,
        export_note="PyOD's decision_function optimises no latent per row: it compares every row with one fixed "
        "g = G(z_gamma_layer(0)) and D(g), taken as constants. Graph: standardize + |x - g| (float32, as PyOD) "
        "averaged in float64 + |D(x) - D(g)| with the eval-mode discriminator in float64; checked against PyOD's "
        "decision_function so computed (its own float32 scores differ by their rounding, about 1e-7 relative).",
    ),
    Algorithm(
        name="so_gaal_new",
        implementation="pyod.models.so_gaal_new.SO_GAAL",
        description="PyOD's second SO_GAAL class (pyod.models.so_gaal_new, on BaseDeepLearningDetector): listed so "
        "that every PyOD tabular detector is; train `so_gaal` instead.",
        params=(),
        build=_build_so_gaal_new,
        score=gaal_score,
        exportable=False,
        export_note="Not served: PyOD documents, exports and tests only pyod.models.so_gaal.SO_GAAL (`so_gaal`, "
        "served). pyod.models.so_gaal_new is an unreferenced draft whose generator step trains on D(noise) rather "
        "than D(G(noise)), so its generator never learns and its discriminator is not the detector the paper "
        "describes; serving it exactly would serve that defect.",
    ),
]
