"""Checks every scored or trained matrix goes through, whatever transport it came by."""

from __future__ import annotations

import numpy as np

from pynomaly.errors import InvalidArgument


def check_rows(X: np.ndarray, field: str, n_features: int | None = None) -> np.ndarray:
    """Return X if it is a non-empty 2-D finite matrix of the expected width; else InvalidArgument naming `field`."""
    if X.ndim != 2:
        raise InvalidArgument(f"{field}: expected a 2-D matrix (rows × columns), got {X.ndim} dimension(s)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidArgument(f"{field}: the matrix is empty ({X.shape[0]} rows × {X.shape[1]} columns)")
    if n_features is not None and X.shape[1] != n_features:
        raise InvalidArgument(
            f"{field}: expected {n_features} columns (the model's feature count), got {X.shape[1]}"
        )
    finite = np.isfinite(X)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise InvalidArgument(
            f"{field}: row {r} column {c} is {X[r, c]}; values must be finite (no NaN or inf)"
            + (f" — {int((~finite).sum())} non-finite values in all" if (~finite).sum() > 1 else "")
        )
    return X
