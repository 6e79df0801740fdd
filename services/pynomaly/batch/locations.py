"""Where a batch job reads and writes: a local path under one of the server's roots, or an object-storage URL.

- Local paths: "file:///abs/path", "/abs/path" or "rel/path" (relative to the root). Symlinks and ".." are resolved
  first; a path that lands outside its root is PERMISSION_DENIED. Inputs live under `--data-root`, outputs under
  `--output-root`; without the root, that side takes no local paths (FAILED_PRECONDITION).
- Object storage: "s3://bucket/key", through fsspec's s3fs with the credentials the model store uses (the standard
  AWS_* variables, pynomaly.store.object). An output inside the model store itself is PERMISSION_DENIED.

An output never appears under its final name before it is complete (`Output.commit`):
- local: written as ".NAME.JOB.partial" beside the target, fsynced, then moved into place in one os.replace; without
  `overwrite`, os.link + unlink instead, which fails rather than replace a file that appeared meanwhile;
- object storage: one multipart upload, parts sent as they fill, completed by the last call (If-None-Match: * when
  not overwriting), aborted on failure or cancel. A crash leaves a partial file or an incomplete upload, never a
  final object: `discard_partial` removes them when the server restarts.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pynomaly.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied

FORMATS = (".csv", ".parquet")
OBJECT_SCHEMES = ("s3",)
PART_BYTES = 16 << 20  # multipart upload part size: the most an output holds in memory before it is sent
READ_BLOCK_BYTES = 8 << 20  # object-storage reads: one ranged GET this size at a time


@dataclass(frozen=True)
class Location:
    """A resolved input or output: `path` is absolute on local disk, or "bucket/key" when `fs` is set."""

    uri: str  # as the client gave it (messages quote it)
    path: str
    fs: Any = None  # the fsspec filesystem of an object-storage URL; None: local disk

    @property
    def local(self) -> bool:
        return self.fs is None

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.path)[1].lower()

    @property
    def url(self) -> str:
        """A URL naming this file whichever side it is on (s3://bucket/key or the absolute path)."""
        return self.path if self.local else f"s3://{self.path}"

    def open_read(self) -> Any:
        """What pyarrow reads: the path itself (its own native I/O) or an fsspec file."""
        if self.local:
            return self.path
        return self.fs.open(self.path, "rb", block_size=READ_BLOCK_BYTES, cache_type="readahead")

    def arrow_filesystem(self) -> Any:
        """A pyarrow filesystem for the path (Ray Data's readers take one)."""
        import pyarrow.fs

        if self.local:
            return pyarrow.fs.LocalFileSystem()
        return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(self.fs))


