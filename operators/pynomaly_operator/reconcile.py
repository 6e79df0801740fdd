"""The operator's decisions, pure: an AnomalyDetector (spec + status) and what the platform says about it in, the
actions to take and the status patch to write out. platform.py observes and executes; handlers.py calls both.

A run is one training job and its verdict:

    (no run yet, spec changed, or schedule due) -> CreateJob          phase Training, status.jobId/run recorded
    job QUEUED / RUNNING                        -> nothing             phase Training
    job FAILED / CANCELLED / unknown            -> nothing             phase Failed: alias untouched
    job SUCCEEDED, gate fails                   -> nothing             phase GateFailed: alias untouched
    job SUCCEEDED, gate passes                  -> SetAlias            phase Ready: servingVersion = the new version

Idempotent: status.jobId is followed, never replaced by a second job, and before a job is created the jobs tagged
with this resource's (uid, generation, run) are looked for and adopted, which covers a crash between
CreateTrainingJob and the status patch. A spec change (metadata.generation) cancels the run in flight and starts
another; the schedule never stacks runs. Failed runs are not retried until the spec changes or the schedule fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynomaly_operator.resources import (
    DELETE,
    FAILED,
    GATE,
    GATE_FAILED,
    INVALID,
    READY,
    SERVING,
    TRAINED,
    TRAINING,
    InvalidSpec,
    QualityGate,
    Resource,
    Spec,
    iso,
    job_description,
    next_fire,
    parse_description,
    parse_time,
    read_spec,
    set_condition,
)

SPEC_VALID = "SpecValid"
QUEUED, RUNNING, SUCCEEDED = "QUEUED", "RUNNING", "SUCCEEDED"
ACTIVE = frozenset({QUEUED, RUNNING})


@dataclass(frozen=True)
class Job:
    """A training job as the platform reports it (state without the TRAINING_JOB_STATE_ prefix)."""

    id: str
    state: str
    message: str = ""
    model_version: int = 0
    description: str = ""


@dataclass(frozen=True)
class Candidate:
    """The model card of the version a run trained."""

    version: int
    threshold: float
    export_error: float  # the export check's max relative error, ONNX vs the native library


@dataclass(frozen=True)
class Observed:
    """What the platform said; each field only when the decision needs it (see platform.observe)."""

    job: Job | None = None  # the job of status.jobId
    tagged_jobs: tuple[Job, ...] = ()  # jobs whose description is this resource's tag
    candidate: Candidate | None = None  # the version `job` trained, once it succeeded
    roc_auc: float | None = None  # the candidate's ROC-AUC on the holdout, when the gate asks for one
    holdout_error: str = ""  # why the holdout could not be scored
    trained_versions: tuple[int, ...] = ()  # versions whose description is this resource's tag (deletion)


@dataclass(frozen=True)
class CreateJob:
    model_name: str
    algorithm: str
    params: dict[str, Any]
    contamination: float | None  # None: the platform's default (with labels, their anomaly share)
    data_uri: str
    description: str
    run: int
    generation: int
    reason: str  # Created, SpecChanged or Scheduled
    label_column: str = ""
    threshold_method: str = ""


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class SetAlias:
    model_name: str
    alias: str
    version: int


@dataclass(frozen=True)
class DeleteVersion:
    """Deletes the version and the aliases pointing at it (the platform's DeleteModelVersion)."""

    model_name: str
    version: int


Action = CreateJob | CancelJob | SetAlias | DeleteVersion


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)  # merge patch, written once the actions succeeded


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    message: str


def in_flight(status: dict[str, Any] | Any) -> bool:
    return status.get("phase") == TRAINING and bool(status.get("jobId"))


def due(resource: Resource, now: datetime) -> str | None:
    """Why a new run should start now, or None."""
    status = resource.status
    if not status.get("run"):
        return "Created"
    if status.get("runGeneration") != resource.generation:
        return "SpecChanged"
    next_run = status.get("nextRunAt")
    if resource.spec.get("schedule") and next_run and not in_flight(status) and now >= parse_time(next_run):
        return "Scheduled"
    return None


