"""The model registry and job records: the `ModelStore` protocol, its local-disk implementation, `open_store`.

Layout under the store root (ObjectStore, in object_store.py, uses the same keys on object storage):

    models/<name>/versions/<n>/model.onnx, manifest.json   immutable versions
    models/<name>/deleted/<n>                               tombstones: version numbers are never reused
    models/<name>/aliases.json                              {"production": 3}
    jobs/<id>.json                                          training-job records
    .staging/                                               versions being written

A version is written into `.staging/` and renamed into place in one `rename(2)`, so readers see all of it or
nothing, and a crash leaves at most garbage in `.staging/` (swept at start-up).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pynomaly.errors import NotFound
from pynomaly.refs import ModelRef, check_alias

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "explain.npz"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    _write_file(tmp, json.dumps(obj, indent=1, sort_keys=True).encode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ModelStore(Protocol):
    """What the server, the runtime and the job manager use: LocalStore (one directory) and ObjectStore (S3 etc.)."""

    def sweep_staging(self) -> None: ...
    def model_names(self) -> list[str]: ...
    def versions(self, name: str) -> list[int]: ...
    def create_version(self, name: str, onnx_model: bytes, manifest: dict[str, Any],
                       arrays: dict[str, np.ndarray] | None = None) -> int: ...
    def manifest(self, name: str, version: int) -> dict[str, Any]: ...
    def arrays(self, name: str, version: int) -> dict[str, np.ndarray]: ...
    def onnx_bytes(self, name: str, version: int) -> bytes: ...
    def resolve(self, ref: ModelRef) -> tuple[str, int]: ...
    def delete_version(self, name: str, version: int) -> None: ...
    def aliases(self, name: str) -> dict[str, int]: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def save_job(self, job: dict[str, Any]) -> None: ...
    def load_job(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(self) -> list[dict[str, Any]]: ...


def open_store(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> ModelStore:
    """A plain path or file:// URL: LocalStore. Any other fsspec URL (s3://bucket/prefix, memory://name): ObjectStore,
    with `storage_options` passed to the fsspec filesystem (see object_store.py for S3 endpoint and credentials)."""
    uri = os.fspath(uri)
    if "://" not in uri or uri.startswith("file://"):
        return LocalStore(uri.removeprefix("file://"))
    # Imported here: fsspec (and s3fs for s3://, the `s3` extra) only for stores that need them.
    from pynomaly.object_store import ObjectStore

    try:
        return ObjectStore(uri, storage_options)
    except ValueError as e:  # fsspec: "Protocol not known: …"
        raise ValueError(f"store {uri!r}: {e} (a directory, or an fsspec URL such as s3://bucket/prefix)") from e


class LocalStore:
    """Model versions, aliases and job records in one directory. Safe for one writer process."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._models = self.root / "models"
        self._jobs = self.root / "jobs"
        self._staging = self.root / ".staging"
        for d in (self._models, self._jobs, self._staging):
            d.mkdir(parents=True, exist_ok=True)
        self._manifests: dict[tuple[str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def sweep_staging(self) -> None:
        """Remove leftovers of writes a crash interrupted. Call at start-up, before serving."""
        for p in self._staging.iterdir():
            shutil.rmtree(p, ignore_errors=True)

    # --- versions ---

    def _versions_dir(self, name: str) -> Path:
        return self._models / name / "versions"

    def model_names(self) -> list[str]:
        return sorted(p.name for p in self._models.iterdir() if self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        try:
            entries = os.listdir(f"{self._models}/{name}/versions")
        except FileNotFoundError:
            return []
        return sorted(int(e) for e in entries if e.isdigit())

    def create_version(self, name: str, onnx_model: bytes, manifest: dict[str, Any],
                       arrays: dict[str, np.ndarray] | None = None) -> int:
        """Write a new version atomically and return its number (max of existing and deleted + 1)."""
        stage = self._staging / uuid.uuid4().hex
        stage.mkdir()
        try:
            _write_file(stage / MODEL_FILE, onnx_model)
            if arrays:
                buffer = io.BytesIO()
                np.savez(buffer, **arrays)
                _write_file(stage / ARRAYS_FILE, buffer.getvalue())
            versions = self._versions_dir(name)
            versions.mkdir(parents=True, exist_ok=True)
            tombstones = self._models / name / "deleted"
            while True:
                taken = self.versions(name)
                if tombstones.exists():
                    taken += [int(e) for e in os.listdir(tombstones) if e.isdigit()]
                version = max(taken, default=0) + 1
                _write_file(stage / MANIFEST_FILE, json.dumps({**manifest, "name": name, "version": version},
                                                              indent=1, sort_keys=True).encode())
                _fsync_dir(stage)
                try:
                    # rename(2) onto an existing non-empty directory fails: that is our version lock.
                    os.rename(stage, versions / str(version))
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue
                    raise
                _fsync_dir(versions)
                return version
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        key = (name, version)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached
        try:
            manifest = json.loads((self._versions_dir(name) / str(version) / MANIFEST_FILE).read_bytes())
        except FileNotFoundError:
            raise NotFound(f"model {name}@{version} not found") from None
        self._manifests[key] = manifest
        return manifest

    def arrays(self, name: str, version: int) -> dict[str, np.ndarray]:
        """The version's explain.npz arrays (loaded without pickle), or {} if it has none."""
        try:
            with np.load(self._versions_dir(name) / str(version) / ARRAYS_FILE, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except FileNotFoundError:
            return {}

    def onnx_bytes(self, name: str, version: int) -> bytes:
        try:
            return (self._versions_dir(name) / str(version) / MODEL_FILE).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"model {name}@{version} not found") from None

    def resolve(self, ref: ModelRef) -> tuple[str, int]:
        """Resolve a reference to (name, version); NotFound names what is missing."""
        if ref.version is not None:
            # os.path on strings, not pathlib: this runs on every Detect call.
            if not os.path.isdir(f"{self._models}/{ref.name}/versions/{ref.version}"):
                if not self.versions(ref.name):
                    raise NotFound(f"model {ref.name!r} not found")
                raise NotFound(f"model {ref.name!r} has no version {ref.version}")
            return ref.name, ref.version
        if ref.alias is not None:
            aliases = self.aliases(ref.name)
            if ref.alias not in aliases:
                if not self.versions(ref.name):
                    raise NotFound(f"model {ref.name!r} not found")
                raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
            return ref.name, aliases[ref.alias]
        versions = self.versions(ref.name)
        if not versions:
            raise NotFound(f"model {ref.name!r} not found")
        return ref.name, versions[-1]

    def delete_version(self, name: str, version: int) -> None:
        src = self._versions_dir(name) / str(version)
        if not src.is_dir():
            raise NotFound(f"model {name}@{version} not found")
        with self._lock:
            tombstones = self._models / name / "deleted"
            tombstones.mkdir(exist_ok=True)
            _write_file(tombstones / str(version), b"")
            trash = self._staging / f"deleted-{uuid.uuid4().hex}"
            os.rename(src, trash)
            self._manifests.pop((name, version), None)
            aliases = {a: v for a, v in self.aliases(name).items() if v != version}
            write_json_atomic(self._models / name / "aliases.json", aliases)
        shutil.rmtree(trash, ignore_errors=True)

    # --- aliases ---

    def aliases(self, name: str) -> dict[str, int]:
        try:
            return json.loads((self._models / name / "aliases.json").read_bytes())
        except FileNotFoundError:
            return {}

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        self.resolve(ModelRef(name, version=version))
        with self._lock:
            write_json_atomic(self._models / name / "aliases.json", {**self.aliases(name), alias: version})

    def delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            aliases = self.aliases(name)
            if alias not in aliases:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            del aliases[alias]
            write_json_atomic(self._models / name / "aliases.json", aliases)

    # --- jobs ---

    def save_job(self, job: dict[str, Any]) -> None:
        write_json_atomic(self._jobs / f"{job['id']}.json", job)

    def load_job(self, job_id: str) -> dict[str, Any]:
        if not job_id.replace("-", "").isalnum():
            raise NotFound(f"training job {job_id!r} not found")
        try:
            return json.loads((self._jobs / f"{job_id}.json").read_bytes())
        except FileNotFoundError:
            raise NotFound(f"training job {job_id!r} not found") from None

    def list_jobs(self) -> list[dict[str, Any]]:
        jobs = []
        for p in self._jobs.glob("*.json"):
            try:
                jobs.append(json.loads(p.read_bytes()))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
        return jobs
