"""ImportModel: an ONNX model trained elsewhere becomes a version, validated first; bad graphs are refused."""

import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pynomaly.cli import main
from pynomaly.v1 import model_pb2, model_pb2_grpc

RNG = np.random.default_rng(2)
TRAIN = RNG.normal(size=(500, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
MEAN, PRECISION = TRAIN.mean(axis=0), np.linalg.inv(np.cov(TRAIN, rowvar=False))


def mahalanobis(X):
    d = X - MEAN
    return np.einsum("ij,jk,ik->i", d, PRECISION, d)


def graph(nodes, inputs, outputs, inits=(), opset=17):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                             opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _t(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


# A Mahalanobis detector "trained elsewhere": double input of any name, [N, 1] output, a second output.
MAHALANOBIS = graph(
    [helper.make_node("Sub", ["rows", "mean"], ["d"]), helper.make_node("MatMul", ["d", "prec"], ["dp"]),
     helper.make_node("Mul", ["dp", "d"], ["sq"]), helper.make_node("ReduceSum", ["sq", "axes"], ["distance"],
                                                                   keepdims=1),
     helper.make_node("Neg", ["distance"], ["log_likelihood"])],
    [_t("rows", TensorProto.DOUBLE, ["batch", 3])],
    [_t("distance", TensorProto.DOUBLE, ["batch", 1]), _t("log_likelihood", TensorProto.DOUBLE, ["batch", 1])],
    [onnx.numpy_helper.from_array(MEAN, "mean"), onnx.numpy_helper.from_array(PRECISION, "prec"),
     onnx.numpy_helper.from_array(np.array([1], np.int64), "axes")],
)


def test_import_with_threshold_and_detect(client):
    card = client.import_model("imported", MAHALANOBIS, score_output="distance", threshold=9.0,
                               feature_names=["a", "b", "c"], description="from numpy")
    assert (card.algorithm, card.threshold, list(card.feature_names)) == ("onnx", 9.0, ["a", "b", "c"])
    X = np.vstack([TRAIN[:20], [[8.0, -8.0, 8.0]]])
    result = client.detect(f"imported@{card.version}", X)
    # A double graph gets the float64 rows as sent: its float64 scores come back.
    np.testing.assert_allclose(result.anomaly_scores, mahalanobis(X), rtol=1e-12)
    assert result.is_anomaly[-1] and result.threshold == 9.0
    # float32 rows: the same graph on the float32 values, scores rounded to float32.
    result32 = client.detect(f"imported@{card.version}", X.astype(np.float32))
    np.testing.assert_array_equal(result32.anomaly_scores,
                                  mahalanobis(X.astype(np.float32).astype(np.float64)).astype(np.float32))


# The same detector as a float graph: rows reach it rounded to float32, its float32 score is served as float64.
MAHALANOBIS_FLOAT = graph(
    [helper.make_node("Sub", ["rows", "mean"], ["d"]), helper.make_node("MatMul", ["d", "prec"], ["dp"]),
     helper.make_node("Mul", ["dp", "d"], ["sq"]), helper.make_node("ReduceSum", ["sq", "axes"], ["distance"],
                                                                   keepdims=0)],
    [_t("rows", TensorProto.FLOAT, ["batch", 3])], [_t("distance", TensorProto.FLOAT, ["batch"])],
    [onnx.numpy_helper.from_array(MEAN.astype(np.float32), "mean"),
     onnx.numpy_helper.from_array(PRECISION.astype(np.float32), "prec"),
     onnx.numpy_helper.from_array(np.array([1], np.int64), "axes")],
)


def test_import_a_float_graph_and_detect_float64_rows(client):
    card = client.import_model("imported-float", MAHALANOBIS_FLOAT, threshold=9.0)
    X = TRAIN[:20] + 1e-9  # float64 values no float32 equals
    served = client.detect(f"imported-float@{card.version}", X).anomaly_scores
    assert served.dtype == np.float64
    rounded = client.detect(f"imported-float@{card.version}", X.astype(np.float32)).anomaly_scores
    np.testing.assert_array_equal(served, rounded)  # float32 scores of the float32 rows, either way
    np.testing.assert_allclose(served, mahalanobis(X.astype(np.float32).astype(np.float64)), rtol=1e-5)


def test_import_lower_is_anomalous_with_reference_rows(client):
    card = client.import_model("imported-ll", MAHALANOBIS, score_output="log_likelihood", lower_is_anomalous=True,
                               reference_rows=TRAIN, contamination=0.05)
    expected = np.percentile(mahalanobis(TRAIN), 95)  # reference rows travel as float64, as given
    assert card.threshold == pytest.approx(expected, rel=1e-12)
    assert card.contamination == pytest.approx(0.05)
    scores = client.detect("imported-ll", TRAIN).anomaly_scores
    np.testing.assert_allclose(scores, mahalanobis(TRAIN), rtol=1e-12)
    assert np.mean(scores > card.threshold) == pytest.approx(0.05, abs=0.005)


def test_import_through_the_cli(server, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(MAHALANOBIS)
    code = main(["models", "--server", server.address, "import", "--name", "imported-cli", "--onnx", str(path),
                 "--score-output", "distance", "--threshold", "7.5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "imported-cli@1"
    code = main(["models", "--server", server.address, "import", "--name", "x", "--onnx", str(tmp_path / "no.onnx"),
                 "--threshold", "1"])
    assert code == 2 and "no.onnx" in capsys.readouterr().err


FLOAT_IN = [_t("x", TensorProto.FLOAT, ["n", 3])]
BAD = [
    ("garbage bytes", dict(onnx_model=b"not onnx at all"), "onnx_model: not a valid ONNX model"),
    ("empty", dict(onnx_model=b""), "onnx_model is required"),
    ("unknown output", dict(score_output="nope"), "score_output: the graph has no output 'nope'; it has: distance"),
    ("two outputs, none named", dict(score_output=""), "score_output is required: the graph has 2 outputs"),
    ("no threshold", dict(threshold=None), "give a threshold, or reference_rows"),
    ("feature count", dict(feature_names=["a"]), "feature_names: 1 names, but input 'rows' has 3 columns"),
    ("two inputs", dict(onnx_model=graph([helper.make_node("Add", ["x", "y"], ["s"])],
                                         [*FLOAT_IN, _t("y", TensorProto.FLOAT, ["n", 3])],
                                         [_t("s", TensorProto.FLOAT, ["n", 3])]), score_output="s"),
     "the graph must have exactly one input (the rows), it has 2: x, y"),
    ("int input", dict(onnx_model=graph([helper.make_node("Identity", ["x"], ["s"])],
                                        [_t("x", TensorProto.INT64, ["n", 3])], [_t("s", TensorProto.INT64, ["n", 3])]),
                       score_output="s"), "input 'x' must be float or double, got INT64"),
    ("3-D input", dict(onnx_model=graph([helper.make_node("Identity", ["x"], ["s"])],
                                        [_t("x", TensorProto.FLOAT, ["n", 3, 2])],
                                        [_t("s", TensorProto.FLOAT, ["n", 3, 2])]),
                       score_output="s"), "input 'x' must be 2-D [rows, features], got 3 dimension(s)"),
    ("dynamic width without names", dict(onnx_model=graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, axes=[1])],
        [_t("x", TensorProto.FLOAT, ["n", "f"])], [_t("s", TensorProto.FLOAT, ["n"])], opset=11), score_output="s"),
     "feature_names: input 'x' has a dynamic width"),
    ("not one score per row", dict(onnx_model=graph([helper.make_node("Identity", ["x"], ["s"])], FLOAT_IN,
                                                    [_t("s", TensorProto.FLOAT, ["n", 3])]), score_output="s"),
     "score_output 's': expected one score per row"),
    ("non-finite scores", dict(onnx_model=graph(
        [helper.make_node("ReduceSum", ["x"], ["t"], keepdims=0, axes=[1]), helper.make_node("Log", ["t"], ["s"])],
        FLOAT_IN, [_t("s", TensorProto.FLOAT, ["n"])], opset=11), score_output="s"),
     "score_output 's': non-finite scores (NaN or inf) on probe rows"),
    ("batch-dependent", dict(onnx_model=graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=1, axes=[0]), helper.make_node("Sub", ["x", "m"], ["d"]),
         helper.make_node("ReduceSum", ["d"], ["s"], keepdims=0, axes=[1])],
        FLOAT_IN, [_t("s", TensorProto.FLOAT, ["n"])], opset=11), score_output="s"),
     "a row's score depends on the other rows of the batch"),
    ("non-finite threshold", dict(threshold=float("inf")), "threshold must be finite"),
    ("bad name", dict(name="a b"), "name 'a b' is invalid"),
]


