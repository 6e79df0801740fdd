"""The model store on S3-compatible object storage (or any fsspec URL), shared by several server processes.

The keys are LocalStore's (pynomaly.store.base), under the URL's prefix (s3://bucket/prefix/...).

Object storage has no rename and no directories, only whole-object PUTs and conditional writes. How each guarantee
holds with them:

- No half-written version is ever visible. A version exists when its manifest.json does: versions(), resolve() and
  model_names() look for manifests only, and a writer PUTs model.onnx and explain.npz first, the manifest last. A
  crash leaves objects without a manifest: invisible, and removed by sweep_staging() once an hour old (younger ones
  may be another process's write in progress).
- Two writers never get the same number, and numbers are never reused. A writer claims n by creating
  versions/<n>/model.onnx with `If-None-Match: *` (s3fs `pipe_file(mode="create")`); the loser gets 412 and tries
  n + 1. The claim has to be the first object: with only the manifest conditional, the loser's unconditional
  model.onnx PUT could replace the winner's graph before the loser learns it lost. The manifest is conditional too,
  and just before it the writer checks for a tombstone deleted/<n>, in case n was created and deleted by others
  between its listing and its claim. delete_version writes the tombstone before it removes anything, and candidates
  start above every number that has an object or a tombstone, so a crashed write burns its number as well.
- aliases.json and job records are replaced whole (a PUT is atomic per object). aliases.json is also
  compare-and-swap on S3: the new document is PUT with `If-Match: <ETag of what was read>` (`If-None-Match: *` for
  the first) and redone on 412, so two processes moving different aliases at once lose neither change.
- Manifests are cached for good (versions are immutable). Listings, aliases and "version n exists" are cached for
  `cache_ttl` seconds (default 1 s): a version created or deleted, or an alias moved, by another process is seen
  here at most that late; this process's own writes are seen at once.

What resolve() sends to the store, at most once per cache_ttl per model (errors add one LIST to tell "no such
model" from "no such version/alias"):

    name@3      one GET of the manifest (a few KB; a HEAD would cost the same), never a LIST
    name:alias  one GET of aliases.json
    name        one LIST of models/<name>/ (1,000 keys a page: about 300 versions)

Endpoint and credentials: the filesystem reads the standard AWS configuration (botocore's): AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3 for an S3-compatible server, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
AWS_DEFAULT_REGION, AWS_PROFILE and ~/.aws/config, or the instance/pod role. `storage_options` go to
the fsspec filesystem and override them (s3fs: endpoint_url, key, secret, token, client_kwargs={"region_name": ...}).

Caveats: conditional PUTs are atomic on AWS S3; an S3-compatible server that ignores If-None-Match / If-Match
silently loses the two-writer guarantees (check yours). moto honours both headers but checks them in Python without
a lock, a window that tests have not hit. Other fsspec backends (memory:// included) implement mode="create" as
exists-then-write and get no If-Match: one writer at a time there. A conditional PUT retried after a lost response
can find its own object: for the manifest that is recognised (same bytes); for model.onnx the number is skipped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import numpy as np

from pynomaly.errors import FailedPrecondition, unknown_alias, unknown_job, unknown_version
from pynomaly.refs import ModelRef, check_alias, is_digits
from pynomaly.store import base

CACHE_TTL_S = 1.0
# A version without a manifest this old is a crashed write, not one in progress: sweep_staging removes it.
ABANDONED_AFTER_S = 3600.0
# Compare-and-swap retries on aliases.json before giving up (each lost round means another writer won one).
ALIAS_TRIES = 20


def _lost_race(e: Exception) -> bool:
    """A conditional PUT refused: 412 (s3fs raises FileExistsError for If-None-Match, OSError for If-Match) or 409
    (S3 refuses one of two concurrent conditional writes to a key with ConditionalRequestConflict)."""
    if isinstance(e, FileExistsError):
        return True
    response = getattr(e.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")


def _version_file(parts: list[str]) -> tuple[str, int, str] | None:
    """(name, version, file) of a key models/<name>/versions/<n>/<file>, as parts; None for any other key."""
    if len(parts) == 5 and parts[0] == "models" and parts[2] == "versions" and is_digits(parts[3]):
        return parts[1], int(parts[3]), parts[4]
    return None


class ObjectStore(base.VersionFiles):
    """Model versions, aliases and training-job records under one fsspec URL (a ModelStore and a JobStore; batch
    job records: `batch_jobs`). Safe for many writer processes on S3."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, cache_ttl: float = CACHE_TTL_S):
        # A listing cache in the filesystem would hide other processes' writes for as long as it lives: ours (below)
        # is bounded by cache_ttl instead.
        options = {"use_listings_cache": False, **(storage_options or {})}
        try:
            self._fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as e:
            raise ImportError(f"the model store {url}: {e} (for s3://, install pynomaly[s3])") from e
        self.url = url
        self._root = root.rstrip("/")
        self._s3 = "s3" in self._fs.protocol
        # s3fs HEADs an object before reading it, to choose between one GET and concurrent ranged GETs (and follows
        # a HEAD that misses with a LIST): small objects are read with one GET instead.
        self._one_get: dict[str, Any] = {"max_concurrency": 1} if self._s3 else {}
        self._ttl = cache_ttl
        self._manifests: dict[tuple[str, int], dict[str, Any]] = {}
        # name -> (expires, value); (name, version) -> expires. Only hits are cached: misses are error paths.
        self._versions: dict[str, tuple[float, list[int]]] = {}
        self._aliases: dict[str, tuple[float, dict[str, int]]] = {}
        self._present: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()  # this process's alias writers; If-Match orders them against other processes
        self._jobs = ObjectRecords(self, base.TRAINING_JOBS)
        self.batch_jobs = ObjectRecords(self, base.BATCH_JOBS)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def _key(self, *parts: str | int) -> str:
        return "/".join((self._root, *map(str, parts)))

    def _version_key(self, name: str, version: int, file: str) -> str:
        return self._key("models", name, "versions", version, file)

    def _list(self, *parts: str) -> list[list[str]]:
        """Every key under models/... or jobs/..., as path parts relative to the root (one LIST a 1,000 keys)."""
        start = len(self._root) + 1
        return [key[start:].split("/") for key in self._fs.find(self._key(*parts))]

    def _fresh(self, expires: float) -> bool:
        return time.monotonic() < expires

    def _forget(self, name: str) -> None:
        self._versions.pop(name, None)
        self._aliases.pop(name, None)

    def sweep_staging(self, older_than: float = ABANDONED_AFTER_S) -> None:
        """Remove versions a crashed writer left without a manifest, once `older_than` seconds old; their numbers
        stay taken (a tombstone is written first)."""
        orphans: dict[tuple[str, int], list[str]] = {}
        for parts in self._list("models"):
            if found := _version_file(parts):
                orphans.setdefault(found[:2], []).append(found[2])
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        for (name, version), files in orphans.items():
            keys = [self._version_key(name, version, f) for f in files]
            if base.MANIFEST_FILE in files or any(self._fs.modified(k) > cutoff for k in keys):
                continue
            self._fs.pipe_file(self._key("models", name, "deleted", version), b"")
            self._fs.rm(keys)

    # --- versions ---

    def _numbers(self, name: str) -> tuple[list[int], set[int]]:
        """(versions with a manifest, every number taken: by an object of a version or by a tombstone)."""
        complete, taken = [], set()
        for parts in self._list("models", name):
            if found := _version_file(parts):
                taken.add(found[1])
                if found[2] == base.MANIFEST_FILE:
                    complete.append(found[1])
            elif len(parts) == 4 and parts[2] == "deleted" and is_digits(parts[3]):
                taken.add(int(parts[3]))
        return sorted(complete), taken

    def check(self) -> None:
        """Raise unless the storage answers: S3 a HEAD of the bucket (a listing of a deleted bucket's prefix comes
        back empty, not as an error), other filesystems a listing of the models."""
        if self._s3:
            self._fs.info(self._root.split("/", 1)[0], refresh=True)
        else:
            self._fs.find(self._key("models"), maxdepth=1)

    def model_names(self) -> list[str]:
        # One listing of all models rather than one per model.
        return sorted({found[0] for parts in self._list("models")
                       if (found := _version_file(parts)) and found[2] == base.MANIFEST_FILE})

    def versions(self, name: str) -> list[int]:
        cached = self._versions.get(name)
        if cached is not None and self._fresh(cached[0]):
            return list(cached[1])
        versions = self._numbers(name)[0]
        self._versions[name] = (time.monotonic() + self._ttl, versions)
        return versions

    def create_version(self, name: str, onnx_model: bytes, manifest: dict[str, Any],
                       arrays: dict[str, np.ndarray] | None = None) -> int:
        """Write a new version and return its number (above every number ever taken); see the module docstring."""
        npz = base.encode_arrays(arrays) if arrays else None
        version = max(self._numbers(name)[1], default=0) + 1
        while True:
            try:
                self._fs.pipe_file(self._version_key(name, version, base.MODEL_FILE), onnx_model, mode="create")
            except Exception as e:
                if not _lost_race(e):
                    raise
                version += 1
                continue
            if npz is not None:
                self._fs.pipe_file(self._version_key(name, version, base.ARRAYS_FILE), npz)
            if self._has(self._key("models", name, "deleted", version)):
                written = [base.MODEL_FILE] + ([base.ARRAYS_FILE] if npz is not None else [])
                self._fs.rm([self._version_key(name, version, f) for f in written])
                version += 1
                continue
            document = {**manifest, "name": name, "version": version}
            key, body = self._version_key(name, version, base.MANIFEST_FILE), base.dumps(document)
            try:
                self._fs.pipe_file(key, body, mode="create")
            except Exception as e:
                if not _lost_race(e):
                    raise
                # A retried PUT (the response to the first was lost) finds our own manifest: n is ours after all.
                if self._get(key) != body:
                    version += 1  # whoever holds the manifest owns n now: leave its objects alone
                    continue
            self._manifests[(name, version)] = document
            self._present[(name, version)] = time.monotonic() + self._ttl
            self._forget(name)
            return version

    def _read(self, name: str, version: int, file: str) -> bytes:
        if file == base.MODEL_FILE:  # the large one: s3fs may read it in concurrent ranges
            return self._fs.cat_file(self._version_key(name, version, file))
        return self._get(self._version_key(name, version, file))

    def _get(self, key: str) -> bytes:
        return self._fs.cat_file(key, **self._one_get)

    def _has(self, key: str) -> bool:
        # One GET, not fs.exists(): s3fs follows a HEAD that misses with a LIST (is it a "directory"?).
        try:
            self._get(key)
        except FileNotFoundError:
            return False
        return True

    def _exists(self, name: str, version: int, cached: bool = True) -> bool:
        key = (name, version)
        if cached and self._fresh(self._present.get(key, 0.0)):
            return True
        try:
            # The manifest itself (a few KB): one GET, as cheap as a HEAD, and it fills the manifest cache.
            self._manifests[key] = json.loads(self._get(self._version_key(name, version, base.MANIFEST_FILE)))
        except FileNotFoundError:
            return False
        self._present[key] = time.monotonic() + self._ttl
        return True

    def has_version(self, name: str, version: int) -> bool:
        return self._exists(name, version)

    def delete_version(self, name: str, version: int) -> None:
        if not self._exists(name, version, cached=False):
            raise unknown_version(name, version)
        # Tombstone first: from here on no writer can take n, whatever happens next.
        self._fs.pipe_file(self._key("models", name, "deleted", version), b"")
        # The manifest next, alone: the version disappears in that one DELETE.
        self._fs.rm_file(self._version_key(name, version, base.MANIFEST_FILE))
        self._manifests.pop((name, version), None)
        self._present.pop((name, version), None)
        self._forget(name)
        self._update_aliases(name, lambda aliases: {a: v for a, v in aliases.items() if v != version})
        rest = [self._key(*parts) for parts in self._list("models", name, "versions", str(version))]
        if rest:
            self._fs.rm(rest)

    # --- aliases ---

    def aliases(self, name: str) -> dict[str, int]:
        cached = self._aliases.get(name)
        if cached is not None and self._fresh(cached[0]):
            return dict(cached[1])
        aliases = self._read_aliases(name, etag=False)[1]
        self._aliases[name] = (time.monotonic() + self._ttl, aliases)
        return dict(aliases)

    def _read_aliases(self, name: str, etag: bool = True) -> tuple[str | None, dict[str, int]]:
        """(ETag, aliases). The ETag (a HEAD) comes first: if the object changes before the GET, the If-Match PUT
        that follows fails and the change is redone, so an old ETag never guards a newer document."""
        key = self._key("models", name, base.ALIASES_FILE)
        try:
            tag = self._fs.info(key).get("ETag") if etag and self._s3 else None
            return tag, json.loads(self._get(key))
        except FileNotFoundError:
            return None, {}

    def _update_aliases(self, name: str, change: Callable[[dict[str, int]], dict[str, int]]) -> None:
        key = self._key("models", name, base.ALIASES_FILE)
        with self._lock:
            for _ in range(ALIAS_TRIES):
                etag, aliases = self._read_aliases(name)
                updated = change(dict(aliases))
                if updated == aliases:
                    return
                condition: dict[str, Any] = {}
                if self._s3:
                    condition = {"IfMatch": etag} if etag else {"mode": "create"}
                try:
                    self._fs.pipe_file(key, base.dumps(updated), **condition)
                except Exception as e:
                    # FileNotFoundError: If-Match on an object deleted meanwhile (only a wiped store does that).
                    if _lost_race(e) or isinstance(e, FileNotFoundError):
                        continue
                    raise
                self._aliases.pop(name, None)
                return
        raise FailedPrecondition(f"the aliases of model {name!r} changed {ALIAS_TRIES} times under this update: retry")

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        if not self._exists(name, version, cached=False):  # not the cache: another process may have deleted it
            base.resolve(self, ModelRef(name, version=version))  # raises NotFound naming what is missing
        self._update_aliases(name, lambda aliases: {**aliases, alias: version})

    def delete_alias(self, name: str, alias: str) -> None:
        def drop(aliases: dict[str, int]) -> dict[str, int]:
            if alias not in aliases:
                raise unknown_alias(name, alias)
            del aliases[alias]
            return aliases

        self._update_aliases(name, drop)

    # --- jobs ---

    def save_job(self, job: dict[str, Any]) -> None:
        self._jobs.save_job(job)

    def load_job(self, job_id: str) -> dict[str, Any]:
        return self._jobs.load_job(job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._jobs.list_jobs()

    def delete_job(self, job_id: str) -> None:
        self._jobs.delete_job(job_id)

    def size_bytes(self) -> int:
        """Bytes under models/ (one listing of every key: called when a version is about to be written)."""
        try:
            return int(self._fs.du(self._key("models"), total=True))
        except FileNotFoundError:
            return 0


class ObjectRecords:
    """Job records of one kind under one prefix of the store, one JSON object each (a JobStore)."""

    def __init__(self, store: ObjectStore, folder: str):
        self._store, self._folder, self._kind = store, folder, base.KINDS[folder]

    def save_job(self, job: dict[str, Any]) -> None:
        self._store._fs.pipe_file(self._store._key(self._folder, base.job_key(job["id"], self._kind)),
                                  base.dumps(job))

    def load_job(self, job_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._store._get(self._store._key(self._folder, base.job_key(job_id, self._kind))))
        except FileNotFoundError:
            raise unknown_job(self._kind, job_id) from None

    def list_jobs(self) -> list[dict[str, Any]]:
        store = self._store
        keys = [store._key(*parts) for parts in store._list(self._folder) if parts[-1].endswith(".json")]
        if not keys:
            return []
        jobs = []
        # One concurrent batch of GETs (s3fs); a record deleted since the listing is skipped.
        for data in store._fs.cat(keys, on_error="omit", **store._one_get).values():
            try:
                jobs.append(json.loads(data))
            except json.JSONDecodeError:
                continue
        return jobs

    def delete_job(self, job_id: str) -> None:
        try:
            self._store._fs.rm_file(self._store._key(self._folder, base.job_key(job_id, self._kind)))
        except FileNotFoundError:
            pass
