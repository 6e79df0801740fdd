"""The session cache: Detect runs the score alone; Explain's exact method still reads the whole graph."""

import numpy as np

from pynomaly import algorithms
from pynomaly.export import to_onnx
from pynomaly.registry import LocalStore
from pynomaly.runtime import SessionCache


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
    full = model.session.run(["anomaly_score"], {"X": X})[0]
    np.testing.assert_array_equal(model.score(X), full)
    np.testing.assert_array_equal(model.score(X[:1]), full[:1])


def test_a_single_output_graph_is_loaded_once(tmp_path):
    store = LocalStore(tmp_path)
    version, X = _version(store, "forest", "iforest")
    model = SessionCache(store).get("forest", version)
    assert model.score_session is model.session
