"""Where model versions, aliases and job records live: a local directory (`LocalStore`) or S3-compatible object
storage (`ObjectStore`), chosen by `open_store(uri)`. `base` holds what they share: the layout, the protocols and
`resolve`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pynomaly.store.base import ARRAYS_FILE, MANIFEST_FILE, MODEL_FILE, JobStore, ModelStore, resolve
from pynomaly.store.local import LocalStore

if TYPE_CHECKING:
    from pynomaly.store.object import ObjectStore

__all__ = ["ARRAYS_FILE", "MANIFEST_FILE", "MODEL_FILE", "JobStore", "LocalStore", "ModelStore", "open_store",
           "resolve"]


def open_store(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> LocalStore | ObjectStore:
    """A plain path or file:// URL: LocalStore. Any other fsspec URL (s3://bucket/prefix, memory://name): ObjectStore,
    with `storage_options` passed to the fsspec filesystem (see store/object.py for S3 endpoint and credentials).
    Both are a ModelStore and a JobStore."""
    uri = os.fspath(uri)
    if "://" not in uri or uri.startswith("file://"):
        return LocalStore(uri.removeprefix("file://"))
    # Imported here: fsspec (and s3fs for s3://, the `s3` extra) only for stores that need them.
    from pynomaly.store.object import ObjectStore

    try:
        return ObjectStore(uri, storage_options)
    except ValueError as e:  # fsspec: "Protocol not known: …"
        raise ValueError(f"store {uri!r}: {e} (a directory, or an fsspec URL such as s3://bucket/prefix)") from e
