import json
import os
import threading

import pytest

from pynomaly.errors import InvalidArgument, NotFound
from pynomaly.refs import ModelRef
from pynomaly.registry import LocalStore


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def _manifest(tag="x"):
    return {"tag": tag, "feature_names": ["a"]}


def test_versions_are_numbered_and_immutable(store):
    assert store.create_version("m", b"one", _manifest("1")) == 1
    assert store.create_version("m", b"two", _manifest("2")) == 2
    assert store.versions("m") == [1, 2]
    assert store.onnx_bytes("m", 1) == b"one"
    assert store.manifest("m", 2)["tag"] == "2"
    assert store.manifest("m", 2)["version"] == 2 and store.manifest("m", 2)["name"] == "m"
    assert store.resolve(ModelRef("m")) == ("m", 2)
    assert store.resolve(ModelRef("m", version=1)) == ("m", 1)


def test_deleted_version_numbers_are_not_reused(store):
    for _ in range(3):
        store.create_version("m", b"g", _manifest())
    store.delete_version("m", 3)
    assert store.versions("m") == [1, 2]
    assert store.create_version("m", b"g", _manifest()) == 4
    with pytest.raises(NotFound, match="model 'm' has no version 3"):
        store.resolve(ModelRef("m", version=3))


def test_concurrent_writers_get_distinct_versions(store):
    got = []
    threads = [threading.Thread(target=lambda: got.append(store.create_version("m", b"g", _manifest())))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))
    assert store.versions("m") == list(range(1, 9))


def test_half_written_version_is_never_visible(store, tmp_path):
    # What a crash mid-write leaves: a staging directory with a partial graph and no manifest.
    partial = store.root / ".staging" / "crashed"
    partial.mkdir()
    (partial / "model.onnx").write_bytes(b"partial")
    assert store.versions("m") == [] and store.model_names() == []
    with pytest.raises(NotFound, match="model 'm' not found"):
        store.resolve(ModelRef("m"))
    store.sweep_staging()
    assert list((store.root / ".staging").iterdir()) == []
    assert store.create_version("m", b"g", _manifest()) == 1


def test_aliases(store):
    store.create_version("m", b"g", _manifest())
    store.create_version("m", b"g", _manifest())
    store.set_alias("m", "production", 1)
    assert store.resolve(ModelRef("m", alias="production")) == ("m", 1)
    store.set_alias("m", "production", 2)
    assert store.aliases("m") == {"production": 2}
    with pytest.raises(NotFound, match="model 'm' has no version 9"):
        store.set_alias("m", "staging", 9)
    with pytest.raises(InvalidArgument, match="all digits"):
        store.set_alias("m", "12", 1)
    store.delete_version("m", 2)  # takes its aliases with it
    assert store.aliases("m") == {}
    with pytest.raises(NotFound, match="model 'm' has no alias 'production'"):
        store.resolve(ModelRef("m", alias="production"))
    with pytest.raises(NotFound, match="has no alias 'nope'"):
        store.delete_alias("m", "nope")


def test_jobs_round_trip_and_unknown_ids(store):
    job = {"id": "job-1", "state": "QUEUED"}
    store.save_job(job)
    assert store.load_job("job-1") == job
    assert store.list_jobs() == [job]
    with pytest.raises(NotFound, match="training job 'job-2' not found"):
        store.load_job("job-2")
    with pytest.raises(NotFound):
        store.load_job("../models")
    # The record is replaced atomically: no temporary files are left beside it.
    store.save_job({**job, "state": "RUNNING"})
    assert os.listdir(store.root / "jobs") == ["job-1.json"]
    assert json.loads((store.root / "jobs" / "job-1.json").read_text())["state"] == "RUNNING"