@pytest.mark.parametrize("case, fields, message", BAD, ids=[c[0] for c in BAD])
def test_import_rejects(server, case, fields, message):
    stub = model_pb2_grpc.ModelServiceStub(server.channel)
    base = dict(name="bad-import", onnx_model=MAHALANOBIS, score_output="distance", threshold=1.0)
    base.update(fields)
    request = model_pb2.ImportModelRequest(**{k: v for k, v in base.items() if v is not None})
    with pytest.raises(grpc.RpcError) as e:
        stub.ImportModel(request, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in e.value.details()
    assert server.alive()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModelVersion(model_pb2.GetModelVersionRequest(model="bad-import"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_import_a_torch_module_through_the_sdk(client):
    import torch

    torch.manual_seed(0)

    class Distance(torch.nn.Module):  # a user's own detector: distance from a learned centre after a projection
        def __init__(self):
            super().__init__()
            self.project = torch.nn.Linear(3, 4)
            self.centre = torch.nn.Parameter(torch.randn(4))

        def forward(self, x):
            return ((self.project(x) - self.centre) ** 2).sum(dim=1)

    module = Distance().eval()
    card = client.import_torch("torch-module", module, 3, reference_rows=TRAIN, contamination=0.05)
    served = client.detect(f"torch-module@{card.version}", TRAIN[:50]).anomaly_scores
    with torch.no_grad():
        native = module(torch.from_numpy(TRAIN[:50].astype(np.float32))).numpy()
    np.testing.assert_allclose(served, native, rtol=1e-5, atol=1e-6)
