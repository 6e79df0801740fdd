"""Algorithm "auto" (pynomaly.algorithms.auto): the candidates are fitted, verified, standardised, pruned when
redundant and skipped past the budget or the size limit, each decision recorded; the served graph equals the
native mean of standardised member scores, row by row and whatever the batch."""

from __future__ import annotations

import numpy as np
import pytest

from pynomaly import algorithms, training, verification
from pynomaly.algorithms import auto
from pynomaly.errors import InvalidArgument

RNG = np.random.default_rng(15)
X = np.vstack([RNG.normal(size=(300, 4)), RNG.uniform(4, 6, size=(10, 4))])
NAMES = ["a", "b", "c", "d"]


def _train(params, X=X, progress=lambda stage, detail=None: None):
    algo = algorithms.get("auto")
    spec = training.TrainSpec("m", "auto", algo.resolve_params(params), 0.1, NAMES)
    return training.train(spec, X, progress=progress)


@pytest.fixture(scope="module")
def trained():
    events = []
    result = _train({"candidates": ["iforest", "sklearn.isolation_forest", "hbos", "pca", "knn"]},
                    progress=lambda stage, detail=None: events.append((stage, detail)))
    return result, events


def test_every_candidate_is_recorded_with_its_outcome(trained):
    result, _ = trained
    outcome = {c["algorithm"]: c["outcome"] for c in result.manifest["candidates"]}
    # scikit-learn's IsolationForest with the same seed ranks the rows as PyOD's IForest (which wraps it) does.
    assert outcome == {"iforest": "kept", "sklearn.isolation_forest": "pruned", "hbos": "kept", "pca": "kept",
                       "knn": "kept"}
    pruned = result.manifest["candidates"][1]
    assert pruned["message"].startswith("Spearman correlation 1.000 with iforest > max_correlation 0.99")
    assert pruned["weight"] == 0.0
    kept = [c for c in result.manifest["candidates"] if c["outcome"] == "kept"]
    assert [c["weight"] for c in kept] == [0.25] * 4
    for c in kept:
        assert c["score_scale"] > 0 and c["fit_seconds"] > 0 and c["export_max_rel_error"] <= verification.TOLERANCE
    assert result.manifest["automl"]["members"] == 4
    assert result.manifest["automl"]["combination"] == "mean of standardised scores"


def test_each_candidate_is_reported_as_it_is_decided(trained):
    result, events = trained
    candidates = [detail for stage, detail in events if stage == training.CANDIDATE]
    assert candidates == result.manifest["candidates"]
    stages = [stage for stage, _ in events if stage != training.CANDIDATE]
    assert stages == [training.FIT, training.EXPORT, training.VERIFY]
    assert events.index((training.FIT, None)) < events.index((training.CANDIDATE, candidates[0]))


def test_the_graph_is_the_mean_of_standardised_member_scores(trained):
    result, _ = trained
    assert result.manifest["export_check"]["max_rel_error"] <= verification.TOLERANCE
    session = verification.session(result.onnx_model)
    # By hand from the card: each kept member's own score, standardised with the card's constants.
    kept = [c for c in result.manifest["candidates"] if c["outcome"] == "kept"]
    columns = []
    for c in kept:
        algo = algorithms.get(c["algorithm"])
        member = algo.build(c["params"], 0.1).fit(X)
        columns.append((algo.score(member, X) - c["score_mean"]) / c["score_scale"])
    np.testing.assert_allclose(verification.scores(session, X), np.mean(columns, axis=0), rtol=1e-9, atol=1e-12)
    # Batch-invariant: a row scores the same alone as in the batch.
    alone = np.concatenate([verification.scores(session, X[i : i + 1]) for i in range(0, len(X), 31)])
    np.testing.assert_array_equal(alone, verification.scores(session, X)[::31])
    # The planted anomalies (the last 10 rows) score above the threshold.
    assert (verification.scores(session, X[-10:]) > result.manifest["threshold"]).all()


def test_large_data_skips_the_quadratic_candidates(monkeypatch):
    monkeypatch.setattr(auto, "QUADRATIC_ROWS", 100)
    result = _train({"candidates": ["hbos", "knn", "lof"]})
    skipped = {c["algorithm"]: c for c in result.manifest["candidates"] if c["outcome"] == "skipped"}
    assert sorted(skipped) == ["knn", "lof"]
    assert skipped["knn"]["message"] == "310 rows > 100: its graph would score each row against every training row"


