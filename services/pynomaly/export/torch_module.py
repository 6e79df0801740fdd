"""torch modules -> the platform's ONNX graph: X float[N, F] -> anomaly_score float[N], checked against torch.

`export_module` is the public entry for a user's own scoring module (the ImportModel path); `to_onnx_model` is
the exporter that the PyOD deep-detector converters share. torch is imported inside the functions: importing
this module costs nothing, importing torch ~1-2 s.

The exporter is torch's default one (`dynamo=True`, via torch.export and onnxscript): the TorchScript exporter
(`dynamo=False`) works without onnxscript but is deprecated, warns on every call, tops out at opset 20, and
traces: a user module's data-dependent branch would be frozen silently, where torch.export refuses it. Both
gave the same error (2-3e-7 relative) on PyOD's AutoEncoder. The price is time: 1.5-5 s an export on this
2-core machine (about 1.9 s of it onnxscript rebuilding its op registry on every call) against ~0.05 s,
paid by training and imports only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from pynomaly import verification
from pynomaly.errors import InvalidArgument
from pynomaly.export._graph import BATCH_DIM, CONTRIBUTIONS_NAME, DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    import torch

__all__ = ["PROBE_ROWS", "export_module", "probe_rows", "to_onnx_model"]

PROBE_ROWS = 256
_ALONE_ROWS = 8


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the exporter's chatter out of training logs.

    With verbose=False it prints no progress; left are logger warnings (torchvision is not installed: its ops
    are skipped, which is what we want) and Python deprecation warnings from torch's own internals.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx_model(module: torch.nn.Module, n_features: int, graph_name: str,
                  contributions: bool = False) -> onnx.ModelProto:
    """Export `module` (float32 [N, F] -> float32 [N], eval mode) with a dynamic batch, in the served contract.
    With `contributions` the module returns (score, per-feature terms float32 [N, F] summing to it), exported
    as the second output CONTRIBUTIONS_NAME (what Explain's exact method reads).

    Raises ValueError when torch cannot export it or the graph's signature is not the contract.
    """
    import torch

    example = torch.zeros(2, n_features, dtype=torch.float32)  # 2 rows: torch.export specializes a size of 1
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME, CONTRIBUTIONS_NAME] if contributions else [OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
                opset_version=DEFAULT_OPSET,
                verbose=False,
                optimize=True,
            )
    except Exception as e:  # torch raises many kinds here (export, lowering, dispatch errors)
        last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
        raise ValueError(f"torch.onnx.export failed: {type(e).__name__}: {last[0]}") from e
    if program is None:  # only with dynamo=False and a file to write to
        raise ValueError("torch.onnx.export returned no program")
    model = program.model_proto
    _check_contract(model, n_features, contributions)
    model.graph.name = graph_name
    model.producer_name = "pynomaly"
    onnx.checker.check_model(model, full_check=True)
    return model


def _check_contract(model: onnx.ModelProto, n_features: int, contributions: bool = False) -> None:
    graph = model.graph
    outputs = [OUTPUT_NAME, CONTRIBUTIONS_NAME] if contributions else [OUTPUT_NAME]
    if [i.name for i in graph.input] != [INPUT_NAME] or [o.name for o in graph.output] != outputs:
        raise ValueError(
            f"exported graph has inputs {[i.name for i in graph.input]} and outputs "
            f"{[o.name for o in graph.output]}; expected [{INPUT_NAME!r}] and {outputs}"
        )
    x, y = graph.input[0].type.tensor_type, graph.output[0].type.tensor_type
    x_dims = [d.dim_value or d.dim_param for d in x.shape.dim]
    if x.elem_type != TensorProto.FLOAT or len(x_dims) != 2 or x_dims[1] != n_features:
        raise ValueError(f"exported input is not float[N, {n_features}]: {x_dims}")
    if y.elem_type != TensorProto.FLOAT or len(y.shape.dim) != 1:
        raise ValueError("exported output is not float[N]")
    # Name both batch dims alike, so the signature reads X[N, F] -> anomaly_score[N] whatever torch called it.
    graph.input[0].type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, [BATCH_DIM, n_features]))
    graph.output[0].type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, [BATCH_DIM]))
    if contributions:
        c = graph.output[1].type.tensor_type
        if c.elem_type != TensorProto.FLOAT or len(c.shape.dim) != 2:
            raise ValueError(f"exported {CONTRIBUTIONS_NAME} is not float[N, {n_features}]")
        graph.output[1].type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, [BATCH_DIM, n_features]))


def probe_rows(n_features: int, n: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Seeded float32 rows: mostly N(0, 1), a quarter N(0, 10²) so saturating and far branches are reached."""
    rng = np.random.default_rng(seed)
    near = rng.normal(size=(n - n // 4, n_features))
    far = rng.normal(scale=10.0, size=(n // 4, n_features))
    return np.vstack([near, far]).astype(np.float32)


def _score_head(net: torch.nn.Module, dtype: torch.dtype, squeeze: bool, negate: bool) -> torch.nn.Module:
    import torch

    class ScoreHead(torch.nn.Module):
        """float32 rows -> the module (in its own float dtype) -> one float32 score per row, higher = anomalous."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.net(x.to(dtype))
            if squeeze:
                y = y.squeeze(1)
            if negate:
                y = -y
            return y.to(torch.float32)

    return ScoreHead().eval()


def _module_dtype(net: torch.nn.Module) -> torch.dtype:
    import torch

    dtypes = {p.dtype for p in net.parameters()} | {b.dtype for b in net.buffers() if b.is_floating_point()}
    if not dtypes:
        return torch.float32
    if len(dtypes) > 1 or not next(iter(dtypes)).is_floating_point:
        raise InvalidArgument(f"module: parameters must share one floating dtype, got {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


def _compare(got: np.ndarray, native: np.ndarray) -> float:
    return verification.compare(got, native)[1]


@dataclass
class _Checked:
    graph: bytes
    session: Any
    served: np.ndarray
    max_rel_error: float


def _export_checked(net: torch.nn.Module, dtype: torch.dtype, probe: np.ndarray, sign: float) -> _Checked:
    """Export `net` computing in `dtype`; score the probe rows with torch and with onnxruntime."""
    import torch

    n, n_features = probe.shape
    try:
        with torch.no_grad():
            out = net(torch.from_numpy(probe).to(dtype))
    except Exception as e:  # the user's code: any error means it does not take this input
        raise InvalidArgument(f"module: fails on a float32 batch of shape {tuple(probe.shape)}: {e}") from e
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise InvalidArgument("module: must return a floating-point tensor of scores")
    if tuple(out.shape) not in ((n,), (n, 1)):
        raise InvalidArgument(f"module: must return scores shaped [N] or [N, 1], got {list(out.shape)} for N={n}")
    native = out.reshape(-1).double().numpy() * sign
    if not np.isfinite(native).all():
        raise InvalidArgument("module: returned non-finite scores (NaN or inf) on the verification rows")

    head = _score_head(net, dtype, squeeze=out.dim() == 2, negate=sign < 0)
    try:
        graph = to_onnx_model(head, n_features, "torch_module").SerializeToString()
    except (ValueError, onnx.checker.ValidationError) as e:
        raise InvalidArgument(f"module: cannot be exported to ONNX: {e}") from e
    try:
        session = verification.session(graph)
        served = verification.scores(session, probe)
    except Exception as e:  # onnxruntime's own error types: e.g. no kernel for an op in this dtype
        raise InvalidArgument(f"module: onnxruntime cannot run the exported graph: {e}") from e
    return _Checked(graph, session, served, _compare(served, native))


def export_module(
    module: torch.nn.Module,
    n_features: int,
    *,
    higher_is_anomalous: bool = True,
    rows: np.ndarray | None = None,
) -> bytes:
    """Export a user's scoring module to the served ONNX contract; return the serialized, verified ModelProto.

    `module` maps a float32 batch [N, n_features] to one score per row, shaped [N] or [N, 1]; it is exported in
    eval mode from a CPU copy (the caller's module is left as it was). If `higher_is_anomalous` is False its
    scores are negated, so the graph keeps the platform's convention. The graph is run with onnxruntime on
    `rows` (float32 [M, n_features]; default: PROBE_ROWS seeded random rows) and must match the module to
    relative 1e-5 (pynomaly.verification's metric), and a row scored alone must match its score inside the batch
    (a module that mixes rows, such as batch statistics, cannot be served). Raises InvalidArgument saying why.

    A float32 module is exported in float32 first. torch and onnxruntime round float32 sums differently, and
    where scores pass near zero that alone can exceed 1e-5 relative (7.6e-5 seen on a small MLP): then a
    float64 copy is exported, checked against the same copy run by torch. It computes the module's function
    with less rounding than the float32 module itself, and is bit-identical for a row alone or in a batch.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise InvalidArgument(f"module: must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise InvalidArgument(f"n_features: must be an integer >= 1 (got {n_features!r})")
    probe = probe_rows(n_features) if rows is None else np.ascontiguousarray(rows, dtype=np.float32)
    if probe.ndim != 2 or probe.shape[1] != n_features or len(probe) < 2 or not np.isfinite(probe).all():
        raise InvalidArgument(f"rows: must be finite float32 rows [M >= 2, {n_features}], got shape {probe.shape}")

    net = copy.deepcopy(module).cpu().eval()
    dtype = _module_dtype(net)
    sign = 1.0 if higher_is_anomalous else -1.0
    checked = _export_checked(net, dtype, probe, sign)
    if not checked.max_rel_error <= verification.TOLERANCE and dtype == torch.float32:
        with contextlib.suppress(InvalidArgument):  # no float64 kernel for some op: keep the float32 verdict
            in_double = _export_checked(net.double(), torch.float64, probe, sign)
            if in_double.max_rel_error <= verification.TOLERANCE:
                checked = in_double
    if not checked.max_rel_error <= verification.TOLERANCE:
        raise InvalidArgument(
            f"module: the ONNX graph does not match the module: max relative error {checked.max_rel_error:.3g} "
            f"over {len(probe)} rows exceeds {verification.TOLERANCE:g}"
        )
    picked = np.linspace(0, len(probe) - 1, min(_ALONE_ROWS, len(probe))).astype(int)
    alone = np.concatenate([checked.session.run(None, {INPUT_NAME: probe[i : i + 1]})[0] for i in picked])
    rel = _compare(alone, checked.served[picked].astype(np.float64))
    if not rel <= verification.TOLERANCE:
        raise InvalidArgument(
            f"module: a row scored alone differs from its score in a batch (relative {rel:.3g}): the module "
            "mixes rows (batch statistics, normalization over the batch), which the server cannot serve"
        )
    return checked.graph
