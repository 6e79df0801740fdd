"""PyOD's other torch detectors: AE-1SVM, LUNAR (kNN distances into a network) and DevNet (learns from labels).

What each decision_function computes (pyod 3.6.7), and so what is served:
- AE1SVM: the autoencoder's reconstruction error ||z - decoder(encoder(z))|| of the standardized row z, exactly
  as AutoEncoder's. The random-Fourier-feature layer and the one-class SVM weights shape the training loss only;
  scoring never reads them. Standardization: (x - mean) / (std + 1e-8) with a std of 0 replaced by 1e-6.
  PyOD's AE1SVM takes no seed (initialization and shuffling draw from torch's global RNG), nor does its `nu`
  do anything (stored, never read): neither is offered.
- LUNAR: the row rounded to float32, scaled by the scaler fitted on the training split (float32 arithmetic), its
  distances to the n_neighbours nearest points of the reference set (the scaled training split plus the negative
  samples drawn at fit), sorted and rounded to float32, into the eval-mode network (WEIGHT: softmax weights times
  the distances, then a batch norm on running statistics; SCORE: an MLP ending in a sigmoid). Nothing is
  excluded: a training row in the reference set is its own nearest neighbour at distance 0, in fit's
  decision_scores_ and in decision_function alike, so a row's score is a fixed function of the row. Negative
  samples are drawn at fit only. The neighbour search is built with algorithm="ball_tree" (as the platform's
  KNN): exact distances; "auto" would search by brute force above 15 features with the GEMM expansion.
- DevNet: the network's output on the row rounded to float32 (no preprocessing). It learns from 0/1 labels
  (needs_labels). PyOD 3.6.7 ignores its own `random_seed` (the fit draws from torch's global RNG); the platform
  fits inside a forked torch RNG seeded with it, so that it means what PyOD documents. `nb_batch`,
  `known_outliers`, `cont_rate` and `data_format` are stored and never read by PyOD 3.6.7: not offered.
  PyOD's fit does not learn from the labels: it calls deviation_loss(outputs, labels) against the signature
  (y_true, y_pred), and the [B, 1] outputs broadcast against the [B] labels into a [B, B] loss, so every output
  gets the same gradient whatever its label. Its scores rank the labelled anomalies by chance: ROC-AUC 0.004 on
  breastw's training rows, 0.002 on wbc, 0.05 on cardio (5 epochs, measured; still so in PyOD's main branch).
  The platform trains PyOD's own network, optimizer, data set and deviation loss, with the loss given
  (labels, outputs) in that order and shape: 0.996, 0.997 and 0.996 on the same rows (PyOD's 50 epochs).

The reference of LUNAR and DevNet is their network in float64 (`lunar_score`, `devnet_score`): PyOD's own fitted
scaler, neighbour search and weights, on the same float32-rounded inputs, with the layers computed in float64
instead of float32. Their scores cross 0 (WEIGHT's batch norm centres them; DevNet's last layer is linear), and
near 0 PyOD's float32 scores are not a function of the row at the export check's precision: torch rounds a row
differently by batch size (a row alone vs in its batch moved PyOD's own LUNAR scores by 1.3e-5 relative, DevNet's
linear network by 2e-5, measured), more than the 1e-5 tolerance. The float64 network is a fixed function of the
row; it differs from PyOD's float32 scores by PyOD's own rounding (at most ~1e-7 of the largest score, measured).
AE1SVM's scores are distances, away from 0: it is checked against PyOD's float32 scores, as AutoEncoder is.

All three train on the CPU. pyod and torch are imported inside build/fit only.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import Algorithm, Param, batch_epochs, boolean, integer, literal, number, pyod_score
from pynomaly.algorithms.deep import _activation, layer_sizes
from pynomaly.algorithms.neighbors import _METRIC, _P

_SEED = Param("random_state", "int | null", None, "Seed of the fit (torch, the validation split, the negative "
              "samples); null draws fresh ones.", integer(0, 2**32 - 1, none_ok=True))

_AE1SVM_PARAMS = (
    Param("hidden_neurons", "list[int]", [64, 32],
          "Encoder layer sizes before the 32-wide code; the decoder mirrors them.", layer_sizes(1)),
    _activation("hidden_activation", "relu", "the hidden layers (and the reconstruction)"),
    Param("batch_norm", "bool", True, "Batch normalization after each hidden layer.", boolean),
    Param("learning_rate", "float", 1e-3, "Adam's learning rate, in (0, 10].", number(0.0, 10.0, lo_open=True)),
    Param("epochs", "int", 50, "Training epochs, >= 1.", integer(1, 100_000)),
    Param("batch_size", "int", 32, "Rows per gradient step, >= 1.", integer(1, 1_000_000)),
    Param("dropout_rate", "float", 0.2, "Dropout probability in training, in [0, 1).",
          number(0.0, 1.0, hi_open=True)),
    Param("weight_decay", "float", 1e-5, "L2 penalty of the optimizer, in [0, 1].", number(0.0, 1.0)),
    Param("preprocessing", "bool", True, "Standardize features with the training mean and std.", boolean),
    Param("alpha", "float", 1.0, "Weight of the reconstruction loss against the SVM loss, >= 0.",
          number(0.0, 1e6)),
    Param("sigma", "float", 1.0, "Scale of the random Fourier features' weights, > 0.",
          number(0.0, 1e6, lo_open=True)),
    Param("kernel_approx_features", "int", 1000, "Random Fourier features approximating the SVM's kernel, >= 1.",
          integer(1, 100_000)),
)

_LUNAR_PARAMS = (
    Param("model_type", "'WEIGHT' | 'SCORE'", "WEIGHT", "WEIGHT: the network weighs the k distances; SCORE: it "
          "outputs the score itself.", literal("WEIGHT", "SCORE")),
    Param("n_neighbours", "int", 5, "Neighbours per row, >= 1 (and at most the reference points).",
          integer(1, 10_000)),
    Param("negative_sampling", "'MIXED' | 'UNIFORM' | 'SUBSPACE'", "MIXED",
          "Negative samples drawn at fit: uniform in the data's range, perturbed rows, or both.",
          literal("MIXED", "UNIFORM", "SUBSPACE")),
    Param("val_size", "float", 0.1, "Share of the rows held out to pick the best epoch, in (0, 1).",
          number(0.0, 1.0, lo_open=True, hi_open=True)),
    Param("scaler", "'minmax' | 'standard' | 'none'", "minmax", "Scaling fitted on the training split: "
          "MinMaxScaler (PyOD's default), StandardScaler, or none (PyOD's scaler=False).",
          literal("minmax", "standard", "none")),
    Param("epsilon", "float", 0.1, "Noise scale of the subspace negative samples, >= 0.", number(0.0, 1e6)),
    Param("proportion", "float", 1.0, "Negative samples per training row, in (0, 100].",
          number(0.0, 100.0, lo_open=True)),
    Param("n_epochs", "int", 200, "Training epochs (full batch), >= 1.", integer(1, 100_000)),
    Param("lr", "float", 1e-3, "Adam's learning rate, in (0, 10].", number(0.0, 10.0, lo_open=True)),
    Param("wd", "float", 0.1, "Adam's weight decay, in [0, 10].", number(0.0, 10.0)),
    Param("leaf_size", "int", 30, "Leaf size of the ball tree (speed only), >= 1.", integer(1, 1_000_000)),
    _METRIC,
    _P,
    _SEED,
)


def _depth(v: Any) -> Any:
    if isinstance(v, bool) or integer()(v) not in (1, 2, 4):
        raise ValueError("must be 1 (linear), 2 (one hidden layer of 1000) or 4 (1000, 250, 20)")
    return int(v)


_DEVNET_PARAMS = (
    Param("network_depth", "int", 2, "1: linear; 2: one hidden layer of 1000; 4: hidden layers 1000, 250, 20.",
          _depth),
    Param("batch_size", "int", 512, "Rows per gradient step, >= 1.", integer(1, 1_000_000)),
    Param("epochs", "int", 50, "Training epochs, >= 1.", integer(1, 100_000)),
    Param("random_seed", "int", 42, "Seed of torch for the fit (initialization, shuffling, the loss's reference "
          "draws).", integer(0, 2**32 - 1)),
)


def _build_ae1svm(p: dict[str, Any], contamination: float) -> Any:
    import torch
    from pyod.models.ae1svm import AE1SVM

    det = AE1SVM(contamination=contamination, **p)
    det.device = torch.device("cpu")  # PyOD picks CUDA when it is there: its float32 kernels round differently
    return det


def _build_lunar(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.lunar import LUNAR
    from sklearn.preprocessing import StandardScaler

    p = dict(p)
    scaler = {"minmax": None, "standard": StandardScaler(), "none": False}[p.pop("scaler")]
    det = LUNAR(contamination=contamination, scaler=scaler, verbose=0, n_jobs=1, algorithm="ball_tree", **p)
    det.device = "cpu"
    det.network = det.network.cpu()
    return det


def _float64(module: Any) -> Any:
    """An eval-mode float64 CPU copy of a fitted torch module (the detector's own is left as it was)."""
    return copy.deepcopy(module).cpu().double().eval()


def lunar_distances(det: Any, X: np.ndarray) -> np.ndarray:
    """The network's input for rows X: their sorted distances to the n_neighbours nearest reference points, as
    PyOD scales and searches them, recomputed exactly (sqrt(sum((x - t)^2)), as the ball tree computes them;
    sklearn's brute force would round them through the GEMM expansion), rounded to float32 as PyOD does."""
    x = np.asarray(X, np.float64).astype(np.float32)
    if det.scaler_ is not None:
        x = det.scaler_.transform(x)
    _, idx = det.neigh.kneighbors(x, det.n_neighbours)
    points = np.asarray(det.neigh._fit_X, np.float64)
    dist = np.sqrt(np.sum((np.asarray(x, np.float64)[:, None, :] - points[idx]) ** 2, axis=2))
    return np.sort(dist, axis=1).astype(np.float32)


def lunar_score(det: Any, X: np.ndarray) -> np.ndarray:
    """LUNAR's network in float64 on `lunar_distances` (see the module docstring)."""
    import torch

    with torch.no_grad():
        out = _float64(det.network)(torch.from_numpy(lunar_distances(det, X).astype(np.float64)))
    return np.asarray(out.numpy(), np.float64)


def devnet_score(det: Any, X: np.ndarray) -> np.ndarray:
    """DevNet's network in float64 on the rows rounded to float32 (see the module docstring); `det` is the
    registry's DevNetDetector or PyOD's DevNet."""
    import torch

    model = getattr(det, "detector_", det).model
    x = torch.from_numpy(np.asarray(X, np.float64).astype(np.float32).astype(np.float64))
    with torch.no_grad():
        return np.asarray(_float64(model)(x).reshape(-1).numpy(), np.float64)


class DevNetDetector:
    """PyOD's DevNet, trained with its deviation loss applied to the labels (see the module docstring), inside a
    forked torch RNG seeded with `random_seed` (PyOD 3.6.7 reads it nowhere); `detector_` is the fitted
    pyod.models.devnet.DevNet."""

    def __init__(self, contamination: float, **params: Any):
        self.contamination = contamination
        self.params = params

    def fit(self, X: np.ndarray, y: np.ndarray) -> DevNetDetector:
        import torch
        from pyod.models import devnet

        X, y = np.asarray(X, np.float64), np.asarray(y)
        det = devnet.DevNet(contamination=self.contamination, device="cpu", **self.params)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.params["random_seed"])
            # PyOD's fit, the loss's arguments put right: its network, optimizer, data set and loader.
            det.model, optimizer = devnet.deviation_network(X.shape[1], det.network_depth)
            rows = devnet.SupDataset(X, np.flatnonzero(y == 1), np.flatnonzero(y == 0), None)
            det.model.train()
            for _ in range(det.epochs):
                for batch, labels in torch.utils.data.DataLoader(rows, batch_size=det.batch_size, shuffle=True):
                    optimizer.zero_grad()
                    outputs = det.model(batch.to(torch.float32)).reshape(-1)
                    devnet.deviation_loss(labels.to(torch.float32), outputs).backward()
                    optimizer.step()
            with warnings.catch_warnings():  # PyOD's scoring copies its tensor with torch.tensor(): torch warns
                warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
                det.decision_scores_ = det.decision_function(X)
            det._process_decision_scores()
        self.detector_ = det
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.detector_.decision_function(X)