def test_the_budget_stops_new_candidates_but_the_first_is_always_tried():
    result = _train({"candidates": ["hbos", "pca", "iforest"], "time_budget_s": 1e-6})
    assert [c["outcome"] for c in result.manifest["candidates"]] == ["kept", "skipped", "skipped"]
    assert result.manifest["candidates"][1]["message"] == "the time budget (1e-06 s) was spent before it"


def test_a_failing_candidate_is_dropped_and_says_why():
    result = _train({"candidates": [{"algorithm": "pca", "params": {"n_components": 3}}, "hbos",
                                    {"algorithm": "cblof", "params": {"n_clusters": 400}}]})
    failed = result.manifest["candidates"][2]
    assert (failed["outcome"], failed["algorithm"]) == ("failed", "cblof")
    assert failed["message"].startswith("ValueError: "), failed["message"]
    assert [c["outcome"] for c in result.manifest["candidates"][:2]] == ["kept", "kept"]


def test_no_candidate_kept_fails_the_job_naming_each():
    with pytest.raises(training.TrainingFailed) as e:
        _train({"candidates": [{"algorithm": "cblof", "params": {"n_clusters": 400}}]})
    assert str(e.value).startswith("pynomaly.algorithms.auto.AutoEnsemble could not fit the data: ValueError: no "
                                   "candidate could be kept (cblof: ValueError: ")


@pytest.mark.parametrize("candidates, message", [
    ("iforest", "params.candidates: must be a non-empty list of algorithm names or {'algorithm', 'params'} "
                "objects, got string"),
    ([], "params.candidates: must be a non-empty list"),
    (["nope"], "params.candidates: [0]: 'nope' cannot be a candidate; choose among "),
    (["hbos", "auto"], "params.candidates: [1]: 'auto' cannot be a candidate; choose among "),
    (["auto_encoder"], "params.candidates: [0]: 'auto_encoder' cannot be a candidate"),
    (["hbos", "hbos"], "params.candidates: lists 'hbos' twice"),
    ([{"algorithm": "hbos", "params": {"n_bins": 1}}],
     "params.candidates: [0]: candidate 'hbos': params.n_bins: must be an integer ≥ 2 or 'auto', got number 1"),
    ([{"algorithm": "hbos", "extra": 1}],
     "params.candidates: [0]: a candidate must be an algorithm name or {'algorithm': name, 'params': {...}}"),
])
def test_bad_candidates_are_refused_naming_the_problem(candidates, message):
    with pytest.raises(InvalidArgument) as e:
        algorithms.get("auto").resolve_params({"candidates": candidates})
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize("params, message", [
    ({"time_budget_s": 0}, "params.time_budget_s: must be in (0.0, 86400.0], got number 0"),
    ({"max_correlation": 1.5}, "params.max_correlation: must be in (0.0, 1.0], got number 1.5"),
])
def test_bad_settings_are_refused(params, message):
    with pytest.raises(InvalidArgument) as e:
        algorithms.get("auto").resolve_params(params)
    assert str(e.value) == message


def test_the_default_candidates_are_valid_and_listed():
    algo = algorithms.get("auto")
    resolved = algo.resolve_params({})
    assert resolved["candidates"] == list(auto.DEFAULT_CANDIDATES)
    assert [c["algorithm"] for c in auto._candidates(resolved["candidates"])] == list(auto.DEFAULT_CANDIDATES)


def test_additive_members_make_an_exactly_explained_ensemble():
    """HBOS, ECOD, COPOD and PCA each output per-feature terms summing to their score: so does their ensemble."""
    result = _train({"candidates": ["hbos", "ecod", "copod", "pca"]})
    assert [c["outcome"] for c in result.manifest["candidates"]] == ["kept"] * 4
    assert result.manifest["explain"]["methods"] == ["exact", "kernel_shap"]
    session = verification.session(result.onnx_model)
    scores, terms = session.run(["anomaly_score", "contributions"], {"X": X})
    np.testing.assert_allclose(terms.sum(axis=1), scores, rtol=1e-12, atol=1e-12)
    # Each feature's term is the kept members' own terms, standardised and averaged (plus an even share of the
    # constant): the row planted far out on every feature gets large terms on every feature.
    assert (terms[-1] > np.median(terms[:300], axis=0)).all()


def test_a_non_additive_member_leaves_kernel_shap_alone(trained):
    result, _ = trained
    assert result.manifest["explain"]["methods"] == ["kernel_shap"]
