"""What every model store is: the layout of its keys, the two protocols, and the reference resolution they share.

Layout under the store root (a directory for LocalStore, a URL prefix for ObjectStore):

    models/<name>/versions/<n>/model.onnx, explain.npz, manifest.json   immutable versions
    models/<name>/deleted/<n>                                           tombstones: numbers are never reused
    models/<name>/aliases.json                                          {"production": 3}
    jobs/<id>.json                                                      training job records
    batch-jobs/<id>.json                                                batch scoring job records
    .staging/                                                           versions being written (LocalStore)

How each store keeps a half-written version invisible is in its own module (local.py: one rename(2); object.py:
the manifest is written last, and conditional PUTs).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any, Protocol

import numpy as np

from pynomaly.errors import (
    MODEL_VERSION,
    InvalidArgument,
    NotFound,
    Resource,
    unknown_alias,
    unknown_job,
    unknown_model,
    unknown_version,
)
from pynomaly.refs import ModelRef

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "explain.npz"
ALIASES_FILE = "aliases.json"


class ModelStore(Protocol):
    """Model versions and aliases: what the data plane, the runtime and the job manager use."""

    def sweep_staging(self) -> None: ...
    def check(self) -> None: ...  # raises unless the store can be read now (one cheap request): readiness
    def model_names(self) -> list[str]: ...
    def versions(self, name: str) -> list[int]: ...
    def has_version(self, name: str, version: int) -> bool: ...
    def create_version(self, name: str, onnx_model: bytes, manifest: dict[str, Any],
                       arrays: dict[str, np.ndarray] | None = None) -> int: ...
    def manifest(self, name: str, version: int) -> dict[str, Any]: ...
    def arrays(self, name: str, version: int) -> dict[str, np.ndarray]: ...
    def onnx_bytes(self, name: str, version: int) -> bytes: ...
    def delete_version(self, name: str, version: int) -> None: ...
    def aliases(self, name: str) -> dict[str, int]: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def size_bytes(self) -> int: ...  # bytes under models/: --max-store-mb


class JobStore(Protocol):
    """Job records of one kind, each one document replaced whole. Both stores are one for training jobs (under
    jobs/) and have another as `batch_jobs` (under batch-jobs/): a listing of one kind never sees the other."""

    def save_job(self, job: dict[str, Any]) -> None: ...
    def load_job(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(self) -> list[dict[str, Any]]: ...
    def delete_job(self, job_id: str) -> None: ...  # a missing record is no error: pruning may race a restart


class VersionFiles:
    """manifest / arrays / onnx_bytes of a version over one primitive of the store, `_read(name, version, file)`
    (FileNotFoundError when absent). Manifests are cached for good: versions are immutable."""

    _manifests: dict[tuple[str, int], dict[str, Any]]

    def _read(self, name: str, version: int, file: str) -> bytes:
        raise NotImplementedError

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        key = (name, version)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached
        try:
            manifest = json.loads(self._read(name, version, MANIFEST_FILE))
        except FileNotFoundError:
            raise unknown_version(name, version) from None
        self._manifests[key] = manifest
        return manifest

    def arrays(self, name: str, version: int) -> dict[str, np.ndarray]:
        """The version's explain.npz arrays (loaded without pickle), or {} if it has none."""
        try:
            return decode_arrays(self._read(name, version, ARRAYS_FILE))
        except FileNotFoundError:
            return {}

    def onnx_bytes(self, name: str, version: int) -> bytes:
        try:
            return self._read(name, version, MODEL_FILE)
        except FileNotFoundError:
            raise unknown_version(name, version) from None


def resolve(store: ModelStore, ref: ModelRef) -> tuple[str, int]:
    """Resolve a reference to (name, version) with the store's primitives; NotFound names what is missing."""
    if ref.version is not None:
        if store.has_version(ref.name, ref.version):
            return ref.name, ref.version
        missing = f"has no version {ref.version}"
    elif ref.alias is not None:
        version = store.aliases(ref.name).get(ref.alias)
        if version is not None:
            return ref.name, version
        missing = f"has no alias {ref.alias!r}"
    else:
        versions = store.versions(ref.name)
        if versions:
            return ref.name, versions[-1]
        missing = ""
    if not missing or not store.versions(ref.name):
        raise unknown_model(ref.name)
    if ref.alias is not None:
        raise unknown_alias(ref.name, ref.alias)
    raise NotFound(f"model {ref.name!r} {missing}", reason="UNKNOWN_VERSION",
                   resource=Resource(MODEL_VERSION, f"{ref.name}@{ref.version}"))


TRAINING_JOBS, BATCH_JOBS = "jobs", "batch-jobs"  # the records' folders under the store root
KINDS = {TRAINING_JOBS: "training job", BATCH_JOBS: "batch job"}  # how errors name a record of each


# The form ids are issued in (pynomaly.jobs, pynomaly.batch.jobs): a prefix and 16 hexadecimal digits.
JOB_IDS = {"training job": ("job-", re.compile(r"job-[0-9a-f]{16}")),
           "batch job": ("batch-", re.compile(r"batch-[0-9a-f]{16}"))}


def check_job_id(job_id: str, kind: str = "training job") -> str:
    """`job_id` if it has the form ids are issued in, else InvalidArgument: no other id is looked up, so none
    reaches a file or object name."""
    if not job_id:
        raise InvalidArgument("id is required", reason="INVALID_REFERENCE", field="id")
    prefix, form = JOB_IDS[kind]
    if not form.fullmatch(job_id):
        shown = repr(job_id[:40]) + (f"… ({len(job_id)} characters)" if len(job_id) > 40 else "")
        raise InvalidArgument(f"id {shown} is not a {kind} id: expected {prefix!r} and 16 hexadecimal digits",
                              reason="INVALID_REFERENCE", field="id")
    return job_id


_RECORD_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


def job_key(job_id: str, kind: str = "training job") -> str:
    """The record's file name; an id that could not have been issued (a path, say) is simply not found. (The API
    refuses ids not of the issued form before this: check_job_id.)"""
    if not _RECORD_NAME.fullmatch(job_id):
        raise unknown_job(kind, job_id)
    return f"{job_id}.json"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode()


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    named: dict[str, Any] = dict(arrays)  # numpy's stub reads **kwds as its own keyword arguments
    np.savez(buffer, **named)
    return buffer.getvalue()


def decode_arrays(data: bytes) -> dict[str, np.ndarray]:
    """explain.npz's arrays, loaded without pickle."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
