"""Checks every exported graph must pass, shared by the per-family export tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from pynomaly import verification


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x32: np.ndarray) -> np.ndarray:
    return sess.run(["anomaly_score"], {"X": x32})[0]


def assert_matches_native(algo: Any, det: Any, sess: ort.InferenceSession, x32: np.ndarray) -> None:
    """Served scores of float32 rows equal the native reference on the same rows (export check's metric)."""
    native = algo.score(det, x32.astype(np.float64))
    got = run(sess, x32)
    assert got.shape == (len(x32),) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    assert verification.compare(got, native)[1] <= 1e-5


def assert_batch_invariant(sess: ort.InferenceSession, x32: np.ndarray, picked: np.ndarray) -> None:
    """Each picked row scored alone equals its score inside the whole batch, bit for bit."""
    batch = run(sess, x32)
    alone = np.array([run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])


def assert_graph_contract(model: onnx.ModelProto, sess: ort.InferenceSession, n_features: int) -> None:
    """X float[N, F] in, anomaly_score float[N] out, and an empty batch scores to an empty vector."""
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", n_features]
    assert out.name == "anomaly_score" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert run(sess, np.zeros((0, n_features), np.float32)).shape == (0,)
