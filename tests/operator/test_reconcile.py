"""The operator's pure decisions, table-driven: spec + status + what the platform says -> actions + status patch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pynomaly_operator.reconcile import (
    CancelJob,
    Candidate,
    CreateJob,
    DeleteVersion,
    Job,
    Observed,
    SetAlias,
    due,
    reconcile,
    reconcile_deletion,
    rejected,
    started,
)
from pynomaly_operator.resources import (
    InvalidSpec,
    Resource,
    iso,
    job_description,
    merge_patch,
    next_fire,
    parse_description,
    read_spec,
    set_condition,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC = {"algorithm": "iforest", "params": {"n_estimators": 50}, "contamination": 0.05, "trainingData": "train.csv",
        "platform": "pynomaly.anomaly.svc:50051"}
GATED = {**SPEC, "qualityGate": {"maxExportError": 1e-4, "minRocAuc": 0.9, "holdoutData": "holdout.csv",
                                 "labelColumn": "label"}}


def ad(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, generation: int = 1,
       deleting: bool = False, uid: str = "uid-1") -> Resource:
    return Resource(name="fraud", namespace="risk", uid=uid, generation=generation, spec=spec or SPEC,
                    status=status or {}, deleting=deleting)


def tag(generation: int, run: int, uid: str = "uid-1") -> str:
    return job_description(ad(uid=uid), generation, run)


def training(job_id: str = "job-1", run: int = 1, generation: int = 1, **extra: Any) -> dict[str, Any]:
    return {"phase": "Training", "jobId": job_id, "run": run, "runGeneration": generation, **extra}


def cond(patch: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in patch["conditions"] if c["type"] == type_)


# --- starting runs: new, adopted, spec changed, scheduled ---

@pytest.mark.parametrize("status, generation, tagged, cancels, create_run, adopted", [
    # a new resource: one job, run 1, tagged with uid/generation/run
    ({}, 1, (), [], 1, None),
    # the crash window: the job was created, the status patch lost -> adopt it, no second job
    ({}, 1, (Job("job-9", "RUNNING", description=tag(1, 1)),), [], None, "job-9"),
    # adopting a job that already finished is fine: following it concludes the run
    ({}, 1, (Job("job-9", "SUCCEEDED", model_version=1, description=tag(1, 1)),), [], None, "job-9"),
    # another resource's jobs (other uid) and untagged jobs are never adopted
    ({}, 1, (Job("job-x", "RUNNING", description=tag(1, 1, uid="uid-2")), Job("job-y", "RUNNING")), [], 1, None),
    # a job of an earlier run the status already records is not adopted again
    ({"phase": "Ready", "run": 1, "runGeneration": 1}, 2, (Job("job-1", "SUCCEEDED", description=tag(1, 1)),),
     [], 2, None),
    # spec changed while training: the stale job is cancelled and a new run starts
    (training("job-1"), 2, (), ["job-1"], 2, None),
    # spec changed, and a tagged job of the replaced generation still runs (its status patch lost): cancelled
    ({"phase": "Ready", "run": 1, "runGeneration": 1}, 3, (Job("job-5", "QUEUED", description=tag(2, 2)),),
     ["job-5"], 2, None),
])
def test_runs_start_once(status, generation, tagged, cancels, create_run, adopted):
    plan = reconcile(ad(status=status, generation=generation), Observed(tagged_jobs=tagged), NOW)
    assert [a.job_id for a in plan.actions if isinstance(a, CancelJob)] == cancels
    creates = [a for a in plan.actions if isinstance(a, CreateJob)]
    if adopted:
        assert creates == []
        assert (plan.status["phase"], plan.status["jobId"]) == ("Training", adopted)
        assert "adopted" in cond(plan.status, "Trained")["message"]
    else:
        assert len(creates) == 1 and plan.status == {}
        create = creates[0]
        assert (create.run, create.generation) == (create_run, generation)
        assert create.description == f"anomalydetector/risk/fraud uid=uid-1 generation={generation} run={create_run}"
        assert (create.model_name, create.algorithm, create.params, create.contamination, create.data_uri) == (
            "fraud", "iforest", {"n_estimators": 50}, 0.05, "train.csv")
        assert create.reason == ("Created" if not status else "SpecChanged")


@pytest.mark.parametrize("status, now, reason", [
    ({"phase": "Ready", "run": 1, "runGeneration": 1, "nextRunAt": "2026-03-01T12:00:00Z"}, NOW, "Scheduled"),
    ({"phase": "Failed", "run": 1, "runGeneration": 1, "nextRunAt": "2026-03-01T11:00:00Z"}, NOW, "Scheduled"),
    ({"phase": "Ready", "run": 1, "runGeneration": 1, "nextRunAt": "2026-03-01T12:00:01Z"}, NOW, None),
    # never two runs at once: a due schedule waits for the job in flight
    (training(nextRunAt="2026-03-01T11:00:00Z"), NOW, None),
    # a failed run is not retried until the spec changes or the schedule fires
    ({"phase": "Failed", "run": 1, "runGeneration": 1}, NOW, None),
])
def test_schedule(status, now, reason):
    resource = ad({**SPEC, "schedule": "0 * * * *"}, status)
    assert due(resource, now) == reason
    if reason is None and status["phase"] != "Training":
        assert reconcile(resource, Observed(), now).actions == ()
    if reason:
        (create,) = reconcile(resource, Observed(), now).actions
        assert isinstance(create, CreateJob) and (create.run, create.reason) == (2, "Scheduled")


def test_started_and_rejected_status():
    resource = ad({**SPEC, "schedule": "30 3 * * *"}, {"servingVersion": 2, "run": 2, "runGeneration": 1})
    create = CreateJob("fraud", "iforest", {}, 0.1, "train.csv", tag(1, 3), 3, 1, "Scheduled")
    patch = started(resource, read_spec(resource), create, "job-7", NOW)
    assert {k: patch[k] for k in ("phase", "jobId", "run", "runGeneration", "observedGeneration", "nextRunAt")} == {
        "phase": "Training", "jobId": "job-7", "run": 3, "runGeneration": 1, "observedGeneration": 1,
        "nextRunAt": "2026-03-02T03:30:00Z"}
    assert cond(patch, "Trained")["message"] == "job job-7 started (run 3: Scheduled)"
    assert cond(patch, "Ready")["message"] == "alias production -> fraud@2"  # the old version still serves
    refused = rejected(resource, read_spec(resource), create, "INVALID_ARGUMENT: params: unknown 'n_trees'", NOW)
    assert (refused["phase"], refused["jobId"], refused["run"]) == ("Failed", None, 3)
    assert cond(refused, "Trained") | {"lastTransitionTime": None} == {
        "type": "Trained", "status": "False", "reason": "Rejected", "lastTransitionTime": None,
        "message": "the platform refused the training job: INVALID_ARGUMENT: params: unknown 'n_trees'"}


# --- following a job ---

@pytest.mark.parametrize("job, reason, message", [
    (Job("job-1", "FAILED", "pca: scores are not finite"), "JobFailed", "job job-1 failed: pca: scores are not finite"),
    (Job("job-1", "CANCELLED", "cancelled by a client"), "JobCancelled", "job job-1 cancelled: cancelled by a client"),
    (None, "JobLost", "training job job-1 is unknown to the platform at pynomaly.anomaly.svc:50051"),
    (Job("job-1", "SUCCEEDED", model_version=4), "VersionMissing", "job job-1 trained fraud@4, which no longer exists"),
])
def test_a_failed_run_leaves_the_alias(job, reason, message):
    plan = reconcile(ad(status=training(servingVersion=3)), Observed(job=job), NOW)
    assert plan.actions == ()
    assert plan.status["phase"] == "Failed" and "servingVersion" not in plan.status
    assert (cond(plan.status, "Trained")["status"], cond(plan.status, "Trained")["reason"]) == ("False", reason)
    assert cond(plan.status, "Trained")["message"] == message
    assert cond(plan.status, "Ready")["message"] == "alias production -> fraud@3"


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING"])
def test_a_running_job_is_followed(state):
    """Also the resume after an operator restart: the persisted jobId is followed, no job is created."""
    plan = reconcile(ad(status=training("job-1")), Observed(job=Job("job-1", state)), NOW)
    assert plan.actions == ()
    assert set(plan.status) == {"conditions"}
    assert cond(plan.status, "Trained")["message"] == f"job job-1 {state.lower()} (run 1)"


CARD = Candidate(version=4, threshold=0.61, export_error=2e-7)


@pytest.mark.parametrize("spec, candidate, roc_auc, holdout_error, reason, message", [
    (SPEC, CARD, None, "", "NoGate", "version 4: no quality gate configured"),
    (GATED, CARD, 0.95, "", "Passed", "version 4 passed: export error 2e-07 ≤ 0.0001, ROC-AUC 0.9500 ≥ 0.9"),
    (GATED, Candidate(4, 0.61, 3e-3), 0.95, "", "ExportErrorTooHigh",
     "version 4 failed the quality gate: export error 0.003 exceeds maxExportError 0.0001"),
    (GATED, CARD, 0.8125, "", "RocAucTooLow",
     "version 4 failed the quality gate: ROC-AUC 0.8125 on 'holdout.csv' is below minRocAuc 0.9"),
    (GATED, Candidate(4, 0.61, 3e-3), 0.5, "", "ExportErrorTooHigh",
     "version 4 failed the quality gate: export error 0.003 exceeds maxExportError 0.0001; "
     "ROC-AUC 0.5000 on 'holdout.csv' is below minRocAuc 0.9"),
    (GATED, CARD, None, "label column 'label' not in its columns ['a', 'b']", "HoldoutUnusable",
     "version 4 failed the quality gate: holdout 'holdout.csv' not scored: label column 'label' not in its "
     "columns ['a', 'b']"),
])
def test_the_gate(spec, candidate, roc_auc, holdout_error, reason, message):
    observed = Observed(job=Job("job-1", "SUCCEEDED", model_version=4), candidate=candidate, roc_auc=roc_auc,
                        holdout_error=holdout_error)
    plan = reconcile(ad(spec, training(servingVersion=3)), observed, NOW)
    gate = cond(plan.status, "QualityGatePassed")
    assert (gate["reason"], gate["message"]) == (reason, message)
    assert (plan.status["modelVersion"], plan.status["threshold"], plan.status["exportError"]) == (
        4, 0.61, candidate.export_error)
    assert plan.status["rocAuc"] == roc_auc and plan.status["lastTrainedAt"] == "2026-03-01T12:00:00Z"
    assert cond(plan.status, "Trained")["status"] == "True"
    if reason in ("NoGate", "Passed"):
        assert plan.actions == (SetAlias("fraud", "production", 4),)
        assert (plan.status["phase"], plan.status["servingVersion"], gate["status"]) == ("Ready", 4, "True")
        assert cond(plan.status, "Ready")["message"] == "alias production -> fraud@4"
    else:  # the alias never points at a version that failed: the old one keeps serving
        assert plan.actions == ()
        assert (plan.status["phase"], gate["status"]) == ("GateFailed", "False")
        assert "servingVersion" not in plan.status
        assert cond(plan.status, "Ready")["message"] == "alias production -> fraud@3"


def test_a_first_version_that_fails_the_gate_serves_nothing():
    observed = Observed(job=Job("job-1", "SUCCEEDED", model_version=1), candidate=Candidate(1, 0.5, 1.0),
                        roc_auc=0.95)
    plan = reconcile(ad(GATED, training()), observed, NOW)
    assert plan.actions == ()
    ready = cond(plan.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NoServingVersion")


def test_labels_and_the_threshold_method_reach_the_job():
    (create,) = reconcile(ad(SPEC), Observed(), NOW).actions
    assert isinstance(create, CreateJob) and (create.label_column, create.threshold_method) == ("", "")
    spec = {k: v for k, v in SPEC.items() if k != "contamination"} | {"labelColumn": "is_fraud",
                                                                        "thresholdMethod": "iqr"}
    (create,) = reconcile(ad(spec), Observed(), NOW).actions
    assert isinstance(create, CreateJob)
    # unset contamination stays unset: the platform takes the labels' anomaly share
    assert (create.label_column, create.threshold_method, create.contamination) == ("is_fraud", "iqr", None)
    # a name the platform does not know is its to refuse (listing its methods), not the operator's
    assert read_spec(ad({**spec, "thresholdMethod": "otsu"})).threshold_method == "otsu"


def test_a_changed_threshold_method_retrains_with_it():
    """Any spec change is a new generation; the run in flight for the old one is cancelled."""
    spec = {**SPEC, "labelColumn": "is_fraud", "thresholdMethod": "mad"}
    cancel, create = reconcile(ad(spec, training("job-1"), generation=2), Observed(), NOW).actions
    assert cancel == CancelJob("job-1") and isinstance(create, CreateJob)
    assert (create.reason, create.generation, create.run, create.threshold_method, create.label_column) == (
        "SpecChanged", 2, 2, "mad", "is_fraud")


def test_custom_model_name_and_alias_reach_the_actions():
    spec = {**SPEC, "modelName": "card-fraud", "alias": "canary"}
    assert reconcile(ad(spec), Observed(), NOW).actions[0].model_name == "card-fraud"  # type: ignore[union-attr]
    observed = Observed(job=Job("job-1", "SUCCEEDED", model_version=2), candidate=Candidate(2, 0.5, 0.0))
    assert reconcile(ad(spec, training()), observed, NOW).actions == (SetAlias("card-fraud", "canary", 2),)


# --- bad specs ---

@pytest.mark.parametrize("change, message", [
    ({"algorithm": None}, "spec.algorithm is required"),
    ({"trainingData": ""}, "spec.trainingData is required"),
    ({"contamination": 0.7}, "spec.contamination must be in (0, 0.5], got 0.7"),
    ({"contamination": "high"}, "spec.contamination must be a number, got 'high'"),
    ({"platform": "http://pynomaly:50051"}, "spec.platform 'http://pynomaly:50051' is invalid: give the platform "
                                            "Service as host:port, e.g. 'pynomaly.anomaly.svc:50051'"),
    ({"modelName": "-bad"}, "spec.modelName '-bad' is not a valid model name: use 1-64 characters of "
                            "[A-Za-z0-9_.-], starting with a letter or digit"),
    ({"alias": "123"}, "spec.alias '123' is invalid"),
    ({"alias": "latest"}, "spec.alias 'latest' is invalid"),
    ({"schedule": "0 3 * *"}, "spec.schedule '0 3 * *' is invalid: use five cron fields"),
    ({"schedule": "0 25 * * *"}, "spec.schedule '0 25 * * *' is invalid: Bad hour"),
    ({"params": [1, 2]}, "spec.params must be an object of hyperparameters, got [1, 2]"),
    ({"deletionPolicy": "Orphan"}, "spec.deletionPolicy must be Retain or Delete, got 'Orphan'"),
    ({"labelColumn": 1}, "spec.labelColumn must be a string, got 1"),
    ({"thresholdMethod": ["iqr"]}, "spec.thresholdMethod must be a string, got ['iqr']"),
    ({"qualityGate": {"minRocAuc": 0.9}}, "spec.qualityGate.minRocAuc needs spec.qualityGate.holdoutData"),
    ({"qualityGate": {"maxExportError": -1}}, "spec.qualityGate.maxExportError must be ≥ 0, got -1"),
])
def test_a_bad_spec_is_a_condition(change, message):
    spec = {k: v for k, v in {**SPEC, **change}.items() if v is not None}
    with pytest.raises(InvalidSpec, match="^" + re.escape(message)):
        read_spec(ad(spec))
    plan = reconcile(ad(spec, training("job-1")), Observed(), NOW)
    assert plan.actions == (CancelJob("job-1"),)  # what trained the old spec stops
    assert (plan.status["phase"], plan.status["observedGeneration"], plan.status["jobId"]) == ("Invalid", 1, None)
    valid = cond(plan.status, "SpecValid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec") and valid["message"].startswith(message)


def test_a_resource_name_that_is_no_model_name_needs_model_name():
    resource = Resource(name="a" * 70, namespace="risk", uid="u", generation=1, spec=SPEC, status={})
    with pytest.raises(InvalidSpec, match=r"the resource name \(spec.modelName unset\) 'a{70}' is not a valid"):
        read_spec(resource)


# --- deletion ---

@pytest.mark.parametrize("policy, job, tagged, versions, actions", [
    ("Retain", Job("job-1", "RUNNING"), (), (1, 2), [CancelJob("job-1")]),
    ("Retain", Job("job-1", "SUCCEEDED"), (), (1, 2), []),
    ("Delete", Job("job-1", "RUNNING"), (Job("job-1", "RUNNING"), Job("job-0", "FAILED")), (2, 1),
     [CancelJob("job-1"), DeleteVersion("fraud", 1), DeleteVersion("fraud", 2)]),
    ("Delete", None, (Job("job-3", "QUEUED"),), (), [CancelJob("job-3")]),
])
def test_deletion(policy, job, tagged, versions, actions):
    resource = ad({**SPEC, "deletionPolicy": policy}, training(), deleting=True)
    plan = reconcile_deletion(resource, Observed(job=job, tagged_jobs=tagged, trained_versions=versions))
    assert list(plan.actions) == actions and plan.status == {}


# --- builders ---

def test_tags_name_one_resource():
    resource = ad()
    assert parse_description(resource, tag(3, 7)) == (3, 7)
    for other in (tag(3, 7, uid="uid-2"), "anomalydetector/other/fraud uid=uid-1 generation=3 run=7",
                  "anomalydetector/risk/fraud2 uid=uid-1 generation=3 run=7", "", "nightly retrain"):
        assert parse_description(resource, other) is None


def test_conditions_keep_their_transition_time():
    first = set_condition([], "Trained", "True", "Succeeded", "v1", NOW)
    later = NOW + timedelta(hours=1)
    same = set_condition(first, "Trained", "True", "Succeeded", "v2", later)
    assert same[0]["lastTransitionTime"] == iso(NOW) and same[0]["message"] == "v2"
    flipped = set_condition(same, "Trained", "False", "JobFailed", "boom", later)
    assert flipped[0]["lastTransitionTime"] == iso(later) and len(flipped) == 1


def test_merge_patch_and_cron():
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}, {"a": None, "b": {"c": None, "x": 1}, "e": [2]}) == {
        "b": {"d": 3, "x": 1}, "e": [2]}
    assert next_fire("0 3 * * *", NOW) == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert next_fire("*/15 * * * *", NOW) == NOW + timedelta(minutes=15)  # strictly after
