"""AE-1SVM, LUNAR and DevNet -> ONNX (see pynomaly.algorithms.neural for what each decision_function computes).

- AE1SVM: export.deep's reconstruction-error wrapper (standardize in float64, eval-mode float32 network, squares
  and their sum in float64) around encoder -> decoder; the random-Fourier-feature/SVM head is left out, as
  PyOD's decision_function leaves it out. Its per-feature terms are the exact explanation, as AutoEncoder's.
- DevNet: the eval-mode network (torch.onnx) on the row rounded to float32: double_io feeds the float64 row
  through one Cast to float, as PyOD's torch.as_tensor(..., float32) rounds it.
- LUNAR: written here, not exported by torch: the kNN part uses export.neighbors' blocks of rows and exact
  nearest-neighbour search (float64 MatMul, then the k chosen distances recomputed as sqrt(sum((x - t)^2)), as
  the ball tree does), then:
  - before it, the row rounded to float32 and scaled in float32 (sklearn's MinMaxScaler X *= scale_; X += min_,
    StandardScaler X -= mean_; X /= scale_, with float32 constants on float32 data), as PyOD scales X.astype(float32);
  - the k distances sorted ascending and rounded to float32 (PyOD's torch.tensor(dist, float32));
  - the eval-mode network layer by layer in float32 (Linear = MatMul + Add, Tanh, ReLU, LayerNorm, Softmax,
    Sigmoid); WEIGHT's sum(alpha * d) and its final batch norm on running statistics in float64, from the float32
    values (a float32 ReduceSum in onnxruntime orders its sum by the batch shape; see export.deep).
  Left is the order of float32 sums in the matrix products, ~1e-7 relative, as for the other torch networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from .deep import _export, _network, _wrappers
from .neighbors import _check_euclidean, _check_width, _Graph, _nearest, _wrap


def _not_fitted(what: str) -> ValueError:
    return ValueError(f"{what} is not fitted")


# --- AE1SVM ---


def ae1svm_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    from torch import nn

    from pynomaly.algorithms.deep import TORCH_DATASET_EPS

    model = getattr(det, "model", None)
    if getattr(det, "decision_scores_", None) is None or model is None:
        raise _not_fitted("AE1SVM")
    fitted = model.encoder[0].in_features
    if fitted != n_features:
        raise ValueError(f"n_features={n_features} but AE1SVM was fitted on {fitted}")
    w = _wrappers()
    if det.preprocessing:
        # PyOD's fit already replaced a std of 0 by 1e-6; TorchDataset divides by std + 1e-8.
        standardize = w.Standardize(det.mean, np.asarray(det.std, np.float64) + TORCH_DATASET_EPS)
    else:
        standardize = w.Standardize(None, None)
    net = _network(model)
    score = w.ReconstructionError(standardize, nn.Sequential(net.encoder, net.decoder))
    return _export(score, n_features, "ae1svm", contributions=True)


# --- DevNet ---


def devnet_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    from torch import nn

    model = getattr(det, "model", None)
    if getattr(det, "decision_scores_", None) is None or model is None:
        raise _not_fitted("DevNet")
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    if first.in_features != n_features:
        raise ValueError(f"n_features={n_features} but DevNet was fitted on {first.in_features}")

    class Score(nn.Module):
        """model(x)[:, 0]: PyOD's load_model_weight_predict flattens the [N, 1] output."""

        def __init__(self) -> None:
            super().__init__()
            self.net = _network(model)

        def forward(self, x: Any) -> Any:
            return self.net(x).squeeze(1)

    return _export(Score(), n_features, "devnet")


def devnet_detector_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    if getattr(det, "detector_", None) is None:
        raise _not_fitted("DevNet")
    return devnet_to_onnx(det.detector_, n_features)


# --- LUNAR ---


