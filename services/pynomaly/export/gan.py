"""PyOD's adversarial detectors -> ONNX: SO_GAAL, MO_GAAL, ALAD and AnoGAN, their networks written out as Gemm
and activation nodes, computed in float64.

What each decision_function computes (pyod 3.6.7), and so what the graph computes:
- SO_GAAL, MO_GAAL: the discriminator's output on the row rounded to float32, sigmoid(W2 relu(W1 x + b1) + b2).
  (MO_GAAL's k generators only shape the training; the one discriminator scores.)
- ALAD: (D_xx(x, x) - D_xx(x, dec(enc(x))))^2 over the row x standardized (preprocessing: StandardScaler in
  float64) and rounded to float32. PyOD scores with its modules in training mode: dropout is on and spectral
  normalization does a power iteration on every call, so its scores are random. The served score is the
  eval-mode one (dropout off, spectral norm on its stored vectors).
- AnoGAN: mean_j |x_j - g_j| + |D(x) - D(g)| over the row x (standardized with preprocessing, rounded to float32),
  eval mode. g = G(z_gamma_layer(0)) for the query model fit left behind: decision_function optimises no latent
  per query row (only fit does, for its training scores), so g and D(g) are constants, PyOD's own float32 values.

Precision: the networks run in float64 on the float32-rounded row PyOD's tensor holds; the native references
(pynomaly.algorithms.gan) run PyOD's modules the same way in torch, and the graphs match them to ~1e-12. What
separates both from PyOD's own float32 scores is PyOD's rounding: about 1e-6 relative for the GAAL discriminators
and AnoGAN, but ALAD squares a difference of two nearly equal sigmoid outputs, so its float32 score carries up to
~1e-3 of relative rounding on rows it scores near 0. A float32 graph cannot follow PyOD's rounding either (torch
and onnxruntime sum in different orders), and onnxruntime's float32 Sigmoid floors near 1.5e-8.

Batch invariance: Gemm, elementwise ops and a MatMul row sum are per row in double; onnxruntime's double Exp, Log
and Tanh are not quite (see `_Net.activation`), which ALAD's squared difference amplifies past 1e-12: their
inputs are padded per row to whole vector lanes. Scoring reads the fitted modules' tensors and imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from pynomaly.export._graph import INPUT_NAME, OUTPUT_NAME, const, make_model

_DOUBLE = TensorProto.DOUBLE
_FLOAT = TensorProto.FLOAT
# Doubles per vector in onnxruntime's elementwise loops: 8 covers AVX-512 (AVX2 packs 4).
_LANES = 8
# A GAAL discriminator that scores more than this share of its training rows below float32's smallest normal
# number has saturated (ADBench satellite, 2 epochs: every training score 0.0 in PyOD's float32).
SATURATED_SHARE = 0.05


class _Net:
    """Nodes and initializers of one graph, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._shared: dict[tuple[str, str, type], str] = {}

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(self, value: Any, hint: str = "c", dtype: type = np.float64) -> str:
        name = self.name(hint)
        self.inits.append(const(name, value, dtype))
        return name

    def shared(self, value: Any, hint: str, dtype: type = np.float64) -> str:
        """A small constant, stored once however often it is used."""
        key = (hint, repr(value), dtype)
        if key not in self._shared:
            self._shared[key] = self.const(value, hint, dtype)
        return self._shared[key]

    def rows64(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> str:
        """The row as PyOD's float32 tensor holds it, widened to double: ((x - mean) / scale) in float64 when
        standardized, then rounded to float32."""
        x = self.op("Cast", [INPUT_NAME], "x64", to=_DOUBLE)
        if mean is not None and scale is not None:
            x = self.op("Div", [self.op("Sub", [x, self.const(mean, "mean")]), self.const(scale, "scale")])
        return self.op("Cast", [self.op("Cast", [x], "x32", to=_FLOAT)], "x", to=_DOUBLE)

    def mlp(self, x: str, steps: list[tuple[Any, ...]]) -> str:
        """Apply `steps` (see `steps`: a Linear first) to the double [N, d] tensor x."""
        width = 0
        for step in steps:
            if step[0] == "linear":
                x = self.op("Gemm", [x, self.const(step[1], "w"), self.const(step[2], "b")], "linear", transB=1)
                width = len(step[1])
            else:
                x = self.activation(x, width, step[0], step[1])
        return x

    def activation(self, x: str, width: int, kind: str, alpha: float) -> str:
        """torch's activation `kind` on double [N, width]. onnxruntime has no double Elu, LeakyRelu or Softplus; its
        double Sigmoid loses relative precision below about -15 (1e-3 at -30), and its Softmax is not batch
        invariant: those are written out. Its double Exp, Log and Tanh round an element differently in their
        vectorized loop and in its scalar tail (1 ulp), so which path an element takes must not depend on the
        batch: their input is padded to a whole number of vector lanes per row, then sliced back."""
        if kind == "Relu":
            return self.op("Relu", [x])
        if kind == "LeakyRelu":
            slope = self.op("Mul", [x, self.const(alpha, "slope")])
            return self.op("Where", [self.op("Greater", [x, self.shared(0.0, "zero")]), x, slope], "leaky_relu")
        if kind == "Softmax":  # e^(x - max) / its row sum (a MatMul, batch invariant), the padding left out of it
            x = self.op("Sub", [x, self.op("ReduceMax", [x, self.shared([1], "axis", np.int64)], keepdims=1)])
        pad = -width % _LANES
        if pad:
            x = self.op("Pad", [x, self.const([0, 0, 0, pad], "pads", np.int64)])
        y = self._transcendental(x, kind, alpha, width + pad, width)
        if pad:
            starts, ends = self.shared([0], "start", np.int64), self.const([width], "end", np.int64)
            y = self.op("Slice", [y, starts, ends, self.shared([1], "axis", np.int64)])
        return y

    def _transcendental(self, x: str, kind: str, alpha: float, padded: int, width: int) -> str:
        if kind == "Tanh":
            return self.op("Tanh", [x])
        if kind == "Softmax":
            e = self.op("Exp", [x])
            ones = self.const(np.r_[np.ones(width), np.zeros(padded - width)].reshape(-1, 1), "ones")
            return self.op("Div", [e, self.op("MatMul", [e, ones])], "softmax")
        positive, one = self.op("Greater", [x, self.shared(0.0, "zero")]), self.shared(1.0, "one")
        if kind == "Sigmoid":  # 1 / (1 + e^-x) for x > 0, else e^x / (1 + e^x): no cancellation, no overflow used
            e_neg, e_pos = self.op("Exp", [self.op("Neg", [x])]), self.op("Exp", [x])
            upper = self.op("Reciprocal", [self.op("Add", [one, e_neg])])
            lower = self.op("Div", [e_pos, self.op("Add", [one, e_pos])])
            return self.op("Where", [positive, upper, lower], "sigmoid")
        if kind == "Elu":
            expm1 = self.op("Mul", [self.op("Sub", [self.op("Exp", [x]), one]), self.const(alpha, "alpha")])
            return self.op("Where", [positive, x, expm1], "elu")
        if kind == "Softplus":  # torch: x above its threshold 20, else log1p(e^x)
            soft = self.op("Log", [self.op("Add", [self.op("Exp", [x]), one])])
            return self.op("Where", [self.op("Greater", [x, self.shared(20.0, "threshold")]), x, soft], "softplus")
        raise ValueError(f"no graph for the activation {kind}")

    def flat(self, x: str) -> str:
        return self.op("Reshape", [x, self.shared([-1], "flat", np.int64)])

    def model(self, score: str, n_features: int, graph_name: str) -> onnx.ModelProto:
        """The graph serving the double score [N] or [N, 1] (double_io drops the final Cast to float)."""
        self.nodes.append(helper.make_node("Cast", [self.flat(score)], [OUTPUT_NAME], to=_FLOAT))
        return make_model(self.nodes, self.inits, n_features, graph_name)


def _activation(module: Any) -> tuple[str, float] | None:
    """An activation module as (kind, constant), with torch's constants checked; None for one that passes the value
    on (Identity; Dropout in eval mode)."""
    kind = type(module).__name__
    if kind in ("Identity", "Dropout"):
        return None
    if kind in ("ReLU", "Sigmoid", "Tanh"):
        return ({"ReLU": "Relu"}.get(kind, kind), 0.0)
    if kind == "ELU":
        return ("Elu", float(module.alpha))
    if kind == "LeakyReLU":
        return ("LeakyRelu", float(module.negative_slope))
    if kind == "Softplus" and module.beta == 1 and module.threshold == 20:
        return ("Softplus", 0.0)
    if kind == "Softmax" and module.dim in (None, 1, -1):  # a 2-D input: over each row's features
        return ("Softmax", 0.0)
    raise ValueError(f"cannot export the layer {module!r}")


def _linear(layer: Any) -> tuple[Any, ...]:
    """A Linear layer's ("linear", W, b) in float64, W as eval mode uses it (spectral norm: rescaled by the stored
    vectors; the caller has run the eval-mode module once, so `weight` holds that)."""
    w = layer.weight.detach().cpu().double().numpy()
    b = layer.bias.detach().cpu().double().numpy() if layer.bias is not None else np.zeros(w.shape[0])
    return ("linear", w, b)


def steps(seq: Any) -> list[tuple[Any, ...]]:
    """An nn.Sequential of Linear, Dropout and activation modules as graph steps."""
    out = [_linear(m) if type(m).__name__ == "Linear" else _activation(m) for m in seq]
    return [step for step in out if step is not None]


def _gaal_discriminator(disc: Any) -> list[tuple[Any, ...]]:
    """pyod's GAAL discriminator: relu after layer1, sigmoid after layer2 (F.relu, torch.sigmoid in forward)."""
    return [_linear(disc.layer1), ("Relu", 0.0), _linear(disc.layer2), ("Sigmoid", 0.0)]


def _check_width(det: Any, n_features: int, fitted_on: int) -> None:
    if fitted_on != n_features:
        raise ValueError(f"n_features={n_features} but {type(det).__name__} was fitted on {fitted_on}")


def gaal_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """SO_GAAL and MO_GAAL: the discriminator's output."""
    disc = getattr(det, "discriminator", None)
    if disc is None or getattr(det, "decision_scores_", None) is None:
        raise ValueError(f"{type(det).__name__} is not fitted")
    _check_width(det, n_features, disc.layer1.in_features)
    _check_unsaturated(det)
    net = _Net()
    return net.model(net.mlp(net.rows64(), _gaal_discriminator(disc)), n_features, type(det).__name__.lower())


def _check_unsaturated(det: Any) -> None:
    """Refuse a discriminator whose sigmoid underflows on the training rows: PyOD's float32 training scores tie
    them at 0, so neither their order nor a threshold among them exists (float64 scores of 1e-230 and below are
    ordered by the rounding of exp, and the served float32 score is 0)."""
    scores = np.abs(np.asarray(det.decision_scores_, np.float64))
    share = float(np.mean(scores < np.finfo(np.float32).tiny))
    if share > SATURATED_SHARE:
        raise ValueError(
            f"the discriminator has saturated: it scores {share:.0%} of the training rows below float32's smallest "
            f"normal number ({np.finfo(np.float32).tiny:.1e}; PyOD's own scores are 0.0 there), so they tie and no "
            "threshold can be set among them; train more epochs (stop_epochs), or scale the features")


def _scaler(det: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if not det.preprocessing:
        return None, None
    return np.asarray(det.scaler_.mean_, np.float64), np.asarray(det.scaler_.scale_, np.float64)


def alad_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """ALAD: (D_xx(x, x) - D_xx(x, dec(enc(x))))^2, eval mode, float64 (pynomaly.algorithms.gan.alad_score)."""
    from pynomaly.algorithms.gan import alad_eval_modules

    if getattr(det, "decision_scores_", None) is None or getattr(det, "enc", None) is None:
        raise ValueError("ALAD is not fitted")
    _check_width(det, n_features, det.n_features_)
    enc, dec, disc_xx = alad_eval_modules(det)
    net = _Net()
    x = net.rows64(*_scaler(det))
    recon = net.mlp(net.mlp(x, steps(enc)), steps(dec))
    disc = steps(disc_xx)
    true_xx = net.mlp(net.op("Concat", [x, x], axis=1), disc)
    fake_xx = net.mlp(net.op("Concat", [x, recon], axis=1), disc)
    d = net.op("Sub", [true_xx, fake_xx])
    return net.model(net.op("Mul", [d, d]), n_features, "alad")


def anogan_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """AnoGAN: mean |x - g| + |D(x) - D(g)| for the query model's fixed latent (see the module docstring)."""
    from pynomaly.algorithms.gan import anogan_constants, eval64

    if getattr(det, "decision_scores_", None) is None or getattr(det, "query_model", None) is None:
        raise ValueError("AnoGAN is not fitted")
    _check_width(det, n_features, det.n_features_)
    g, d_g = anogan_constants(det)
    disc = eval64(det.discriminator)
    net = _Net()
    x = net.rows64(*_scaler(det))
    # |x - g| in float32, as PyOD's tensors; the mean in double.
    x32 = net.op("Cast", [x], "x32", to=_FLOAT)
    gap = net.op("Abs", [net.op("Sub", [x32, net.const(g, "g", np.float32)])])
    gap64 = net.op("Cast", [gap], "gap64", to=_DOUBLE)
    axis = net.const([1], "axis", np.int64)
    mean_gap = net.op("Div", [net.op("ReduceSum", [gap64, axis], keepdims=0), net.const(float(n_features), "width")])
    d_x = net.flat(net.mlp(x, steps(disc.model)))
    d_gap = net.op("Abs", [net.op("Sub", [d_x, net.const(d_g, "d_g")])])
    return net.model(net.op("Add", [mean_gap, d_gap]), n_features, "anogan")


CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {
    "pyod.models.so_gaal.SO_GAAL": gaal_to_onnx,
    "pyod.models.mo_gaal.MO_GAAL": gaal_to_onnx,
    "pyod.models.alad.ALAD": alad_to_onnx,
    "pyod.models.anogan.AnoGAN": anogan_to_onnx,
}
