"""The model store in one local directory (layout: pynomaly.store.base). Safe for one writer process.

A version is written into `.staging/` and renamed into place in one `rename(2)`, so readers see all of it or
nothing, and a crash leaves at most garbage in `.staging/` and temporary `.*.tmp` files beside the JSON files
(both swept at start-up).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from pynomaly.errors import unknown_alias, unknown_job, unknown_version
from pynomaly.refs import ModelRef, check_alias, is_digits
from pynomaly.store import base


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
    _write_file(tmp, base.dumps(obj))
    os.replace(tmp, path)
    _fsync_dir(path.parent)

# versions(): a listing of a directory that changed less than this long ago is read again on the next call.
SETTLED_S = 2.0


class LocalRecords:
    """Job records of one kind in one directory, one JSON file each (a JobStore)."""

    def __init__(self, directory: Path):
        self._dir = directory
        self._kind = base.KINDS[directory.name]
        directory.mkdir(parents=True, exist_ok=True)

    def save_job(self, job: dict[str, Any]) -> None:
        write_json_atomic(self._dir / base.job_key(job["id"], self._kind), job)

    def load_job(self, job_id: str) -> dict[str, Any]:
        try:
            return json.loads((self._dir / base.job_key(job_id, self._kind)).read_bytes())
        except FileNotFoundError:
            raise unknown_job(self._kind, job_id) from None

    def list_jobs(self) -> list[dict[str, Any]]:
        jobs = []
        for p in self._dir.glob("*.json"):
            try:
                jobs.append(json.loads(p.read_bytes()))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
        return jobs

    def delete_job(self, job_id: str) -> None:
        (self._dir / base.job_key(job_id, self._kind)).unlink(missing_ok=True)


class LocalStore(base.VersionFiles):
    """Model versions, aliases and training-job records in one directory: a ModelStore and a JobStore. Batch
    job records: `batch_jobs`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._models = self.root / "models"
        self._staging = self.root / ".staging"
        for d in (self._models, self._staging):
            d.mkdir(parents=True, exist_ok=True)
        self._jobs = LocalRecords(self.root / base.TRAINING_JOBS)
        self.batch_jobs = LocalRecords(self.root / base.BATCH_JOBS)
        self._manifests: dict[tuple[str, int], dict[str, Any]] = {}
        self._listings: dict[str, tuple[tuple[int, int, int], list[int]]] = {}  # versions(): name -> (stat, list)
        self._lock = threading.Lock()

    def sweep_staging(self) -> None:
        """Remove leftovers of writes a crash interrupted. Call at start-up, before serving."""
        for p in self._staging.iterdir():
            shutil.rmtree(p, ignore_errors=True)
        # write_json_atomic's temporary files (aliases, job records) that a kill left before their rename.
        for pattern in ("models/*/.*.tmp", f"{base.TRAINING_JOBS}/.*.tmp", f"{base.BATCH_JOBS}/.*.tmp"):
            for p in self.root.glob(pattern):
                p.unlink(missing_ok=True)

    # --- versions ---

    def _versions_dir(self, name: str) -> Path:
        return self._models / name / "versions"

    def check(self) -> None:
        """Raise OSError unless the models directory can be listed (an unmounted or vanished volume)."""
        os.listdir(self._models)

    def model_names(self) -> list[str]:
        return sorted(p.name for p in self._models.iterdir() if self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        """The version numbers, ascending. Detect without a version resolves the latest on every call: a listing
        is reused while the directory's (mtime, inode, link count) stays the same, since a version's directory is
        renamed in or out (a stat, not a listdir and a sort). A listing read within SETTLED_S of the directory's last
        change is not kept: with coarse timestamps a second change could fall in the same tick. Other processes'
        changes (serve --workers) are seen on the next call, as before."""
        path = f"{self._models}/{name}/versions"
        try:
            st = os.stat(path)
            key = (st.st_mtime_ns, st.st_ino, st.st_nlink)
            kept = self._listings.get(name)
            if kept is not None and kept[0] == key:
                return list(kept[1])
            entries = os.listdir(path)
        except FileNotFoundError:
            self._listings.pop(name, None)
            return []
        found = sorted(int(e) for e in entries if is_digits(e))
        if time.time() - st.st_mtime > SETTLED_S:  # the listing is at least as new as the stat: never stale
            self._listings[name] = (key, found)
        return list(found)

    def create_version(self, name: str, onnx_model: bytes, manifest: dict[str, Any],
                       arrays: dict[str, np.ndarray] | None = None) -> int:
        """Write a new version atomically and return its number (max of existing and deleted + 1)."""
        stage = self._staging / uuid.uuid4().hex
        stage.mkdir()
        try:
            _write_file(stage / base.MODEL_FILE, onnx_model)
            if arrays:
                _write_file(stage / base.ARRAYS_FILE, base.encode_arrays(arrays))
            versions = self._versions_dir(name)
            versions.mkdir(parents=True, exist_ok=True)
            tombstones = self._models / name / "deleted"
            while True:
                taken = self.versions(name)
                if tombstones.exists():
                    taken += [int(e) for e in os.listdir(tombstones) if is_digits(e)]
                version = max(taken, default=0) + 1
                _write_file(stage / base.MANIFEST_FILE, base.dumps({**manifest, "name": name, "version": version}))
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

    def size_bytes(self) -> int:
        total = 0
        for folder, _, files in os.walk(self._models):
            for f in files:
                try:
                    total += os.stat(os.path.join(folder, f)).st_size
                except FileNotFoundError:  # deleted meanwhile
                    continue
        return total

    def _read(self, name: str, version: int, file: str) -> bytes:
        return (self._versions_dir(name) / str(version) / file).read_bytes()

    def has_version(self, name: str, version: int) -> bool:
        # os.path on strings, not pathlib: this runs on every Detect call.
        return os.path.isdir(f"{self._models}/{name}/versions/{version}")

    def delete_version(self, name: str, version: int) -> None:
        src = self._versions_dir(name) / str(version)
        if not src.is_dir():
            raise unknown_version(name, version)
        with self._lock:
            tombstones = self._models / name / "deleted"
            tombstones.mkdir(exist_ok=True)
            _write_file(tombstones / str(version), b"")
            trash = self._staging / f"deleted-{uuid.uuid4().hex}"
            os.rename(src, trash)
            self._manifests.pop((name, version), None)
            aliases = {a: v for a, v in self.aliases(name).items() if v != version}
            write_json_atomic(self._models / name / base.ALIASES_FILE, aliases)
        shutil.rmtree(trash, ignore_errors=True)

    # --- aliases ---

    def aliases(self, name: str) -> dict[str, int]:
        try:
            return json.loads((self._models / name / base.ALIASES_FILE).read_bytes())
        except FileNotFoundError:
            return {}

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        base.resolve(self, ModelRef(name, version=version))
        with self._lock:
            write_json_atomic(self._models / name / base.ALIASES_FILE, {**self.aliases(name), alias: version})

    def delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            aliases = self.aliases(name)
            if alias not in aliases:
                raise unknown_alias(name, alias)
            del aliases[alias]
            write_json_atomic(self._models / name / base.ALIASES_FILE, aliases)

    # --- jobs ---

    def save_job(self, job: dict[str, Any]) -> None:
        self._jobs.save_job(job)

    def load_job(self, job_id: str) -> dict[str, Any]:
        return self._jobs.load_job(job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._jobs.list_jobs()

    def delete_job(self, job_id: str) -> None:
        self._jobs.delete_job(job_id)
