import numpy as np
import onnxruntime as ort
import pytest

from pynomaly import algorithms, training, verification

RNG = np.random.default_rng(3)
X = RNG.normal(size=(300, 4))


def _spec(algorithm, **params):
    algo = algorithms.get(algorithm)
    return training.TrainSpec(model_name="m", algorithm=algorithm, params=algo.resolve_params(params),
                              contamination=0.05, feature_names=["a", "b", "c", "d"])


@pytest.mark.parametrize(
    "algorithm, params",
    [("iforest", {"random_state": 1, "n_estimators": 30}), ("hbos", {}),
     ("sklearn.isolation_forest", {"random_state": 1})],
)
def test_train_exports_verified_graph_and_manifest(algorithm, params):
    stages = []
    result = training.train(_spec(algorithm, **params), X, progress=stages.append)
    assert stages == ["fit", "export", "verify"]
    m = result.manifest
    check = m["export_check"]
    assert check["rows"] == 300 + verification.SYNTHETIC_ROWS
    assert check["max_rel_error"] <= verification.TOLERANCE
    assert m["feature_names"] == ["a", "b", "c", "d"] and m["training_rows"] == 300
    # The threshold is the quantile at 1 - contamination of the served (verified) training scores, as PyOD sets
    # threshold_ from its own: rows and scores are float64 end to end, so they are equal to float64 rounding.
    algo = algorithms.get(algorithm)
    native = algo.build(algo.resolve_params(params), 0.05).fit(X)
    scores = algo.score(native, X)
    session = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == session.get_outputs()[0].type == "tensor(double)"
    served = session.run(["anomaly_score"], {"X": X})[0]
    assert m["threshold"] == pytest.approx(np.percentile(served, 95), rel=1e-12)
    assert m["threshold"] == pytest.approx(np.percentile(scores, 95), rel=1e-12)
    assert np.mean(scores > m["threshold"]) == pytest.approx(0.05, abs=0.01)
    assert verification.compare(served, scores)[1] <= 1e-9
    if algorithm == "hbos":
        # Fitted on the float64 rows themselves: bin edges from float32-rounded rows differ.
        rounded = algo.build(algo.resolve_params(params), 0.05).fit(X.astype(np.float32).astype(np.float64))
        assert not np.array_equal(rounded.bin_edges_, native.bin_edges_)


def test_fit_error_fails_the_job_with_the_library_message():
    with pytest.raises(training.TrainingFailed, match="pyod.models.iforest.IForest could not fit the data"):
        training.train(_spec("iforest", max_features=9), X)


def test_compare_is_relative_with_a_floor():
    native = np.array([1.0, -2.0, 1e-12])
    abs_err, rel_err = verification.compare(np.array([1.0, -2.0, 0.0], np.float32), native)
    assert abs_err == pytest.approx(1e-12)
    # the near-zero score is judged against 1e-6 × the largest |score|, not against itself
    assert rel_err == pytest.approx(1e-12 / 2e-6)


def test_verification_rows_cover_beyond_the_training_range():
    rows = verification.verification_rows(X)
    assert rows.dtype == np.float64  # as served: the native model scores the very values the graph does
    np.testing.assert_array_equal(rows[:300][np.lexsort(rows[:300].T)], X[np.lexsort(X.T)])  # not rounded
    assert (rows.max(axis=0) > X.max(axis=0)).all() and (rows.min(axis=0) < X.min(axis=0)).all()
