"""Algorithm "auto" over the API, the SDK and the CLI, on both engines: each candidate arrives on the job's watch
stream as it is decided, the model card keeps them all, the ensemble serves Detect and Explain as one model, a
cancelled job stops at its next candidate and frees the worker, and bad settings are refused naming the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pynomaly.client_errors import InvalidArgumentError
from pynomaly.v1 import common_pb2, train_pb2

RNG = np.random.default_rng(150)
X = np.vstack([RNG.normal(size=(400, 4)), RNG.uniform(5, 7, size=(8, 4))])
NAMES = ["temp", "pressure", "flow", "level"]
CANDIDATES = ["iforest", "hbos", "pca", "sklearn.isolation_forest"]
KEPT, PRUNED = common_pb2.CANDIDATE_OUTCOME_KEPT, common_pb2.CANDIDATE_OUTCOME_PRUNED


def test_candidates_stream_as_decided_and_the_card_keeps_them(server, client):
    name = f"auto-{server.engine}"
    seen: list[int] = []
    job = client.start_training(name, X, algorithm="auto", feature_names=NAMES,
                                params={"candidates": CANDIDATES, "random_state": 0})
    job = client.wait(job.id, lambda j: seen.append(len(j.candidates)))
    # One update per candidate decided, in order, before the job ended.
    assert [n for i, n in enumerate(seen) if n and (i == 0 or n != seen[i - 1])] == [1, 2, 3, 4]
    outcomes = [(c.algorithm, c.outcome) for c in job.candidates]
    assert outcomes == [("iforest", KEPT), ("hbos", KEPT), ("pca", KEPT), ("sklearn.isolation_forest", PRUNED)]
    assert job.candidates[3].message.startswith("Spearman correlation 1.000 with iforest > max_correlation 0.99")
    assert [round(c.weight, 12) for c in job.candidates] == [round(1 / 3, 12)] * 3 + [0.0]

    card = client.get_model(f"{name}@{job.model_version}")
    assert list(card.candidates) == list(job.candidates)
    assert card.algorithm == "auto" and card.export_check.max_rel_error <= 1e-5
    assert client.params(card)["candidates"] == CANDIDATES
    kept = card.candidates[0]
    assert kept.score_scale > 0 and kept.fit_seconds > 0 and client.params(kept) == {
        "n_estimators": 100, "max_samples": "auto", "max_features": 1.0, "bootstrap": False, "random_state": 0}

    # One model to Detect and Explain: the planted rows are flagged, and Kernel SHAP explains the ensemble.
    result = client.detect(f"{name}@{job.model_version}", X[-12:])
    assert result.is_anomaly[-8:].all()
    explained = client.explain(f"{name}@{job.model_version}", X[-2:])
    assert explained.method == "kernel_shap"
    np.testing.assert_allclose(explained.base_values + explained.contributions.sum(axis=1),
                               result.anomaly_scores[-2:], rtol=1e-6, atol=1e-9)


def test_a_cancelled_auto_job_stops_at_its_next_candidate(server, client):
    # Uncancelled, the candidates after the first take about 85 s on 20,000 rows (KDE and OCSVM most of it); each
    # alone takes at most a few seconds but KDE's 37.
    rows = np.random.default_rng(1).normal(size=(20_000, 6))
    job = client.start_training(f"auto-cancel-{server.engine}", rows, algorithm="auto", params={
        "candidates": ["iforest", "knn", "copod", "kde", "ocsvm", "lof", "cblof", "mcd"], "time_budget_s": 3600})
    for event in client.train_stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job.id), timeout=120):
        if event.job.candidates:
            break
    cancelled_at = time.time()
    cancelled = client.cancel_training(job.id)
    assert cancelled.state == train_pb2.TRAINING_JOB_STATE_CANCELLED and cancelled.message == "cancelled by a client"
    # The worker is free again once the candidate in progress (KNN, then COPOD at the latest) is done: a job queued
    # now starts within seconds, not after the remaining candidates.
    after = client.start_training(f"after-cancel-{server.engine}", X, algorithm="hbos")
    after = client.wait(after.id)
    assert after.start_time.ToNanoseconds() / 1e9 - cancelled_at < 20
    final = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job.id)).job
    assert final.state == train_pb2.TRAINING_JOB_STATE_CANCELLED
    assert f"auto-cancel-{server.engine}" not in {m.name for m in client.list_models()}  # no version was written


@pytest.mark.parametrize("params, message", [
    ({"candidates": ["nope"]}, "params.candidates: [0]: 'nope' cannot be a candidate; choose among "),
    ({"candidates": "iforest"}, "params.candidates: must be a non-empty list of algorithm names or {'algorithm', "
                                "'params'} objects, got string \"iforest\""),
    ({"candidates": ["hbos", "hbos"]}, "params.candidates: lists 'hbos' twice, got list"),
    ({"time_budget_s": -1}, "params.time_budget_s: must be in (0.0, 86400.0], got number -1"),
    ({"max_correlation": 0}, "params.max_correlation: must be in (0.0, 1.0], got number 0"),
])
def test_bad_auto_settings_are_refused_naming_the_problem(server, client, params, message):
    with pytest.raises(InvalidArgumentError) as e:
        client.start_training(f"auto-bad-{server.engine}", X, algorithm="auto", params=params)
    assert e.value.details().startswith(message), e.value.details()
    assert e.value.reason == "INVALID_PARAMETER"
    assert server.alive()


def test_the_cli_shows_each_candidate_and_the_ensemble(server, tmp_path):
    data = tmp_path / "rows.csv"
    pd.DataFrame(X, columns=NAMES).to_csv(data, index=False)
    out = subprocess.run(
        [sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name",
         f"auto-cli-{server.engine}", "--algorithm", "auto", "--data", str(data), "--param",
         'candidates=["iforest", "hbos", "sklearn.isolation_forest"]'],
        capture_output=True, text=True, timeout=300, env={**os.environ})
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stderr.splitlines()]
    assert [line.split(" (")[0] for line in lines if line.startswith("candidate ")] == [
        "candidate iforest: kept", "candidate hbos: kept", "candidate sklearn.isolation_forest: pruned"]
    assert "ensemble of 2: iforest, hbos (mean of standardised scores)" in lines

    as_json = subprocess.run(
        [sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name",
         f"auto-cli-{server.engine}", "--algorithm", "auto", "--data", str(data), "--json", "--param",
         'candidates=["hbos", {"algorithm": "iforest", "params": {"n_estimators": 50}}]'],
        capture_output=True, text=True, timeout=300)
    assert as_json.returncode == 0, as_json.stderr
    candidates = json.loads(as_json.stdout)["candidates"]
    assert [(c["algorithm"], c["outcome"]) for c in candidates] == [("hbos", "CANDIDATE_OUTCOME_KEPT"),
                                                                   ("iforest", "CANDIDATE_OUTCOME_KEPT")]
    assert candidates[1]["params"]["n_estimators"] == 50 and isinstance(candidates[1]["params"]["n_estimators"], int)
