"""The session cache: Detect runs the score alone; Explain's exact method still reads the whole graph."""

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


class _Counting(SessionCache):
    """The LRU alone: a 'load' makes a tuple, so thousands of loads and evictions fit in a second."""

    def _load(self, name, version):
        return (name, version)


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
