"""Reading tabular files: .csv (header row = feature names), .parquet, .npz (array "X").

Values come back as float64 (CSV's numbers, Parquet double or integer columns), or as float32 when the file holds
float32 and nothing wider (an .npz float32 array, Parquet whose columns are all float32): rows are sent, trained on
and scored in the precision the data has.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pynomaly.errors import InvalidArgument

SUFFIXES = (".csv", ".parquet", ".npz")


def read_table(path: str | Path, field: str = "data") -> tuple[np.ndarray, list[str]]:
    """Return (float64 or float32 matrix, feature names). Errors are InvalidArgument naming the file and the
    problem."""
    X, names, _ = read_labelled(path, field)
    return X, names


def read_labelled(path: str | Path, field: str = "data", label_column: str = "") -> tuple[np.ndarray, list[str],
                                                                                             np.ndarray | None]:
    """read_table, and with `label_column` the labels: that column of a CSV/Parquet file (not a feature), or that
    array of an .npz file (e.g. "y"); None without. The labels come back as read (pynomaly.labels checks them)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidArgument(f"{field}: {path.name}: unsupported file type {suffix or '(none)'!r}; "
                              f"use one of {', '.join(SUFFIXES)}")
    try:
        if suffix == ".npz":
            # Anything but a zip archive numpy would try to unpickle (and refuse, advising allow_pickle): never.
            with open(path, "rb") as f:
                is_zip = zipfile.is_zipfile(f)
            if not is_zip:
                raise InvalidArgument(f"{field}: {path.name} is not a valid .npz file (a zip archive of .npy "
                                      "arrays, as numpy.savez writes)")
            with np.load(path, allow_pickle=False) as npz:
                if "X" not in npz.files:
                    raise InvalidArgument(f"{field}: {path.name} has no array 'X' (it has: {', '.join(npz.files)})")
                X = np.asarray(npz["X"])
                if label_column and label_column not in npz.files:
                    raise InvalidArgument(f"label_column: {path.name} has no array {label_column!r} (it has: "
                                          f"{', '.join(npz.files)})", field="label_column")
                y = np.asarray(npz[label_column]) if label_column else None
            if X.ndim != 2:
                raise InvalidArgument(f"{field}: {path.name}: array 'X' must be 2-D, got shape {X.shape}")
            if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
                raise InvalidArgument(f"{field}: {path.name}: array 'X' must be numeric, got {X.dtype}")
            return X.astype(precision([X.dtype])), [f"f{i}" for i in range(X.shape[1])], y
        import pandas as pd

        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except InvalidArgument:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, ImportError) as e:
        if suffix == ".npz" and "pickle" in str(e):  # an object array: numpy's message advises allow_pickle
            raise InvalidArgument(f"{field}: {path.name}: array 'X' holds Python objects, not numbers") from None
        raise InvalidArgument(f"{field}: cannot read {path.name}: {e}") from None
    except Exception as e:  # pandas/pyarrow raise a zoo of parser errors
        raise InvalidArgument(f"{field}: cannot read {path.name}: {type(e).__name__}: {e}") from None
    y = None
    if label_column:
        if label_column not in frame.columns:
            raise InvalidArgument(f"label_column: {path.name} has no column {label_column!r}; its columns: "
                                  f"{', '.join(map(str, frame.columns))}", field="label_column")
        y = frame.pop(label_column).to_numpy()
    if frame.empty:
        raise InvalidArgument(f"{field}: {path.name} has no rows" if len(frame.columns) else
                              f"{field}: {path.name} has no columns")
    bad = [str(c) for c, t in frame.dtypes.items() if t.kind not in "biuf"]
    if bad:
        raise InvalidArgument(f"{field}: {path.name}: column {bad[0]!r} is not numeric "
                              f"({len(bad)} non-numeric column(s) in all)")
    return frame.to_numpy(dtype=precision(list(frame.dtypes))), [str(c) for c in frame.columns], y


def precision(dtypes: list[Any]) -> np.dtype:
    """The precision rows of these column dtypes travel in: float32 when every one is a float of at most 32 bits
    (numpy or pandas dtypes), else float64 (doubles, integers, unknown: None)."""
    narrow = bool(dtypes) and all(getattr(t, "kind", "") == "f" and getattr(t, "itemsize", 8) <= 4 for t in dtypes)
    return np.dtype("<f4") if narrow else np.dtype("<f8")
