"""Verification: is the served graph the detector? Score the same rows natively and with onnxruntime, compare, and
keep the result with the model. The rows are float64, as served; a graph that takes float32 rows (versions before
float64 rows, imported float graphs) is compared on the float32-rounded rows it sees.

One tolerance, one set of verification rows and one metric for every path that turns something into a served
graph: training (`pynomaly.training`), a user's torch module (`pynomaly.export.torch_module`), an imported ONNX
model's batch-invariance probe (`pynomaly.imports`), `make parity` and the export tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from pynomaly.rows import input_dtype
from pynomaly.runtime import session_options

# Served scores are float64, computed in float64 except where the library itself works in float32 (the torch
# networks: ~5e-7 relative). 1e-5 leaves room for those while catching any real divergence; measured errors are in
# tests/unit/export_checks.py (ACCEPTANCE).
TOLERANCE = 1e-5
SAMPLE_ROWS = 2000
SLOW_SAMPLE_ROWS = 256  # for references that score one row at a time (Algorithm.slow_reference)
SYNTHETIC_ROWS = 256
SCORE_OUTPUT, INPUT = "anomaly_score", "X"

__all__ = ["SAMPLE_ROWS", "SLOW_SAMPLE_ROWS", "SYNTHETIC_ROWS", "TOLERANCE", "Check", "check", "compare", "scores",
           "seen", "session", "verification_rows"]


def verification_rows(X: np.ndarray, seed: int = 0, sample: int = SAMPLE_ROWS) -> np.ndarray:
    """A sample of training rows plus synthetic rows up to half a range beyond each feature's bounds, float64."""
    rng = np.random.default_rng(seed)
    picked = X[rng.choice(len(X), size=min(len(X), sample), replace=False)]
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    synthetic = rng.uniform(lo - span / 2, hi + span / 2, size=(SYNTHETIC_ROWS, X.shape[1]))
    return np.vstack([picked, synthetic]).astype(np.float64)


def compare(served: np.ndarray, native: np.ndarray) -> tuple[float, float]:
    """(max abs error, max relative error); relative to |native|, floored at 1e-6 of the largest |native|."""
    abs_err = np.abs(np.asarray(served, dtype=np.float64) - native)
    scale = max(float(np.max(np.abs(native))), 1e-30)
    rel_err = abs_err / np.maximum(np.abs(native), 1e-6 * scale)
    return float(abs_err.max()), float(rel_err.max())


def session(graph: bytes | Any) -> ort.InferenceSession:
    """A one-thread CPU session of a graph (bytes or a ModelProto), configured as the server's are."""
    data = graph if isinstance(graph, bytes) else graph.SerializeToString()
    return ort.InferenceSession(data, session_options(1), providers=["CPUExecutionProvider"])


def seen(sess: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
    """X as the graph sees it, as float64: the native model scores these values (float32-rounded for a float graph)."""
    return np.asarray(X).astype(input_dtype(sess)).astype(np.float64)


def scores(sess: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
    """The graph's anomaly_score output for rows X (cast to the graph's input dtype), as float64."""
    return sess.run([SCORE_OUTPUT], {INPUT: np.ascontiguousarray(X, dtype=input_dtype(sess))})[0].astype(np.float64)


@dataclass(frozen=True)
class Check:
    """The outcome of one comparison, as stored in the model card's `export_check`."""

    rows: int
    max_abs_error: float
    max_rel_error: float
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_rel_error <= self.tolerance  # False for NaN as well

    def describe(self) -> str:
        return (f"max relative error {self.max_rel_error:.3g} (max abs {self.max_abs_error:.3g}) over {self.rows} "
                f"verification rows exceeds the tolerance {self.tolerance:g}")

    def record(self, libraries: str) -> dict[str, Any]:
        return {"rows": self.rows, "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
                "tolerance": self.tolerance, "libraries": libraries}


def check(served: np.ndarray, native: np.ndarray, tolerance: float = TOLERANCE) -> Check:
    """Compare served scores with the native reference on the same rows."""
    max_abs, max_rel = compare(served, native)
    return Check(len(native), max_abs, max_rel, tolerance)