def _build_devnet(p: dict[str, Any], contamination: float) -> Any:
    return DevNetDetector(contamination, **p)


ALGORITHMS = [
    Algorithm(
        name="ae1svm",
        implementation="pyod.models.ae1svm.AE1SVM",
        description="AE-1SVM (torch): an autoencoder trained jointly with a one-class SVM on random Fourier "
        "features of its code; score = Euclidean reconstruction error of the standardized row.",
        params=_AE1SVM_PARAMS,
        build=_build_ae1svm,
        score=pyod_score,
        export_note="torch.onnx export of standardize (float64) + eval-mode encoder and decoder + Euclidean error, "
        "as PyOD's decision_function (the SVM head is not part of the score); float32 network, ~1e-7 relative.",
        exact_explanation=True,
        epochs=batch_epochs("epochs"),
    ),
    Algorithm(
        name="lunar",
        implementation="pyod.models.lunar.LUNAR",
        description="LUNAR (torch): a network learns from each row's sorted distances to its nearest "
        "neighbours (and negative samples drawn at fit) how anomalous it is.",
        params=_LUNAR_PARAMS,
        build=_build_lunar,
        score=lunar_score,
        export_note="The row rounded to float32 and scaled in float32 as sklearn does; its k nearest reference "
        "points (training split + negative samples, constants) by one float64 MatMul in blocks of 32 rows, their "
        "distances recomputed exactly, sorted and rounded to float32; the eval-mode network in float64. The "
        "reference is that network in torch (float64): PyOD's float32 scores, which near 0 move with the batch, "
        "differ from it by their own rounding (~1e-7 of the largest score).",
        epochs=lambda p, rows: (p["n_epochs"], 1),  # full batch: one step an epoch
    ),
    Algorithm(
        name="devnet",
        implementation="pyod.models.devnet.DevNet",
        description="DevNet (torch): a deviation network trained on labelled anomalies to score them several "
        "standard deviations above a Gaussian reference; score = the network's output. PyOD's network, "
        "optimizer and loss, with the loss given the labels: PyOD 3.6.7's fit swaps its arguments and learns "
        "nothing from them.",
        params=_DEVNET_PARAMS,
        build=_build_devnet,
        score=devnet_score,
        export_note="The row rounded to float32 (PyOD applies no preprocessing) into the eval-mode network, in "
        "float64. The reference is that network in torch (float64): PyOD's float32 scores, which near 0 move with "
        "the batch, differ from it by their own rounding (~1e-7 of the largest score).",
        needs_labels=True,
        epochs=batch_epochs("epochs"),
    ),
]
