"""Checks every scored or trained matrix goes through, whatever transport it came by; the precision a graph
takes rows in."""

from __future__ import annotations

from typing import Any

import numpy as np

from pynomaly.errors import InvalidArgument

# Rows may be float64, but their values stay within float32's range: every graph computes on such values in
# float64 without overflow (squares, kernels, sums of 1e38-sized values are finite), as it did when rows
# travelled as float32, and a float32 row is never out of range.
F32_MAX = float(np.finfo(np.float32).max)


def check_rows(X: np.ndarray, field: str, n_features: int | None = None) -> np.ndarray:
    """Return X if it is a non-empty 2-D finite matrix of the expected width, its values within float32's range;
    else InvalidArgument naming `field`."""
    if X.ndim != 2:
        raise InvalidArgument(f"{field}: expected a 2-D matrix (rows × columns), got {X.ndim} dimension(s)",
                              reason="MALFORMED_MATRIX")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidArgument(f"{field}: the matrix is empty ({X.shape[0]} rows × {X.shape[1]} columns)",
                              reason="EMPTY_INPUT")
    if n_features is not None and X.shape[1] != n_features:
        raise InvalidArgument(
            f"{field}: expected {n_features} columns (the model's feature count), got {X.shape[1]}",
            reason="WRONG_WIDTH",
        )
    ok = np.abs(X) <= F32_MAX if X.dtype == np.float64 else np.isfinite(X)
    if not ok.all():
        finite = np.isfinite(X)
        if not finite.all():
            r, c = np.argwhere(~finite)[0]
            raise InvalidArgument(
                f"{field}: row {r} column {c} is {X[r, c]}; values must be finite (no NaN or inf)"
                + (f" — {int((~finite).sum())} non-finite values in all" if (~finite).sum() > 1 else ""),
                reason="NON_FINITE_VALUE")
        r, c = np.argwhere(~ok)[0]
        raise InvalidArgument(
            f"{field}: row {r} column {c} is {X[r, c]:g}; values must be within float32's range (|x| ≤ {F32_MAX:g})"
            + (f" — {int((~ok).sum())} values out of range in all" if (~ok).sum() > 1 else ""),
            reason="NON_FINITE_VALUE")
    return X


_GRAPH_DTYPES: dict[str, np.dtype] = {"tensor(float)": np.dtype(np.float32), "tensor(double)": np.dtype(np.float64)}


def input_dtype(session: Any) -> np.dtype:
    """The dtype of the rows an onnxruntime session of a served graph takes: float64 for versions exported since
    rows travel as float64, float32 for the versions before (their graphs are served as they are)."""
    kind = session.get_inputs()[0].type
    if kind not in _GRAPH_DTYPES:
        raise ValueError(f"the graph's input is {kind}, not float or double")
    return _GRAPH_DTYPES[kind]
