"""PyOD's torch detectors -> ONNX: torch.onnx.export of a wrapper module that computes the whole score.

Each wrapper redoes decision_function (pyod 3.6.7) step by step, in PyOD's dtypes:
- standardize in float64 as PyOD does it in numpy: AutoEncoder/VAE (x - X_mean) / (X_std + 1e-8)
  (base_dl's TorchDataset), DeepSVDD StandardScaler's (x - mean_) / scale_; then round to float32, as PyOD
  does when it builds the tensor. The served graph reads the float64 row there (the wrapper's first op is a Cast
  to double, which export._graph.double_io feeds the row itself), so the network gets the very values PyOD's
  gets. preprocessing=False skips the step: the row, rounded to float32, is what PyOD's tensor holds.
- the eval-mode network in float32 (dropout off, batch norm on running statistics): PyOD's dtype.
- the score: AutoEncoder ||z - net(z)|| (PyOD: numba pairwise_distances_no_broadcast on the float32 arrays),
  VAE the same through the latent mean (pynomaly.algorithms.deep.vae_mean_score: PyOD's VAE samples the
  latent), DeepSVDD sum((net(z) - c)^2). The differences are taken in float32 like PyOD's; the squares and
  their row sum in float64, served as float64 (the wrapper's final Cast to float is dropped by double_io).
What is left is the order of float32 sums in torch's and onnxruntime's matrix products: 2-4e-7 relative at the
defaults. Where scores sit near 0 (DeepSVDD with use_ae, outputs collapsing onto c) PyOD's own float32
rounding is larger than 1e-5 relative (4e-5..1.5e-4 measured) and no graph can follow it.
A float64 copy of the network was tried: no closer to PyOD (its own float32 rounding is the error left) and
about 2x slower in onnxruntime (10k rows: VAE 41 vs 18 ms, AutoEncoder 16 vs 8 ms).

Batch invariance: every op is per row, but onnxruntime's float32 ReduceSum orders its sum by the batch shape
(a lone row differed from the same row in a batch by 1e-7 relative, 70 rows of 576). A float32 square is exact
in float64, so the row sum is taken in float64, where the order moves it by ~1e-16 relative: a row's float32
score is the same bits alone and in any batch (short of a float32 rounding tie that close), its float64 score
the same to float64 rounding (the tests check both for every detector).
torch is imported inside the converters only (registering them must not import it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx


@cache
def _wrappers() -> SimpleNamespace:
    """The wrapper modules (defined on first use, so that this module imports no torch)."""
    import torch
    from torch import nn

    class Standardize(nn.Module):
        """float32 x -> float32((float64(x) - mean) / scale), or x itself when there is no preprocessing."""

        def __init__(self, mean: np.ndarray | None, scale: np.ndarray | None):
            super().__init__()
            self.identity = mean is None
            if not self.identity:
                self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float64)))
                self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float64)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.identity:
                return x
            mean, scale = self.get_buffer("mean"), self.get_buffer("scale")
            return ((x.to(torch.float64) - mean) / scale).to(torch.float32)

    def sum_of_squares(d: torch.Tensor) -> torch.Tensor:
        """Row sums of d^2 in float64 (see the module docstring: batch invariance)."""
        return torch.sum(torch.square(d.to(torch.float64)), dim=1)

    class ReconstructionError(nn.Module):
        """||z - reconstruct(z)|| over the standardized row z (AutoEncoder; VAE through its latent mean), and
        per feature d_j^2 / ||d||: the feature's share of the error, terms that sum to the score exactly."""

        def __init__(self, standardize: nn.Module, reconstruct: Callable[[torch.Tensor], torch.Tensor]):
            super().__init__()
            self.standardize = standardize
            self.reconstruct = reconstruct

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.standardize(x)
            squares = torch.square((self.reconstruct(z) - z).to(torch.float64))
            score = torch.sqrt(torch.sum(squares, dim=1))
            # A row reconstructed exactly has d = 0: every term 0, not 0/0.
            terms = squares / torch.clamp(score, min=1e-300).unsqueeze(1)
            return score.to(torch.float32), terms.to(torch.float32)

    class VAEMean(nn.Module):
        """decode(mu(z)): PyOD's VAE forward with the latent noise set to zero."""

        def __init__(self, vae: Any):  # PyOD's VAE module: encoder, encoder_mu, decode
            super().__init__()
            self.vae = vae

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.vae.decode(self.vae.encoder_mu(self.vae.encoder(z)))

    class CenterDistance(nn.Module):
        """sum((net(z) - c)^2) over the standardized row z (DeepSVDD)."""

        def __init__(self, standardize: nn.Module, net: nn.Module, center: torch.Tensor):
            super().__init__()
            self.standardize = standardize
            self.net = net
            self.register_buffer("center", center.detach().cpu().to(torch.float32).clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return sum_of_squares(self.net(self.standardize(x)) - self.center).to(torch.float32)

    return SimpleNamespace(
        Standardize=Standardize,
        ReconstructionError=ReconstructionError,
        VAEMean=VAEMean,
        CenterDistance=CenterDistance,
    )


def _network(module: Any) -> Any:
    """An eval-mode float32 CPU copy (the fitted detector's own module is left as it was)."""
    return copy.deepcopy(module).cpu().float().eval()


def _export(score: Any, n_features: int, graph_name: str, contributions: bool = False) -> onnx.ModelProto:
    from pynomaly.export.torch_module import to_onnx_model

    return to_onnx_model(score.eval(), n_features, graph_name, contributions)


def _check_dl(det: Any, n_features: int) -> None:
    if getattr(det, "decision_scores_", None) is None or getattr(det, "model", None) is None:
        raise ValueError(f"{type(det).__name__} is not fitted")
    if det.feature_size != n_features:
        raise ValueError(f"n_features={n_features} but {type(det).__name__} was fitted on {det.feature_size}")


def _dl_standardize(det: Any) -> Any:
    from pynomaly.algorithms.deep import TORCH_DATASET_EPS

    if not det.preprocessing:
        return _wrappers().Standardize(None, None)
    return _wrappers().Standardize(det.X_mean, np.asarray(det.X_std, np.float64) + TORCH_DATASET_EPS)


def auto_encoder_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    _check_dl(det, n_features)
    score = _wrappers().ReconstructionError(_dl_standardize(det), _network(det.model))
    return _export(score, n_features, "auto_encoder", contributions=True)


def vae_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    _check_dl(det, n_features)
    w = _wrappers()
    score = w.ReconstructionError(_dl_standardize(det), w.VAEMean(_network(det.model)))
    return _export(score, n_features, "vae_mean", contributions=True)


def deep_svdd_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    if getattr(det, "model_", None) is None or getattr(det, "c_", None) is None:
        raise ValueError("DeepSVDD is not fitted")
    if det.n_features_ != n_features:
        raise ValueError(f"n_features={n_features} but DeepSVDD was fitted on {det.n_features_}")
    w = _wrappers()
    if det.preprocessing:
        standardize = w.Standardize(det.scaler_.mean_, det.scaler_.scale_)
    else:
        standardize = w.Standardize(None, None)
    return _export(w.CenterDistance(standardize, _network(det.model_), det.c_), n_features, "deep_svdd")


def deep_svdd_detector_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    if getattr(det, "detector_", None) is None:
        raise ValueError("DeepSVDD is not fitted")
    return deep_svdd_to_onnx(det.detector_, n_features)


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.auto_encoder.AutoEncoder": auto_encoder_to_onnx,
    "pyod.models.vae.VAE": vae_to_onnx,
    "pyod.models.deep_svdd.DeepSVDD": deep_svdd_to_onnx,
    # pynomaly's "deep_svdd" builds PyOD's DeepSVDD at fit time (it needs the feature count): see algorithms.deep.
    "pynomaly.algorithms.deep.DeepSVDDDetector": deep_svdd_detector_to_onnx,
}
