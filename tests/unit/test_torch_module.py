"""export_module: a user's torch scoring module -> the served ONNX contract, verified against the module."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from pynomaly import verification
from pynomaly.errors import InvalidArgument
from pynomaly.export.torch_module import export_module, probe_rows

F = 5


class Norm(nn.Module):
    """Distance of the row to a learned point: returns [N]."""

    def __init__(self) -> None:
        super().__init__()
        self.center = nn.Parameter(torch.linspace(-1, 1, F))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x - self.center, dim=1)


class BatchCentered(nn.Module):
    """Scores against the batch's own mean: a row's score depends on the other rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum((x - x.mean(dim=0)) ** 2, dim=1)


class DataDependentBranch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x.sum(dim=1)
        return -x.sum(dim=1)


def _mlp(out: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(F, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, out))


def _session(graph: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])


def _reference(module: nn.Module, x: np.ndarray, dtype: torch.dtype | None = None) -> np.ndarray:
    """The module's scores in its own dtype, or in `dtype` (a copy of the module converted to it)."""
    module = copy.deepcopy(module).eval()
    if dtype is not None:
        module = module.to(dtype)
    dtype = next(module.parameters()).dtype
    with torch.no_grad():
        return module(torch.from_numpy(x).to(dtype)).reshape(-1).double().numpy()


def _computes_in_double(model: onnx.ModelProto) -> bool:
    return any(t.data_type == onnx.TensorProto.DOUBLE for t in model.graph.initializer)


def _rows() -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.vstack([rng.normal(size=(200, F)), rng.uniform(-1e3, 1e3, size=(10, F))]).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "higher"),
    [
        pytest.param(lambda: _mlp(), True, id="mlp-Nx1"),
        pytest.param(lambda: Norm(), True, id="norm-N"),
        pytest.param(lambda: _mlp().double(), True, id="mlp-float64"),
        pytest.param(lambda: Norm(), False, id="norm-lower-is-anomalous"),
    ],
)
def test_exported_graph_matches_the_module(make, higher: bool, request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.id
    module = make()
    graph = export_module(module, F, higher_is_anomalous=higher)
    model = onnx.load_from_string(graph)
    onnx.checker.check_model(model, full_check=True)
    (x,), (y,) = model.graph.input, model.graph.output
    assert (x.name, y.name) == ("X", "anomaly_score")
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["N", F]
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["N"]

    rows = _rows()
    sess = _session(graph)
    got = sess.run(None, {"X": rows})[0]
    assert got.shape == (len(rows),) and got.dtype == np.float32 and np.isfinite(got).all()
    # A float32 module whose float32 graph misses 1e-5 (the MLP: scores near 0) is served from a float64 copy.
    in_double = _computes_in_double(model)
    assert in_double == (name in ("mlp-Nx1", "mlp-float64"))
    native = _reference(module, rows, torch.float64 if in_double else None) * (1 if higher else -1)
    assert verification.compare(got, native)[1] <= 1e-5
    alone = np.concatenate([sess.run(None, {"X": rows[i : i + 1]})[0] for i in range(0, len(rows), 15)])
    assert verification.compare(alone, got[::15].astype(np.float64))[1] <= 1e-5


def test_the_callers_module_is_left_as_it_was() -> None:
    module = _mlp().train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    export_module(module, F)
    assert module.training
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_lower_is_anomalous_negates() -> None:
    rows = probe_rows(F, n=8)
    up = _session(export_module(Norm(), F)).run(None, {"X": rows})[0]
    down = _session(export_module(Norm(), F, higher_is_anomalous=False)).run(None, {"X": rows})[0]
    np.testing.assert_array_equal(down, -up)


def test_verifies_on_given_rows() -> None:
    rows = np.random.default_rng(4).normal(loc=50, size=(16, F)).astype(np.float32)
    graph = export_module(Norm(), F, rows=rows)
    assert verification.compare(_session(graph).run(None, {"X": rows})[0], _reference(Norm(), rows))[1] <= 1e-5


@pytest.mark.parametrize(
    ("module", "n_features", "kwargs", "message"),
    [
        pytest.param("not a module", F, {}, "module: must be a torch.nn.Module", id="not-a-module"),
        pytest.param(_mlp(), 0, {}, "n_features: must be an integer", id="zero-features"),
        pytest.param(_mlp(), True, {}, "n_features: must be an integer", id="bool-features"),
        pytest.param(_mlp(), F + 1, {}, "module: fails on a float32 batch", id="wrong-width"),
        pytest.param(_mlp(out=2), F, {}, r"module: must return scores shaped \[N\] or \[N, 1\]", id="two-outputs"),
        pytest.param(BatchCentered(), F, {}, "module: a row scored alone differs", id="mixes-rows"),
        pytest.param(
            nn.Sequential(nn.Linear(F, 1), nn.Flatten(0), nn.ReLU(), nn.Threshold(0.5, float("nan"))),
            F,
            {},
            "module: returned non-finite scores",
            id="nan-scores",
        ),
        pytest.param(Norm(), F, {"rows": np.zeros((4, F + 1))}, r"rows: must be finite float32 rows", id="bad-rows"),
        pytest.param(DataDependentBranch(), F, {}, "module: cannot be exported to ONNX", id="data-dependent"),
    ],
)
def test_bad_modules_are_invalid_arguments(module, n_features, kwargs, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        export_module(module, n_features, **kwargs)