def _scale(g: _Graph, x32: str, scaler: Any) -> str:
    """sklearn's transform of float32 rows, in float32 (PyOD's X.astype(float32) goes through it)."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if scaler is None:
        return x32
    if type(scaler) is MinMaxScaler and not scaler.clip:
        scaled = g.op("Mul", [x32, g.const(scaler.scale_, np.float32, "minmax_scale")])
        return g.op("Add", [scaled, g.const(scaler.min_, np.float32, "minmax_min")])
    if type(scaler) is StandardScaler:
        if scaler.with_mean:
            x32 = g.op("Sub", [x32, g.const(scaler.mean_, np.float32, "mean")])
        if scaler.with_std:
            x32 = g.op("Div", [x32, g.const(scaler.scale_, np.float32, "scale")])
        return x32
    raise ValueError(f"only MinMaxScaler (clip=False), StandardScaler or no scaler are exported, not {scaler!r}")


def _layers(g: _Graph, sequential: Any, h: str) -> str:
    """An eval-mode nn.Sequential of the layers LUNAR's networks use, in float32."""
    from torch import nn

    for layer in sequential:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach().cpu().numpy().T
            h = g.op("MatMul", [h, g.const(weight, np.float32, "weight")])
            if layer.bias is not None:
                h = g.op("Add", [h, g.const(layer.bias.detach().cpu().numpy(), np.float32, "bias")])
        elif isinstance(layer, nn.ReLU | nn.Tanh | nn.Sigmoid):
            h = g.op(type(layer).__name__.replace("ReLU", "Relu"), [h])
        elif isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1 and layer.elementwise_affine:
            scale = g.const(layer.weight.detach().cpu().numpy(), np.float32, "ln_scale")
            bias = g.const(layer.bias.detach().cpu().numpy(), np.float32, "ln_bias")
            h = g.op("LayerNormalization", [h, scale, bias], axis=-1, epsilon=float(layer.eps))
        else:
            raise ValueError(f"LUNAR's network has a layer the export does not know: {layer!r}")
    return h


def _weighted_sum(g: _Graph, network: Any, d32: str) -> str:
    """WEIGHT_MODEL: batchnorm(sum(softmax(net(d)) * d)) with the batch norm's running statistics, in float64."""
    alpha = g.op("Softmax", [_layers(g, network.network, d32)], axis=1)
    d64, a64 = g.op("Cast", [d32], to=TensorProto.DOUBLE), g.op("Cast", [alpha], to=TensorProto.DOUBLE)
    # torch's float32 alpha * d product, then the row sum in float64
    product = g.op("Cast", [g.op("Cast", [g.op("Mul", [a64, d64])], to=TensorProto.FLOAT)], to=TensorProto.DOUBLE)
    total = g.op("ReduceSum", [product, g.axes(1)], keepdims=0)
    bn = network.final_norm
    mean, var = float(bn.running_mean[0]), float(bn.running_var[0])
    gamma = float(bn.weight[0]) if bn.affine else 1.0
    beta = float(bn.bias[0]) if bn.affine else 0.0
    scale = gamma / np.sqrt(np.float64(var) + bn.eps)
    return g.op("Add", [g.op("Mul", [g.op("Sub", [total, g.const(mean)]), g.const(scale)]), g.const(beta)])


def lunar_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    if getattr(det, "decision_scores_", None) is None or getattr(det, "neigh", None) is None:
        raise _not_fitted("LUNAR")
    nn = det.neigh
    _check_euclidean(nn)
    points = np.asarray(nn._fit_X, np.float64)  # the scaled training split and the negative samples (float32)
    _check_width(points.shape[1], n_features, "LUNAR")
    k = det.n_neighbours
    network = _network(det.network)
    kind = type(network).__name__
    if kind not in ("WEIGHT_MODEL", "SCORE_MODEL"):
        raise ValueError(f"unknown LUNAR network {kind}")
    g = _Graph()
    nearest = _nearest(g, points, k)
    kk = g.const([k], np.int64, "k")

    def score(b: _Graph, x: str) -> str:
        scaled = _scale(b, b.op("Cast", [x], to=TensorProto.FLOAT), det.scaler_)
        _, sq = nearest(b, b.op("Cast", [scaled], to=TensorProto.DOUBLE))
        ordered, _ = b.op("TopK", [sq, kk], n_out=2, largest=0, sorted=1)
        d32 = b.op("Cast", [b.op("Sqrt", [ordered])], to=TensorProto.FLOAT)
        if kind == "WEIGHT_MODEL":
            return _weighted_sum(b, network, d32)
        out = b.op("Squeeze", [_layers(b, network.network, d32), b.axes(1)])
        return b.op("Cast", [out], to=TensorProto.DOUBLE)

    return _wrap(score, g, n_features, f"lunar_{kind.split('_')[0].lower()}")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.ae1svm.AE1SVM": ae1svm_to_onnx,
    "pyod.models.lunar.LUNAR": lunar_to_onnx,
    "pyod.models.devnet.DevNet": devnet_to_onnx,
    # pynomaly's "devnet" fits PyOD's DevNet seeded with its random_seed: see algorithms.neural.
    "pynomaly.algorithms.neural.DevNetDetector": devnet_detector_to_onnx,
}
