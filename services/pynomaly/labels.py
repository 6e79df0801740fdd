"""Labels (1 = anomaly, 0 = normal) that come with training data: checked, and what they imply for contamination.

Labels never train a detector (every detector here is unsupervised): with algorithm "auto" they choose one, with
any algorithm the model card says how the served model ranks them, and an unset contamination becomes their share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pynomaly.errors import InvalidArgument

# Each class needs this many rows: a stratified held-out split keeps some of each on both sides.
MIN_PER_CLASS = 5


def check_labels(y: Any, rows: int, field: str = "labels") -> np.ndarray:
    """`y` as int8 0/1, one per row; InvalidArgument naming the problem otherwise."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidArgument(f"{field}: must be one label per row, got shape {y.shape}", field=field)
    if len(y) != rows:
        raise InvalidArgument(f"{field}: {len(y)} labels for {rows} rows", reason="WRONG_LABELS", field=field)
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise InvalidArgument(f"{field}: must be 0 (normal) or 1 (anomaly), got values of type {y.dtype}",
                              reason="WRONG_LABELS", field=field)
    bad = np.flatnonzero((y != 0) & (y != 1))
    if len(bad):
        raise InvalidArgument(f"{field}: must be 0 (normal) or 1 (anomaly), got {y[bad[0]]!r} at row {bad[0]} "
                              f"({len(bad)} such row(s))", reason="WRONG_LABELS", field=field)
    y = y.astype(np.int8)
    anomalies = int(y.sum())
    for count, what in ((anomalies, "anomalies (1)"), (len(y) - anomalies, "normal rows (0)")):
        if count < MIN_PER_CLASS:
            raise InvalidArgument(f"{field}: {count} {what}; labels need at least {MIN_PER_CLASS} of each class",
                                  reason="WRONG_LABELS", field=field)
    if anomalies > len(y) / 2:
        raise InvalidArgument(f"{field}: {anomalies} of {len(y)} rows are labelled anomalous; anomalies must be "
                              "at most half of the rows", reason="WRONG_LABELS", field=field)
    return y


def contamination(y: np.ndarray, given: float) -> float:
    """The job's contamination: the labels' anomaly share when none is given; a given one must agree with it
    within a factor of 2."""
    share = float(y.mean())
    if not given:
        return share
    low, high = share / 2, min(0.5, share * 2)
    if not low <= given <= high:
        raise InvalidArgument(
            f"contamination {given:g} is inconsistent with the labels: {share:.2%} of the rows are labelled "
            f"anomalous (give a contamination in [{low:.4g}, {high:.4g}], or none to use {share:.4g})",
            reason="INVALID_CONTAMINATION", field="contamination")
    return given


def wire_labels(labels: Any) -> list[int]:
    """Labels as CreateTrainingJobRequest.labels carries them (int32): ValueError for a value that no integer is,
    rather than truncating it; which values are valid the server says."""
    if labels is None:
        return []
    y = np.asarray(labels)
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        row = int(np.flatnonzero(y != np.round(y))[0])
        raise ValueError(f"labels: must be 0 (normal) or 1 (anomaly), got {y[row]!r} at row {row}")
    if y.ndim != 1:
        raise ValueError(f"labels: must be one label per row, got shape {y.shape}")
    return [int(v) for v in y]