def gate(quality: QualityGate, candidate: Candidate, roc_auc: float | None, holdout_error: str) -> Verdict:
    """Every failed check named with its figures; passed only if all configured checks pass."""
    failures: list[tuple[str, str]] = []
    if quality.max_export_error is not None and not candidate.export_error <= quality.max_export_error:
        failures.append(("ExportErrorTooHigh", f"export error {candidate.export_error:.3g} exceeds "
                                               f"maxExportError {quality.max_export_error:g}"))
    if quality.min_roc_auc is not None:
        if holdout_error or roc_auc is None:
            failures.append(("HoldoutUnusable", f"holdout {quality.holdout_data!r} not scored: "
                                                f"{holdout_error or 'no ROC-AUC computed'}"))
        elif not roc_auc >= quality.min_roc_auc:
            failures.append(("RocAucTooLow", f"ROC-AUC {roc_auc:.4f} on {quality.holdout_data!r} is below "
                                             f"minRocAuc {quality.min_roc_auc:g}"))
    version = f"version {candidate.version}"
    if failures:
        return Verdict(False, failures[0][0], f"{version} failed the quality gate: "
                                              + "; ".join(m for _, m in failures))
    checks = []
    if quality.max_export_error is not None:
        checks.append(f"export error {candidate.export_error:.3g} ≤ {quality.max_export_error:g}")
    if quality.min_roc_auc is not None and roc_auc is not None:
        checks.append(f"ROC-AUC {roc_auc:.4f} ≥ {quality.min_roc_auc:g}")
    return Verdict(True, "Passed" if checks else "NoGate",
                   f"{version} passed: {', '.join(checks)}" if checks else f"{version}: no quality gate configured")


