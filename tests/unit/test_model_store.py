"""The model-store contract, run against LocalStore (a tmp dir) and ObjectStore (moto's S3 server on 127.0.0.1)."""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from pynomaly.errors import InvalidArgument, NotFound
from pynomaly.refs import ModelRef
from pynomaly.store import LocalStore, ModelStore, open_store, resolve
from pynomaly.store.object import ObjectStore

BUCKET = "pynomaly-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server, reached the way a deployment reaches its S3: through the standard AWS variables."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            env.delenv(var, raising=False)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


@dataclass
class Backend:
    store: ModelStore
    reopen: Callable[[], ModelStore]  # another store on the same data, as another process would open it
    crash: Callable[[str], None]  # what a writer that died mid-version leaves behind


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    if request.param == "local":
        root = tmp_path / "store"

        def crash_local(name: str) -> None:
            (root / ".staging" / "crashed").mkdir()
            (root / ".staging" / "crashed" / "model.onnx").write_bytes(b"partial")

        return Backend(open_store(str(root)), lambda: LocalStore(root), crash_local)
    request.getfixturevalue("s3_endpoint")
    prefix = f"stores/{uuid.uuid4().hex}"
    url = f"s3://{BUCKET}/{prefix}"

    def crash_s3(name: str) -> None:
        # The graph and the arrays were written, the manifest never was.
        for file in ("model.onnx", "explain.npz"):
            boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/models/{name}/versions/1/{file}", Body=b"x")

    return Backend(open_store(url), lambda: ObjectStore(url), crash_s3)


@pytest.fixture
def store(backend):
    return backend.store


def _manifest(tag="x"):
    return {"tag": tag, "feature_names": ["a"]}


def test_open_store_picks_the_implementation(tmp_path):
    assert type(open_store(str(tmp_path / "a"))) is LocalStore
    assert type(open_store(f"file://{tmp_path}/b")) is LocalStore
    assert (tmp_path / "b" / "models").is_dir()
    assert type(open_store(f"memory://pynomaly-{uuid.uuid4().hex}")) is ObjectStore


def test_versions_are_numbered_and_immutable(store):
    assert store.create_version("m", b"one", _manifest("1")) == 1
    assert store.create_version("m", b"two", _manifest("2")) == 2
    store.create_version("m2", b"other", _manifest())  # a name that extends "m" stays apart from it
    assert store.versions("m") == [1, 2]
    assert store.model_names() == ["m", "m2"]
    assert store.onnx_bytes("m", 1) == b"one" and store.onnx_bytes("m", 2) == b"two"
    assert store.manifest("m", 2) == {"tag": "2", "feature_names": ["a"], "name": "m", "version": 2}
    assert resolve(store, ModelRef("m")) == ("m", 2)
    assert resolve(store, ModelRef("m", version=1)) == ("m", 1)


def test_deleted_version_numbers_are_not_reused(store):
    for _ in range(3):
        store.create_version("m", b"g", _manifest())
    store.delete_version("m", 3)
    assert store.versions("m") == [1, 2]
    assert store.create_version("m", b"g", _manifest()) == 4
    store.delete_version("m", 4)
    store.delete_version("m", 2)
    assert store.versions("m") == [1]
    assert store.create_version("m", b"g", _manifest()) == 5
    with pytest.raises(NotFound, match="^model 'm' has no version 3$"):
        resolve(store, ModelRef("m", version=3))
    with pytest.raises(NotFound, match="^model m@3 not found$"):
        store.delete_version("m", 3)


def test_deleting_a_version_leaves_the_others(store):
    # Version 1's keys are a prefix of version 10's and 11's ("versions/1" < "versions/10/..."): only 1 goes.
    for i in range(1, 12):
        store.create_version("m", f"graph {i}".encode(), _manifest())
    store.delete_version("m", 1)
    assert store.versions("m") == list(range(2, 12))
    assert [store.onnx_bytes("m", v) for v in (10, 11)] == [b"graph 10", b"graph 11"]


def test_arrays_round_trip(store):
    arrays = {"background": np.arange(6, dtype=np.float32).reshape(2, 3), "counts": np.array([1, 2], dtype=np.int64)}
    store.create_version("m", b"g", _manifest(), arrays)
    store.create_version("m", b"g", _manifest())
    got = store.arrays("m", 1)
    assert sorted(got) == ["background", "counts"]
    for key, value in arrays.items():
        assert got[key].dtype == value.dtype and np.array_equal(got[key], value)
    assert store.arrays("m", 2) == {}


