"""Every registered detector: trains through the platform's own path, is batch-invariant, never serves NaN/inf,
and ListAlgorithms tells the truth about it."""

import numpy as np
import onnxruntime as ort
import pytest

from benchmarks import parity
from pynomaly import algorithms, training, verification
from pynomaly.errors import InvalidArgument
from pynomaly.runtime import session_options

from conftest import DATASETS, assert_same_scores, load_dataset

RNG = np.random.default_rng(3)
TRAIN = RNG.normal(size=(300, 5))
# Ordinary rows, rows far outside the training range, and rows equal to training rows.
SCORE = np.vstack([RNG.normal(size=(20, 5)), RNG.uniform(-1e3, 1e3, size=(10, 5)), TRAIN[:10]])

EXPORTABLE = parity.exportable()


def _labels(X):
    """Labels for the detectors that learn from them: the 10 % of rows farthest from the mean."""
    distance = np.linalg.norm(X - X.mean(axis=0), axis=1)
    return (distance >= np.quantile(distance, 0.9)).astype(np.int64)


def _spec(name, X):
    algo = algorithms.get(name)
    return training.TrainSpec(model_name="m", algorithm=name, params=parity.parity_params(algo, quick=True),
                              contamination=0.1,
                              feature_names=[f"f{i}" for i in range(X.shape[1])],
                              labels=_labels(X) if algo.needs_labels else None)


def _columns(name, X):
    """X as the detector takes it: its first column(s) for a detector of a fixed width (MAD: one feature)."""
    width = algorithms.get(name).n_features
    return X[:, :width] if width else X


def _at_most(name, X):
    """X, or its first max_training_rows rows where the algorithm caps them (the data plane refuses more)."""
    cap = algorithms.get(name).max_training_rows
    return X[:cap] if cap else X


# Fitted on 100 rows here: PyOD's fits and one-row-at-a-time references of these are quadratic in the training rows
# in Python (LOCI on 300 rows: 74 s to train and verify); test_parity fits them on up to their caps.
PER_ROW = frozenset({"sos", "loci", "lmdd"})


@pytest.fixture(scope="module", params=EXPORTABLE)
def served(request):
    train = _at_most(request.param, _columns(request.param, TRAIN))
    train = train[:100] if request.param in PER_ROW else train
    result = training.train(_spec(request.param, train), train)
    return request.param, result, ort.InferenceSession(result.onnx_model, session_options(1),
                                                       providers=["CPUExecutionProvider"])


def test_trains_and_verifies(served):
    _, result, _ = served
    assert result.manifest["export_check"]["max_rel_error"] <= verification.TOLERANCE


def test_batch_invariance(served):
    """A row's score never depends on the other rows of the request: batch == one row at a time."""
    name, _, session = served
    rows = _columns(name, SCORE)
    batch = verification.scores(session, rows)
    alone = np.concatenate([verification.scores(session, rows[i : i + 1]) for i in range(len(rows))])
    assert_same_scores(alone, batch)


def test_finite_far_outside_the_training_range(served):
    name, _, session = served
    extreme = np.vstack([np.full((1, 5), 1e6), np.full((1, 5), -1e6), np.zeros((1, 5))])
    scores = session.run(["anomaly_score"], {"X": _columns(name, np.vstack([SCORE, extreme]))})[0]
    assert scores.dtype == np.float64 and scores.shape == (len(SCORE) + 3,)
    assert np.isfinite(scores).all()


def test_list_algorithms_is_truthful():
    for name, algo in algorithms.ALGORITHMS.items():
        assert algo.implementation and algo.description, name
        if not algo.exportable:
            assert algo.export_note, f"{name}: a detector that cannot export must say why"
        # Every parameter's default passes its own check, and a bad name is refused naming the algorithm.
        for p in algo.params:
            assert p.check(p.default) == p.default or (p.default is None and p.check(None) is None), (name, p.name)
        with pytest.raises(InvalidArgument, match=f"unknown hyperparameter 'no_such_param' for algorithm '{name}'"):
            algo.resolve_params({"no_such_param": 1})


# test_parity fits every exportable detector on these three sets and checks its served scores are finite.
FAST_SETS = ("wbc", "pima", "cardio")
# Slow to train and verify on 1,000 rows (networks, one-row-at-a-time references, per-row graphs): test_parity
# checks them on the three sets above (some on wbc alone); `make parity` covers them on all 12.
# (VAE and deep SVDD are in QUICK for `make parity`'s large sets, but quick on 1,000 rows: they run here.)
# DevNet, which is not in QUICK, stays with the networks: it learns from labels, which this fit does not pass.
SLOW = (frozenset(parity.QUICK) - {"vae", "deep_svdd"}
        | {"devnet", "xgbod", "lscp", "dif", "cof", "cd", "rod", "sos", "loci", "lmdd"})


@pytest.mark.datasets
@pytest.mark.parametrize("dataset", [d for d in parity.DATASETS if d not in FAST_SETS])
def test_no_nan_or_inf_on_any_dataset(dataset):
    """Every exportable detector but the slow ones, fitted on (a sample of) each ADBench set that test_parity does
    not use, scores all its rows finitely."""
    X, _ = load_dataset(dataset)
    assert DATASETS.is_dir()
    rng = np.random.default_rng(0)
    fit_rows = X[rng.choice(len(X), size=min(len(X), 1000), replace=False)]
    failures = []
    # "auto" scores every row of every set in its own suite (test_automl_datasets.py).
    for name in (n for n in EXPORTABLE if n != "auto" and n not in SLOW):
        try:
            rows = _at_most(name, _columns(name, fit_rows))
            result = training.train(_spec(name, rows), rows)
        except training.TrainingFailed as e:
            # Refusing a model is allowed (the job fails with this message); serving a non-finite score is not.
            # Seen: LOF on breastw, whose 234 duplicate rows make neighbour ties that sklearn breaks in tree order.
            # The export itself may refuse data an algorithm declares it refuses (KPCA's rounding-level scores).
            declared = "export to ONNX failed" in str(e) and algorithms.get(name).export_limit
            if "non-finite" not in str(e) and "ONNX export does not match" not in str(e) and not declared:
                failures.append(f"{name}: training failed unexpectedly: {e}")
            continue
        session = ort.InferenceSession(result.onnx_model, session_options(1), providers=["CPUExecutionProvider"])
        rows = _columns(name, X)
        if algorithms.get(name).max_training_rows:
            # The capped (quadratic) detectors' graphs place each row among the training rows one by one: a
            # seeded sample of 2,000 rows (shuttle's 49k take SOS, LOCI, LMDD minutes each).
            rows = rows[rng.choice(len(rows), size=min(len(rows), 2000), replace=False)]
        scores = verification.scores(session, rows)
        if not np.isfinite(scores).all():
            failures.append(f"{name}: {int((~np.isfinite(scores)).sum())} non-finite scores")
    assert not failures, failures