def _conditions(resource: Resource, now: datetime, *changes: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    conditions = list(resource.status.get("conditions") or [])
    for type_, status, reason, message in changes:
        conditions = set_condition(conditions, type_, status, reason, message, now)
    return conditions


def _serving(spec: Spec, version: int | None) -> tuple[str, str, str, str]:
    if version:
        return SERVING, "True", "Serving", f"alias {spec.alias} -> {spec.model_name}@{version}"
    return SERVING, "False", "NoServingVersion", "no version has passed the quality gate yet"


def _next_run(spec: Spec, now: datetime) -> str | None:
    return iso(next_fire(spec.schedule, now)) if spec.schedule else None


def started(resource: Resource, spec: Spec, create: CreateJob, job_id: str, now: datetime,
            adopted: bool = False) -> dict[str, Any]:
    """The status once `create`'s job exists (created now, or found by its tag after a crash)."""
    how = "adopted" if adopted else "started"
    return {
        "phase": TRAINING, "jobId": job_id, "run": create.run, "runGeneration": create.generation,
        "observedGeneration": resource.generation, "nextRunAt": _next_run(spec, now),
        "conditions": _conditions(
            resource, now, (SPEC_VALID, "True", "Valid", "the spec is valid"),
            (TRAINED, "Unknown", "Training", f"job {job_id} {how} (run {create.run}: {create.reason})"),
            (GATE, "Unknown", "Pending", "waits for the training job"),
            _serving(spec, resource.status.get("servingVersion"))),
    }


def rejected(resource: Resource, spec: Spec, create: CreateJob, message: str, now: datetime) -> dict[str, Any]:
    """The status when the platform refused to create the job (bad hyperparameter, missing file, …)."""
    return {
        "phase": FAILED, "jobId": None, "run": create.run, "runGeneration": create.generation,
        "observedGeneration": resource.generation, "nextRunAt": _next_run(spec, now),
        "conditions": _conditions(
            resource, now, (SPEC_VALID, "True", "Valid", "the spec is valid"),
            (TRAINED, "False", "Rejected", f"the platform refused the training job: {message}"),
            (GATE, "Unknown", "NotEvaluated", "no version was trained"),
            _serving(spec, resource.status.get("servingVersion"))),
    }


def reconcile(resource: Resource, observed: Observed, now: datetime) -> Plan:
    """What to do about a live (not deleting) resource."""
    try:
        spec = read_spec(resource)
    except InvalidSpec as e:
        stale = (CancelJob(resource.status["jobId"]),) if in_flight(resource.status) else ()
        return Plan(stale, {"phase": INVALID, "observedGeneration": resource.generation, **(
            {"jobId": None} if stale else {}), "conditions": _conditions(
            resource, now, (SPEC_VALID, "False", "InvalidSpec", str(e)))})
    if in_flight(resource.status) and resource.status.get("runGeneration") == resource.generation:
        return _follow(resource, spec, observed, now)
    reason = due(resource, now)
    return _start(resource, spec, observed, now, reason) if reason else Plan()


def _start(resource: Resource, spec: Spec, observed: Observed, now: datetime, reason: str) -> Plan:
    run = int(resource.status.get("run") or 0) + 1
    cancel = [resource.status["jobId"]] if in_flight(resource.status) else []  # a run of an older generation
    adoptable: list[tuple[int, Job]] = []
    for job in observed.tagged_jobs:
        tag = parse_description(resource, job.description)
        if tag is None or tag[1] < run:
            continue  # not ours, or a run the status already accounts for
        if tag[0] == resource.generation:
            adoptable.append((tag[1], job))
        elif job.state in ACTIVE and job.id not in cancel:
            cancel.append(job.id)  # created for a generation since replaced, the status patch lost
    adopt = max(adoptable, key=lambda t: t[0]) if adoptable else None
    cancel += [job.id for r, job in adoptable if adopt and job is not adopt[1] and job.state in ACTIVE]
    create = CreateJob(
        model_name=spec.model_name, algorithm=spec.algorithm, params=spec.params, contamination=spec.contamination,
        data_uri=spec.training_data, run=adopt[0] if adopt else run, generation=resource.generation,
        description=job_description(resource, resource.generation, adopt[0] if adopt else run), reason=reason,
        label_column=spec.label_column, threshold_method=spec.threshold_method)
    cancels = tuple(CancelJob(i) for i in cancel)
    if adopt:
        return Plan(cancels, started(resource, spec, create, adopt[1].id, now, adopted=True))
    return Plan((*cancels, create))  # the executor writes `started` (or `rejected`) with the job it got


def _follow(resource: Resource, spec: Spec, observed: Observed, now: datetime) -> Plan:
    status = resource.status
    job_id, job = status["jobId"], observed.job
    serving = status.get("servingVersion")
    if job is not None and job.state in ACTIVE:
        message = f"job {job_id} {job.state.lower()} (run {status.get('run')})"
        return Plan((), {"conditions": _conditions(resource, now, (TRAINED, "Unknown", "Training", message))})
    if job is None or job.state != SUCCEEDED or observed.candidate is None:
        if job is None:
            reason, message = "JobLost", f"training job {job_id} is unknown to the platform at {spec.platform}"
        elif job.state == SUCCEEDED:
            reason, message = "VersionMissing", (f"job {job_id} trained {spec.model_name}@{job.model_version}, "
                                                 "which no longer exists")
        else:
            reason, message = f"Job{job.state.title()}", f"job {job_id} {job.state.lower()}: {job.message}"
        return Plan((), {"phase": FAILED, "conditions": _conditions(
            resource, now, (TRAINED, "False", reason, message),
            (GATE, "Unknown", "NotEvaluated", "no version was trained"), _serving(spec, serving))})
    candidate = observed.candidate
    verdict = gate(spec.gate, candidate, observed.roc_auc, observed.holdout_error)
    trained = {
        "modelVersion": candidate.version, "threshold": candidate.threshold, "exportError": candidate.export_error,
        "rocAuc": observed.roc_auc, "lastTrainedAt": iso(now),
    }
    trained_condition = (TRAINED, "True", "Succeeded", f"job {job_id} trained {spec.model_name}@{candidate.version}")
    if not verdict.passed:
        return Plan((), {**trained, "phase": GATE_FAILED, "conditions": _conditions(
            resource, now, trained_condition, (GATE, "False", verdict.reason, verdict.message),
            _serving(spec, serving))})
    return Plan((SetAlias(spec.model_name, spec.alias, candidate.version),), {
        **trained, "phase": READY, "servingVersion": candidate.version, "conditions": _conditions(
            resource, now, trained_condition, (GATE, "True", verdict.reason, verdict.message),
            _serving(spec, candidate.version))})


def reconcile_deletion(resource: Resource, observed: Observed) -> Plan:
    """Cancel what is still training; with deletionPolicy Delete, delete the versions this resource trained (the
    platform removes the aliases pointing at them with them). Retain (the default) keeps every version and alias."""
    active = [j.id for j in (observed.job, *observed.tagged_jobs) if j is not None and j.state in ACTIVE]
    actions: list[Action] = [CancelJob(i) for i in dict.fromkeys(active)]
    if resource.spec.get("deletionPolicy") == DELETE:
        actions += [DeleteVersion(resource.model_name, v) for v in sorted(observed.trained_versions)]
    return Plan(tuple(actions))