def test_concurrent_writers_get_distinct_versions(backend):
    # One store object per writer, as separate processes (replicas) would have: nothing in-process orders them.
    got = []

    def write(store: ModelStore, i: int) -> None:
        got.append(store.create_version("m", f"graph {i}".encode(), _manifest(f"graph {i}")))

    threads = [threading.Thread(target=write, args=(backend.reopen(), i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))
    assert backend.reopen().versions("m") == list(range(1, 9))
    # Each version holds one writer's graph and manifest, never a loser's graph under a winner's manifest.
    store = backend.reopen()
    assert sorted(store.onnx_bytes("m", v) for v in got) == sorted(f"graph {i}".encode() for i in range(8))
    assert all(store.onnx_bytes("m", v) == store.manifest("m", v)["tag"].encode() for v in got)


def test_half_written_version_is_never_visible(backend):
    store = backend.store
    backend.crash("m")
    assert store.versions("m") == [] and store.model_names() == []
    with pytest.raises(NotFound, match="^model 'm' not found$"):
        resolve(store, ModelRef("m"))
    with pytest.raises(NotFound, match="^model 'm' not found$"):
        resolve(store, ModelRef("m", version=1))
    with pytest.raises(NotFound, match="^model m@1 not found$"):
        store.manifest("m", 1)
    store.sweep_staging()
    version = store.create_version("m", b"g", _manifest())
    assert store.versions("m") == [version]
    assert store.onnx_bytes("m", version) == b"g" and store.arrays("m", version) == {}


def test_aliases(store):
    store.create_version("m", b"g", _manifest())
    store.create_version("m", b"g", _manifest())
    store.set_alias("m", "production", 1)
    assert resolve(store, ModelRef("m", alias="production")) == ("m", 1)
    store.set_alias("m", "production", 2)
    store.set_alias("m", "staging", 1)
    assert store.aliases("m") == {"production": 2, "staging": 1}
    store.delete_alias("m", "staging")
    assert store.aliases("m") == {"production": 2}
    with pytest.raises(NotFound, match="^model 'm' has no version 9$"):
        store.set_alias("m", "staging", 9)
    with pytest.raises(NotFound, match="^model 'other' not found$"):
        store.set_alias("other", "staging", 1)
    with pytest.raises(InvalidArgument, match="all digits"):
        store.set_alias("m", "12", 1)
    store.delete_version("m", 2)  # takes its aliases with it
    assert store.aliases("m") == {}
    with pytest.raises(NotFound, match="^model 'm' has no alias 'production'$"):
        resolve(store, ModelRef("m", alias="production"))
    with pytest.raises(NotFound, match="^model 'm' has no alias 'nope'$"):
        store.delete_alias("m", "nope")


def test_resolve_errors(store):
    for ref in (ModelRef("nope"), ModelRef("nope", version=1), ModelRef("nope", alias="production")):
        with pytest.raises(NotFound, match="^model 'nope' not found$"):
            resolve(store, ref)
    with pytest.raises(NotFound, match="^model nope@1 not found$"):
        store.manifest("nope", 1)
    with pytest.raises(NotFound, match="^model nope@1 not found$"):
        store.onnx_bytes("nope", 1)
    with pytest.raises(NotFound, match="^model nope@1 not found$"):
        store.delete_version("nope", 1)
    assert store.versions("nope") == [] and store.aliases("nope") == {} and store.arrays("nope", 1) == {}


def test_jobs_round_trip_and_unknown_ids(store):
    assert store.list_jobs() == []
    job = {"id": "job-1", "state": "QUEUED"}
    store.save_job(job)
    store.save_job({"id": "job-2", "state": "SUCCEEDED"})
    assert store.load_job("job-1") == job
    store.save_job({**job, "state": "RUNNING"})  # replaced whole
    assert store.load_job("job-1") == {"id": "job-1", "state": "RUNNING"}
    assert sorted(j["id"] for j in store.list_jobs()) == ["job-1", "job-2"]
    with pytest.raises(NotFound, match="^training job 'job-3' not found$"):
        store.load_job("job-3")
    with pytest.raises(NotFound, match=r"^training job '\.\./models' not found$"):
        store.load_job("../models")


def test_batch_job_records_are_kept_apart_from_training_jobs(store):
    store.save_job({"id": "job-1", "state": "QUEUED"})
    store.batch_jobs.save_job({"id": "batch-1", "state": "RUNNING"})
    assert [j["id"] for j in store.list_jobs()] == ["job-1"]
    assert [j["id"] for j in store.batch_jobs.list_jobs()] == ["batch-1"]
    assert store.batch_jobs.load_job("batch-1") == {"id": "batch-1", "state": "RUNNING"}
    with pytest.raises(NotFound, match="^training job 'batch-1' not found$"):
        store.load_job("batch-1")
    with pytest.raises(NotFound, match="^batch job 'job-1' not found$"):
        store.batch_jobs.load_job("job-1")
    with pytest.raises(NotFound, match=r"^batch job '\.\./jobs' not found$"):
        store.batch_jobs.load_job("../jobs")


# --- what only a store shared by several processes has to do ---


@pytest.fixture
def s3_url(s3_endpoint):
    return f"s3://{BUCKET}/stores/{uuid.uuid4().hex}"


def test_another_process_sees_new_deleted_versions_and_moved_aliases(s3_url):
    url = s3_url
    writer, reader = ObjectStore(url), ObjectStore(url, cache_ttl=0)
    writer.create_version("m", b"g", _manifest())
    assert resolve(reader, ModelRef("m")) == ("m", 1)
    writer.create_version("m", b"g", _manifest())
    writer.set_alias("m", "production", 1)
    assert resolve(reader, ModelRef("m")) == ("m", 2)
    assert resolve(reader, ModelRef("m", alias="production")) == ("m", 1)
    writer.delete_version("m", 1)
    with pytest.raises(NotFound, match="^model 'm' has no version 1$"):
        resolve(reader, ModelRef("m", version=1))
    with pytest.raises(NotFound, match="^model 'm' has no alias 'production'$"):
        resolve(reader, ModelRef("m", alias="production"))


def test_concurrent_alias_updates_from_two_processes_lose_nothing(s3_url):
    url = s3_url
    ObjectStore(url).create_version("m", b"g", _manifest())
    stores = [ObjectStore(url) for _ in range(6)]
    threads = [threading.Thread(target=s.set_alias, args=("m", f"alias-{i}", 1)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ObjectStore(url).aliases("m") == {f"alias-{i}": 1 for i in range(6)}


def test_resolve_costs_one_request_and_none_when_cached(s3_url):
    url = s3_url
    store = ObjectStore(url, cache_ttl=0)
    store.create_version("m", b"g", _manifest())
    store.set_alias("m", "production", 1)
    calls: list[str] = []

    def record(model, **_):
        calls.append(model.name)

    events = store._fs.s3.meta.events
    events.register("before-call.s3", record)
    try:
        for ref, expected in [(ModelRef("m", version=1), ["GetObject"]),  # the manifest: never a LIST
                              (ModelRef("m", alias="production"), ["GetObject"]),  # aliases.json
                              (ModelRef("m"), ["ListObjectsV2"])]:
            calls.clear()
            assert resolve(store, ref) == ("m", 1)
            assert calls == expected, ref
        cached = ObjectStore(url, cache_ttl=60)
        for ref in (ModelRef("m", version=1), ModelRef("m", alias="production"), ModelRef("m")):
            resolve(cached, ref)
            calls.clear()
            assert resolve(cached, ref) == ("m", 1)
            assert calls == [], ref
    finally:
        events.unregister("before-call.s3", record)


def test_sweep_removes_only_old_orphans_and_keeps_their_numbers(s3_url):
    url = s3_url
    store = ObjectStore(url)
    prefix = url.removeprefix(f"s3://{BUCKET}/")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/models/m/versions/1/model.onnx", Body=b"x")
    store.sweep_staging()  # a write that may still be in progress: kept
    assert [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]] == [
        f"{prefix}/models/m/versions/1/model.onnx"]
    store.sweep_staging(older_than=0)
    assert [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]] == [
        f"{prefix}/models/m/deleted/1"]
    assert store.create_version("m", b"g", _manifest()) == 2


def test_storage_options_override_the_environment(s3_url, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    store = open_store(s3_url, storage_options={"endpoint_url": s3_endpoint})
    assert store.create_version("m", b"g", _manifest()) == 1
    assert store.onnx_bytes("m", 1) == b"g"


def _age(root, name: str, seconds: float) -> None:
    """Date the versions directory `seconds` back, as if its last change were that old."""
    import os
    import time

    path = root / "models" / name / "versions"
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_local_versions_listing_is_reused_until_the_directory_changes(tmp_path, monkeypatch):
    """Detect resolves the latest version on every call: a settled listing costs a stat, not a listdir, and every
    change, by this store or another process's, is seen on the next call."""
    import os

    from pynomaly.store import local

    root = tmp_path / "store"
    here, other = LocalStore(root), LocalStore(root)  # `other`: another process on the same directory
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(local.os, "listdir", lambda p: listed.append(p) or real_listdir(p))
    here.create_version("m", b"g", _manifest())
    listed.clear()  # create_version lists the directory itself
    assert [here.versions("m"), here.versions("m")] == [[1], [1]]
    assert len(listed) == 2  # changed just now (within SETTLED_S): listed each time
    _age(root, "m", 60)
    listed.clear()
    assert [here.versions("m"), here.versions("m"), here.versions("m")] == [[1], [1], [1]]
    assert len(listed) == 1  # settled: listed once, then reused
    here.versions("m").append(99)  # a caller's change to the list it got does not reach the kept one
    assert here.versions("m") == [1]

    other.create_version("m", b"g", _manifest())
    assert here.versions("m") == [1, 2] and resolve(here, ModelRef("m")) == ("m", 2)
    _age(root, "m", 60)
    here.versions("m")
    other.delete_version("m", 2)
    assert here.versions("m") == [1] and resolve(here, ModelRef("m")) == ("m", 1)
    _age(root, "m", 60)
    here.versions("m")
    other.delete_version("m", 1)
    assert here.versions("m") == [] and here.model_names() == []
    with pytest.raises(NotFound, match="^model 'm' not found$"):
        resolve(here, ModelRef("m"))
