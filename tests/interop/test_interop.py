"""Bring your own model from TensorFlow and JAX: a Keras autoencoder converted with tf2onnx and a JAX function
converted with jax2onnx (tests/interop/exporter.py, run in the interop environment) are imported with ImportModel
into a real server, on both engines; Detect serves the scores the frameworks themselves computed, Kernel SHAP on
the reference rows gives the exact Shapley values the frameworks computed by the definition, and the mistakes a
user of those converters makes are refused, naming the problem. `make test-interop` runs these alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest

from pynomaly.client import to_matrix
from pynomaly.imports import NO_BACKGROUND
from pynomaly.v1 import common_pb2, model_pb2, model_pb2_grpc

import interop_env
from conftest import BATCH_TOLERANCE, assert_scores_close

pytestmark = pytest.mark.interop

EXPORTER = Path(__file__).with_name("exporter.py")
FEATURES = [f"x{i}" for i in range(6)]
CONTAMINATION = 0.1
# The precision each graph computes in: the Keras graph in float32 (tf2onnx keeps the model's dtype), so served and
# TensorFlow's scores agree to float32 rounding, the export check's own tolerance (1e-5 relative); the JAX graph in
# float64, so they agree to float64 rounding (onnxruntime's kernels vs XLA's, as a row alone vs in a batch).
MODELS = {
    "keras_ae": dict(score_output="score", rtol=1e-5),
    "jax_distance": dict(score_output="", rtol=BATCH_TOLERANCE),  # one output: ImportModel picks it
}


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exporter's output directory: models trained and converted in the interop environment, once a session.
    Without PyPI the environment cannot be built: skipped with the reason, or failed under CI=true."""
    try:
        python = interop_env.python()
    except (subprocess.CalledProcessError, OSError) as e:
        reason = (f"cannot build the interop environment ({', '.join(interop_env.requirements())}): "
                  f"{getattr(e, 'stderr', None) or e}")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("interop")
    run = subprocess.run([str(python), str(EXPORTER), str(out)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"the exporter failed:\n{run.stdout}\n{run.stderr[-4000:]}"
    return out


def load(exported: Path, name: str) -> tuple[bytes, dict[str, np.ndarray]]:
    with np.load(exported / f"{name}.npz", allow_pickle=False) as data:
        return (exported / f"{name}.onnx").read_bytes(), dict(data)


@pytest.fixture(scope="module", params=list(MODELS))
def imported(request: pytest.FixtureRequest, client, exported: Path) -> tuple[str, dict[str, np.ndarray], dict]:
    """(reference of the imported version, the framework's rows and results, MODELS' entry) for each model."""
    name = request.param
    graph, data = load(exported, name)
    card = client.import_model(f"interop-{name.replace('_', '-')}", graph,
                               score_output=MODELS[name]["score_output"], feature_names=FEATURES,
                               reference_rows=data["reference"], contamination=CONTAMINATION,
                               description=f"{name} from tests/interop/exporter.py")
    return f"{card.name}@{card.version}", data, MODELS[name]


def test_detect_serves_the_frameworks_scores(client, imported):
    ref, data, spec = imported
    result = client.detect(ref, data["score_rows"])
    assert result.anomaly_scores.dtype == np.float64
    assert_scores_close(result.anomaly_scores, data["scores"], rtol=spec["rtol"])
    # The threshold is the reference rows' (1 - contamination) quantile of their served scores.
    card = client.get_model(ref)
    expected = np.percentile(data["reference_scores"].astype(np.float64), 100 * (1 - CONTAMINATION))
    assert card.threshold == pytest.approx(expected, rel=spec["rtol"])
    assert card.algorithm == "onnx" and list(card.feature_names) == FEATURES
    # Both detectors rank every planted outlier (the last 8 rows) above every ordinary row, and flag them.
    assert result.anomaly_scores[-8:].min() > result.anomaly_scores[:-8].max()
    assert result.is_anomaly[-8:].all()


def test_kernel_shap_gives_the_frameworks_shapley_values(client, imported):
    ref, data, spec = imported
    X = data["explain_rows"]
    r = client.explain(ref, X)
    assert r.method == "kernel_shap"  # an imported graph's one method
    # Six features: every coalition (2^6 - 2) against every one of the 64 reference rows, plus the row itself.
    assert r.evaluations_per_row == (2**6 - 2 + 1) * 64 + 1
    assert r.contributions.shape == (len(X), len(FEATURES)) and r.feature_names == FEATURES
    assert np.isfinite(r.contributions).all() and np.isfinite(r.base_values).all()
    # Efficiency, as the project checks it (tests/integration/test_explain.py): Σφ = score − base value.
    np.testing.assert_allclose(r.base_values + r.contributions.sum(axis=1), r.anomaly_scores, rtol=1e-6)
    # Explain's scores are Detect's, to the graph's precision: Kernel SHAP scores a row inside its 4,033-row batch
    # of coalitions, and onnxruntime's float32 MatMul may round a row by the batch's shape (Keras: 6.6e-8 relative
    # on one machine; the JAX graph is float64). ImportModel's batch check holds imported graphs to the same bound.
    assert_scores_close(r.anomaly_scores, client.detect(ref, X).anomaly_scores, rtol=spec["rtol"])
    # The base value is the mean score of the background (the reference rows), as the framework scores them.
    np.testing.assert_allclose(r.base_values, data["shapley_base"], rtol=spec["rtol"])
    # With every coalition evaluated these are the exact Shapley values: those the framework computed by the
    # definition, up to the precision of the scores they are made of (φ_j is a weighted sum of differences of mean
    # scores, weights summing to 1: |Δφ| ≤ 2 max|Δscore|; measured 1.5e-8 × the largest score for Keras, 5e-16 × it
    # for JAX).
    scale = np.abs(data["scores"]).max()
    np.testing.assert_allclose(r.contributions, data["shapley"], rtol=0, atol=spec["rtol"] * scale)
    # The planted outliers' attributions put them above the base value: their largest contribution is positive.
    assert (r.contributions[-3:].max(axis=1) > 0).all()


def _rows(X: np.ndarray) -> common_pb2.Matrix:
    return to_matrix(X)[0]


# (case, graph, ImportModelRequest fields, message): what a user of tf2onnx or jax2onnx gets wrong. Every request
# has the exporter's 64 reference rows unless the case gives its own.
BAD_IMPORTS = [
    ("reference rows narrower than the graph's input", "keras_ae",
     dict(score_output="score", reference_rows=_rows(np.zeros((10, 5)))),
     "reference_rows: expected 6 columns (the model's feature count), got 5"),
    ("the autoencoder's reconstruction as the score", "keras_ae", dict(score_output="reconstruction"),
     "score_output 'reconstruction': expected one score per row (128 for 128 probe rows), got 768 values"),
    ("two outputs and no score_output", "keras_ae", dict(),
     "score_output is required: the graph has 2 outputs: reconstruction, score"),
    ("an output name tf2onnx did not write", "keras_ae", dict(score_output="Identity:0"),
     "score_output: the graph has no output 'Identity:0'; it has: reconstruction, score"),
    ("feature names for another width", "keras_ae", dict(score_output="score", feature_names=FEATURES[:5]),
     "feature_names: 5 names, but input 'rows' has 6 columns"),
    ("a JAX function traced on int32 rows", "jax_int", dict(),
     "onnx_model: input 'x' must be float or double, got INT32"),
]


@pytest.mark.parametrize("case, graph, fields, message", BAD_IMPORTS, ids=[c[0] for c in BAD_IMPORTS])
def test_bad_imports_are_refused(server, exported, case, graph, fields, message):
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    _, data = load(exported, "keras_ae")
    fields = {"reference_rows": _rows(data["reference"]), **fields}
    request = model_pb2.ImportModelRequest(name="interop-bad", onnx_model=(exported / f"{graph}.onnx").read_bytes(),
                                           contamination=CONTAMINATION, **fields)
    with pytest.raises(grpc.RpcError) as e:
        stub.ImportModel(request, timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in e.value.details()
    assert server.alive()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModelVersion(model_pb2.GetModelVersionRequest(model="interop-bad"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_rows_of_another_width_are_refused(server, client, imported):
    ref, data, _ = imported
    with pytest.raises(grpc.RpcError) as e:
        client.detect(ref, data["score_rows"][:, :5])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected 6 columns (the model's feature count), got 5" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.explain(ref, data["explain_rows"][:, :4])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected 6 columns (the model's feature count), got 4" in e.value.details()
    assert server.alive()


def test_imported_with_a_threshold_alone_has_no_explanation(server, client, exported):
    graph, data = load(exported, "jax_distance")
    card = client.import_model("interop-no-reference", graph, threshold=float(np.median(data["scores"])))
    served = client.detect(f"{card.name}@{card.version}", data["score_rows"]).anomaly_scores
    assert_scores_close(served, data["scores"], rtol=BATCH_TOLERANCE)
    with pytest.raises(grpc.RpcError) as e:
        client.explain(f"{card.name}@{card.version}", data["explain_rows"])
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert NO_BACKGROUND in e.value.details()
    assert server.alive()
