"""AE-1SVM, LUNAR and DevNet -> ONNX (see pynomaly.algorithms.neural for what each decision_function computes).

- AE1SVM: export.deep's reconstruction-error wrapper (standardize in float64, eval-mode float32 network, squares
  and their sum in float64) around encoder -> decoder, by torch.onnx; the random-Fourier-feature/SVM head is left
  out, as PyOD's decision_function leaves it out. Its per-feature terms are the exact explanation, as
  AutoEncoder's. Checked against PyOD's float32 scores (~1e-7 relative).
- LUNAR and DevNet: written here, layer by layer, in float64, as their references (algorithms.neural:
  lunar_score, devnet_score) compute them: Linear = MatMul + Add, ReLU, Tanh, Sigmoid, Softmax, LayerNorm as
  torch computes it ((h - mean) / sqrt(biased variance + eps) * weight + bias; onnxruntime's own float64
  LayerNormalization was 2.6e-12 off torch's), WEIGHT's sum(alpha * d) and batch norm on running statistics.
  - DevNet reads the row rounded to float32 (a Cast to float, which double_io feeds the float64 row), as PyOD's
    torch.as_tensor(..., float32) rounds it.
  - LUNAR: the row rounded to float32 and scaled in float32 (sklearn's MinMaxScaler X *= scale_; X += min_,
    StandardScaler X -= mean_; X /= scale_, with float32 constants on float32 data, as PyOD scales
    X.astype(float32)); then export.neighbors' blocks of rows and exact nearest-neighbour search (float64 MatMul,
    the k chosen distances recomputed as sqrt(sum((x - t)^2)), as the ball tree does), sorted and rounded to
    float32 (PyOD's torch.tensor(dist, float32)), and the network.
  Both agree with their references to float64 rounding; no torch export (and none of its 2-5 s) is involved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ._graph import INPUT_NAME, OUTPUT_NAME, make_model
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

# The Linear layers of PyOD's DevNet networks, in forward order: ReLU after each but the last.
_DEVNET_LAYERS = {"DevNetD": ("fc1", "fc2", "fc3", "score"), "DevNetS": ("fc1", "score"), "DevNetLinear": ("score",)}


def devnet_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    from torch import nn

    model = getattr(det, "model", None)
    if getattr(det, "decision_scores_", None) is None or model is None:
        raise _not_fitted("DevNet")
    names = _DEVNET_LAYERS.get(type(model).__name__)
    if names is None:
        raise ValueError(f"unknown DevNet network {type(model).__name__}")
    layers: list[Any] = []
    for name in names:
        layers += [getattr(model, name), nn.ReLU()]
    if layers[0].in_features != n_features:
        raise ValueError(f"n_features={n_features} but DevNet was fitted on {layers[0].in_features}")
    g = _Graph()
    x32 = g.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)  # double_io: reads the float64 row, rounds it
    out = _layers(g, layers[:-1], g.op("Cast", [x32], to=TensorProto.DOUBLE))
    g.nodes.append(helper.make_node("Cast", [g.op("Squeeze", [out, g.axes(1)])], [OUTPUT_NAME], to=TensorProto.FLOAT))
    return make_model(g.nodes, g.inits, n_features, f"devnet_{type(model).__name__}")


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


def _layers(g: _Graph, layers: Any, h: str) -> str:
    """Eval-mode layers (an nn.Sequential of those LUNAR's and DevNet's networks use) on double h, in float64."""
    from torch import nn

    def const(t: Any, hint: str) -> str:
        return g.const(t.detach().cpu().double().numpy(), hint=hint)

    for layer in layers:
        if isinstance(layer, nn.Linear):
            h = g.op("MatMul", [h, const(layer.weight.T, "weight")])
            if layer.bias is not None:
                h = g.op("Add", [h, const(layer.bias, "bias")])
        elif isinstance(layer, nn.ReLU | nn.Tanh | nn.Sigmoid):
            h = g.op(type(layer).__name__.replace("ReLU", "Relu"), [h])
        elif isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
            centred = g.op("Sub", [h, g.op("ReduceMean", [h, g.axes(-1)], keepdims=1)])
            var = g.op("ReduceMean", [g.op("Mul", [centred, centred]), g.axes(-1)], keepdims=1)
            h = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [var, g.const(float(layer.eps))])])])
            if layer.elementwise_affine:
                h = g.op("Mul", [h, const(layer.weight, "ln_weight")])
                if layer.bias is not None:
                    h = g.op("Add", [h, const(layer.bias, "ln_bias")])
        else:
            raise ValueError(f"the network has a layer the export does not know: {layer!r}")
    return h


def _weighted_sum(g: _Graph, network: Any, d: str) -> str:
    """WEIGHT_MODEL: batchnorm(sum(softmax(net(d)) * d)), the batch norm on its running statistics (torch's eval
    form: d * alpha + beta, alpha = weight / sqrt(running_var + eps), beta = bias - running_mean * alpha)."""
    weights = g.op("Softmax", [_layers(g, network.network, d)], axis=1)
    total = g.op("ReduceSum", [g.op("Mul", [weights, d]), g.axes(1)], keepdims=0)
    bn = network.final_norm
    mean, var = float(bn.running_mean[0]), float(bn.running_var[0])
    weight = float(bn.weight[0].detach()) if bn.affine else 1.0
    bias = float(bn.bias[0].detach()) if bn.affine else 0.0
    alpha = 1.0 / np.sqrt(var + bn.eps) * weight
    return g.op("Add", [g.op("Mul", [total, g.const(alpha)]), g.const(bias - mean * alpha)])


def lunar_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    if getattr(det, "decision_scores_", None) is None or getattr(det, "neigh", None) is None:
        raise _not_fitted("LUNAR")
    nn = det.neigh
    _check_euclidean(nn)
    points = np.asarray(nn._fit_X, np.float64)  # the scaled training split and the negative samples (float32)
    _check_width(points.shape[1], n_features, "LUNAR")
    k = det.n_neighbours
    network = det.network
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
        d = b.op("Cast", [d32], to=TensorProto.DOUBLE)
        if kind == "WEIGHT_MODEL":
            return _weighted_sum(b, network, d)
        return b.op("Squeeze", [_layers(b, network.network, d), b.axes(1)])

    return _wrap(score, g, n_features, f"lunar_{kind.split('_')[0].lower()}")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.ae1svm.AE1SVM": ae1svm_to_onnx,
    "pyod.models.lunar.LUNAR": lunar_to_onnx,
    "pyod.models.devnet.DevNet": devnet_to_onnx,
    # pynomaly's "devnet" fits PyOD's DevNet seeded with its random_seed: see algorithms.neural.
    "pynomaly.algorithms.neural.DevNetDetector": devnet_detector_to_onnx,
}