def _object_fs(uri: str, field: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(uri, use_listings_cache=False)
    except ImportError as e:
        raise FailedPrecondition(f"{field}: this server cannot reach object storage ({e}); install pynomaly[s3]") \
            from None


def _locate(uri: str, root: Path | None, field: str, flag: str) -> Location:
    if not uri:
        raise InvalidArgument(f"{field} is required")
    if "\0" in uri:
        raise InvalidArgument(f"{field}: {uri!r} contains a NUL character")
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in OBJECT_SCHEMES:
        fs, path = _object_fs(uri, field)
        if "/" not in path.strip("/"):
            raise InvalidArgument(f"{field}: {uri!r} names a bucket, not an object (s3://bucket/key)")
        return Location(uri, path, fs)
    if scheme not in ("", "file"):
        raise InvalidArgument(f"{field}: unsupported scheme in {uri!r}; use a path under the server's {flag} "
                              f"(plain or file://) or s3://bucket/key")
    if root is None:
        raise FailedPrecondition(f"{field}: this server has no {flag}, so it takes no local paths; start it with "
                                 f"{flag} DIR, or use s3://bucket/key")
    root = root.resolve()
    resolved = (root / uri.removeprefix("file://")).resolve()
    if not resolved.is_relative_to(root):
        raise PermissionDenied(f"{field}: {uri!r} is outside the server's {flag}")
    try:
        os.lstat(resolved)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:  # a name too long, say: no file can have it
        raise InvalidArgument(f"{field}: {uri!r}: {e.strerror}") from None
    return Location(uri, str(resolved))


def _check_format(location: Location, field: str) -> None:
    if location.suffix not in FORMATS:
        raise InvalidArgument(f"{field}: {location.uri!r}: unsupported file type {location.suffix or '(none)'!r}; "
                              f"use one of {', '.join(FORMATS)}")


def input_location(uri: str, root: Path | None) -> Location:
    """The input file, checked: inside its root, a file that exists, in a format we read."""
    field = "input_uri"
    location = _locate(uri, root, field, "--data-root")
    if location.local:
        if os.path.isdir(location.path):
            raise InvalidArgument(f"{field}: {uri!r} is a directory, not a file")
        if not os.path.exists(location.path):
            raise InvalidArgument(f"{field}: {uri!r} does not exist")
    else:
        try:
            info = location.fs.info(location.path)
        except FileNotFoundError:
            raise InvalidArgument(f"{field}: {uri!r} does not exist") from None
        except OSError as e:
            raise InvalidArgument(f"{field}: cannot read {uri!r}: {e}") from None
        if info.get("type") == "directory":
            raise InvalidArgument(f"{field}: {uri!r} is a directory, not a file")
    _check_format(location, field)
    if location.local:
        try:
            with open(location.path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise InvalidArgument(f"{field}: cannot read {uri!r}: {e.strerror}") from None
    return location


def output_location(uri: str, root: Path | None, overwrite: bool, store: str) -> Location:
    """The output file, checked: inside its root and not inside the model store `store` (a directory or URL), a
    format we write, not a directory, not existing unless `overwrite`, its directory (created if missing) writable."""
    field = "output_uri"
    location = _locate(uri, root, field, "--output-root")
    _check_format(location, field)
    if location.local:
        store_dir = Path(store.removeprefix("file://")).resolve() if "://" not in store or store.startswith(
            "file://") else None
        if store_dir is not None and Path(location.path).is_relative_to(store_dir):
            raise PermissionDenied(f"{field}: {uri!r} is inside the model store")
        if os.path.isdir(location.path):
            raise InvalidArgument(f"{field}: {uri!r} is a directory, not a file")
        if os.path.lexists(location.path) and not overwrite:
            raise AlreadyExists(f"{field}: {uri!r} already exists; set overwrite to replace it")
        try:
            os.makedirs(os.path.dirname(location.path), exist_ok=True)
        except OSError as e:
            raise _unwritable(field, uri, e) from None
    else:
        prefix = store.split("://", 1)[1].rstrip("/") + "/" if store.startswith("s3://") else None
        if prefix is not None and (location.path + "/").startswith(prefix):
            raise PermissionDenied(f"{field}: {uri!r} is inside the model store")
        bucket = location.path.split("/", 1)[0]
        try:
            if not location.fs.exists(bucket):
                raise InvalidArgument(f"{field}: bucket {bucket!r} does not exist")
            info = location.fs.info(location.path) if location.fs.exists(location.path) else None
        except OSError as e:
            raise _unwritable(field, uri, e) from None
        if info is not None and info.get("type") == "directory":
            raise InvalidArgument(f"{field}: {uri!r} is a directory, not a file")
        if info is not None and not overwrite:
            raise AlreadyExists(f"{field}: {uri!r} already exists; set overwrite to replace it")
    return location


def _unwritable(field: str, uri: str, e: OSError) -> Exception:
    if e.errno in (errno.EEXIST, errno.ENOTDIR):  # os.makedirs through a file
        return InvalidArgument(f"{field}: cannot write {uri!r}: a parent of it is a file, not a directory")
    text = f"{field}: cannot write {uri!r}: {e.strerror or e}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(text)
    return InvalidArgument(text)


# --- outputs written whole or not at all ---


class Output(Protocol):
    """An output file being written: `sink` for pyarrow, then exactly one of `commit` or `discard`."""

    sink: Any

    def commit(self) -> None: ...
    def discard(self) -> None: ...


def partial_path(path: str, job_id: str) -> str:
    """Where a local output is written before it is moved into place: hidden, beside the target, per job."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{job_id}.partial")


class LocalOutput:
    """A local output: the partial file is created here (proving the directory writable), filled through `sink`
    (its path, for pyarrow's own I/O), then fsynced and moved into place."""

    def __init__(self, location: Location, job_id: str, overwrite: bool):
        self._final = location.path
        self._overwrite = overwrite
        self._uri = location.uri
        self.sink = partial_path(location.path, job_id)
        try:
            os.close(os.open(self.sink, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except OSError as e:
            raise _unwritable("output_uri", location.uri, e) from None

    def commit(self) -> None:
        fd = os.open(self.sink, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._overwrite:
            os.replace(self.sink, self._final)
        else:
            try:
                os.link(self.sink, self._final)  # fails if the name exists: never replaces what appeared meanwhile
            except FileExistsError:
                self.discard()
                raise AlreadyExists(f"output_uri: {self._uri!r} appeared while the job ran; set overwrite to "
                                    "replace it") from None
            os.unlink(self.sink)
        directory = os.open(os.path.dirname(self._final), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self) -> None:
        try:
            os.unlink(self.sink)
        except FileNotFoundError:
            pass


class ObjectOutput:
    """An object-storage output: one multipart upload (s3fs with autocommit off), completed by `commit` only."""

    def __init__(self, location: Location, overwrite: bool):
        self._uri = location.uri
        # "xb": the completion carries If-None-Match: *, so it fails rather than replace an object that appeared.
        self.sink = location.fs.open(location.path, "wb" if overwrite else "xb", block_size=PART_BYTES,
                                     autocommit=False)

    def commit(self) -> None:
        self.sink.close()  # uploads the last part; with autocommit off, completes nothing
        try:
            self.sink.commit()
        except (FileExistsError, OSError) as e:
            self.sink.discard()
            if isinstance(e, FileExistsError) or "PreconditionFailed" in str(e):
                raise AlreadyExists(f"output_uri: {self._uri!r} appeared while the job ran; set overwrite to "
                                    "replace it") from None
            raise

    def discard(self) -> None:
        try:
            self.sink.discard()  # aborts the multipart upload, if one was started
        finally:
            self.sink.closed = True  # nothing left to flush: close() must not upload


def open_output(location: Location, job_id: str, overwrite: bool) -> Output:
    if location.local:
        return LocalOutput(location, job_id, overwrite)
    return ObjectOutput(location, overwrite)


def discard_partial(url: str, job_id: str, before: datetime | None = None) -> None:
    """Remove what a job cut off by a crash left: its partial file, or its incomplete multipart uploads (those
    started before `before`, default now) of the output key. `url` is `Location.url` of the output."""
    if "://" not in url:
        try:
            os.unlink(partial_path(url, job_id))
        except FileNotFoundError:
            pass
        return
    fs, path = _object_fs(url, "output_uri")
    bucket, key = path.split("/", 1)
    before = before or datetime.now(UTC)
    for upload in fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key).get("Uploads", []):
        if upload.get("Key") == key and upload.get("Initiated", before) < before:
            fs.abort_mpu(bucket, key, upload["UploadId"])
