"""The session cache: Detect runs the score alone; Explain's exact method still reads the whole graph; the LRU is
bounded by count and by bytes."""

from dataclasses import dataclass

import numpy as np

from pynomaly import algorithms
from pynomaly.export import to_onnx
from pynomaly.runtime import SessionCache
from pynomaly.store import LocalStore


def _version(store, name, algorithm):
    X = np.random.default_rng(0).normal(size=(300, 6))
    algo = algorithms.get(algorithm)
    det = algo.build(algo.resolve_params({}), 0.1).fit(X)
    manifest = {"feature_names": [f"f{i}" for i in range(6)], "threshold": 1.0, "algorithm": algorithm}
    return store.create_version(name, to_onnx(det, 6).SerializeToString(), manifest), X.astype(np.float32)


def test_detect_runs_a_score_only_graph_with_the_same_scores(tmp_path):
    store = LocalStore(tmp_path)
    version, X = _version(store, "pca", "pca")
    model = SessionCache(store).get("pca", version)
    assert [o.name for o in model.session.get_outputs()] == ["anomaly_score", "contributions"]
    assert [o.name for o in model.score_session.get_outputs()] == ["anomaly_score"]
    full = model.session.run(["anomaly_score"], {"X": model.rows(X)})[0]
    np.testing.assert_array_equal(model.score(X), full)
    np.testing.assert_array_equal(model.score(X[:1]), full[:1])
    assert model.score(X).dtype == np.float64


def test_a_single_output_graph_is_loaded_once(tmp_path):
    store = LocalStore(tmp_path)
    version, X = _version(store, "forest", "iforest")
    model = SessionCache(store).get("forest", version)
    assert model.score_session is model.session


@dataclass(frozen=True)
class _Fake:
    name: str
    version: int
    size_bytes: int = 0


class _Counting(SessionCache):
    """The LRU alone: a 'load' makes a small object (version v is v bytes), so thousands of loads and evictions
    fit in a second."""

    def _load(self, name, version):
        return _Fake(name, version, version)


def test_hits_on_the_event_loop_and_loads_in_threads_do_not_race():
    """Object stores and the Ray Scorer load (and so evict) in worker threads while hits run on the event loop:
    without a lock on the hit path, move_to_end raced popitem (KeyError, an INTERNAL for the client)."""
    import sys
    import threading
    import time

    cache = _Counting(store=None, threads=1, max_models=2)
    errors: list[BaseException] = []
    stop = time.monotonic() + 1.0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def loads():
        i = 0
        while time.monotonic() < stop:
            cache.get("m", i % 50)
            i += 1

    def hits():
        while time.monotonic() < stop:
            for v in range(50):
                try:
                    cache.cached("m", v)
                except BaseException as e:  # noqa: BLE001 — collected, asserted below
                    errors.append(e)

    try:
        threads = [threading.Thread(target=loads), threading.Thread(target=hits)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(cache) <= 2 and cache.misses > 100


def test_large_batches_run_in_bounded_chunks_with_the_same_scores(tmp_path):
    """Kernel and distance graphs hold a [rows x support vectors] matrix per run: the cache sizes runs by the
    graph's largest matrix constant, and a chunked batch scores exactly as the whole one (batch invariance)."""
    from pynomaly import runtime

    store = LocalStore(tmp_path)
    X = np.random.default_rng(1).normal(size=(2000, 6))
    algo = algorithms.get("ocsvm")
    det = algo.build(algo.resolve_params({}), 0.1).fit(X)
    graph = to_onnx(det, 6).SerializeToString()
    version = store.create_version("svm", graph, {"feature_names": [f"f{i}" for i in range(6)], "threshold": 0.0})
    model = SessionCache(store).get("svm", version)
    n_support = len(det.detector_.support_vectors_)
    assert model.chunk_rows == min(runtime.MAX_CHUNK_ROWS, runtime.RUN_ELEMENTS // n_support)
    rows = np.random.default_rng(2).normal(size=(3 * 700 + 5, 6)).astype(np.float32)
    whole = model.score_session.run(["anomaly_score"], {"X": model.rows(rows)})[0]
    np.testing.assert_array_equal(runtime.run_chunked(model.score_session, "X", model.rows(rows), 700), whole)
    np.testing.assert_array_equal(model.score(rows), whole)


def test_the_lru_is_bounded_by_bytes_as_well_as_count():
    cache = _Counting(store=None, threads=1, max_models=10, max_bytes=10)
    for v in (2, 3, 4):  # 9 bytes: all held
        cache.get("m", v)
    assert [m.version for m in cache.loaded()] == [2, 3, 4] and cache.bytes == 9
    cache.get("m", 2)  # a hit: 2 becomes the most recently used
    cache.get("m", 5)  # 14 bytes: the least recently used go until 10 or less remain
    assert [m.version for m in cache.loaded()] == [2, 5] and cache.bytes == 7
    assert cache.evictions == 2
    cache.evict("m", 5)
    assert [m.version for m in cache.loaded()] == [2] and cache.bytes == 2


def test_a_version_larger_than_the_byte_budget_still_loads_alone():
    cache = _Counting(store=None, threads=1, max_models=10, max_bytes=10)
    cache.get("m", 1)
    cache.get("m", 2)
    big = cache.get("m", 50)
    assert big.version == 50 and [m.version for m in cache.loaded()] == [50] and cache.bytes == 50
    cache.get("m", 3)  # the big one is the least recently used now: it goes
    assert [m.version for m in cache.loaded()] == [3] and cache.bytes == 3


def test_real_versions_are_counted_by_their_onnx_bytes_and_explain_arrays(tmp_path):
    store = LocalStore(tmp_path)
    forest, _ = _version(store, "forest", "iforest")
    pca, _ = _version(store, "pca", "pca")
    store.create_version("pca", store.onnx_bytes("pca", 1), store.manifest("pca", 1),
                         {"background": np.zeros((100, 6))})  # 4,800 bytes of explain arrays
    graph = {n: len(store.onnx_bytes(n, 1)) for n in ("forest", "pca")}
    budget = 4 * graph["pca"] + 1000  # two PCA versions (each: the whole graph and the score-only one)
    assert graph["forest"] > budget
    cache = SessionCache(store, threads=1, max_bytes=budget)
    assert cache.get("forest", forest).size_bytes == graph["forest"]  # larger than the budget: loaded, alone
    assert [m.name for m in cache.loaded()] == ["forest"] and cache.bytes == graph["forest"]
    assert cache.get("pca", pca).size_bytes == 2 * graph["pca"]
    cache.get("pca", 2)
    assert [(m.name, m.version) for m in cache.loaded()] == [("pca", 1), ("pca", 2)]
    assert cache.bytes == 4 * graph["pca"]
    cache.explainer(cache.get("pca", 2))  # its arrays count once loaded: over the budget, pca@1 goes
    assert [(m.name, m.version) for m in cache.loaded()] == [("pca", 2)]
    assert cache.bytes == 2 * graph["pca"] + 4800
