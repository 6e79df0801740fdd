"""Pure builders: an AnomalyDetector's spec read and checked, the tag its training jobs carry, Kubernetes-style
conditions and the status patches the operator writes. No I/O, no clock (callers pass `now`), no kopf, no gRPC.

The CRD's OpenAPI schema rejects most bad specs at the API server; `read_spec` checks again (and what a schema
cannot say: a cron expression that never fires, a model name the platform refuses), because a resource written
before a CRD upgrade, or with validation off, still reaches the operator. Names the platform defines (algorithm,
thresholdMethod) are left to it: it refuses an unknown one, listing the choices, and the run ends Rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

# The platform's model-name rule (pynomaly.refs): the CRD's pattern for modelName and alias is the same.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
DEFAULT_ALIAS = "production"
RETAIN, DELETE = "Retain", "Delete"

# Phases (status.phase), in the order a run goes through them.
TRAINING, READY, GATE_FAILED, FAILED, INVALID = "Training", "Ready", "GateFailed", "Failed", "Invalid"
# Condition types.
TRAINED, GATE, SERVING = "Trained", "QualityGatePassed", "Ready"


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message names the field."""


@dataclass(frozen=True)
class QualityGate:
    max_export_error: float | None = None  # ceiling on the export check's max relative error (ONNX vs native)
    min_roc_auc: float | None = None  # floor on ROC-AUC over the labelled holdout, scored by the candidate
    holdout_data: str = ""
    label_column: str = ""


@dataclass(frozen=True)
class Spec:
    algorithm: str
    training_data: str
    platform: str
    model_name: str
    params: dict[str, Any] = field(default_factory=dict)
    contamination: float | None = None  # unset: the platform's default, 0.1, or the labels' anomaly share
    schedule: str | None = None
    alias: str = DEFAULT_ALIAS
    gate: QualityGate = QualityGate()
    deletion_policy: str = RETAIN
    label_column: str = ""  # the training file's labels (1 = anomaly, 0 = normal); "" = none
    threshold_method: str = ""  # a pythresh method (pynomaly.thresholds); "" = the contamination quantile


@dataclass(frozen=True)
class Resource:
    """One AnomalyDetector as the API server has it."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Resource:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta.get("namespace", ""), uid=meta["uid"],
                   generation=int(meta.get("generation", 1)), spec=dict(body.get("spec") or {}),
                   status=dict(body.get("status") or {}), deleting=bool(meta.get("deletionTimestamp")))

    @property
    def model_name(self) -> str:
        return str(self.spec.get("modelName") or self.name)


def _number(spec: Mapping[str, Any], key: str, default: float | None = None) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpec(f"spec.{key} must be a number, got {value!r}")
    return float(value)


def _text(spec: Mapping[str, Any], key: str, prefix: str = "spec", *, required: bool = False) -> str:
    value = spec.get(key, "")
    if not isinstance(value, str):
        raise InvalidSpec(f"{prefix}.{key} must be a string, got {value!r}")
    if required and not value:
        raise InvalidSpec(f"{prefix}.{key} is required")
    return value


def check_schedule(schedule: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week) that fires at some time."""
    if len(schedule.split()) != 5:
        raise InvalidSpec(f"spec.schedule {schedule!r} is invalid: use five cron fields "
                          "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'")
    try:
        CronSim(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as e:
        raise InvalidSpec(f"spec.schedule {schedule!r} is invalid: {e}") from None
    return schedule


def read_spec(resource: Resource) -> Spec:
    """The spec with defaults applied; InvalidSpec naming the first bad field."""
    spec = resource.spec
    algorithm = _text(spec, "algorithm", required=True)
    training_data = _text(spec, "trainingData", required=True)
    platform = _text(spec, "platform", required=True)
    if not re.fullmatch(r"[^\s:/]+:\d{1,5}", platform):
        raise InvalidSpec(f"spec.platform {platform!r} is invalid: give the platform Service as host:port, "
                          "e.g. 'pynomaly.anomaly.svc:50051'")
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidSpec(f"spec.params must be an object of hyperparameters, got {params!r}")
    contamination = _number(spec, "contamination")
    if contamination is not None and not 0 < contamination <= 0.5:
        raise InvalidSpec(f"spec.contamination must be in (0, 0.5], got {contamination:g}")
    model_name = resource.model_name
    if not _NAME.match(model_name):
        field_name = "spec.modelName" if spec.get("modelName") else "the resource name (spec.modelName unset)"
        raise InvalidSpec(f"{field_name} {model_name!r} is not a valid model name: use 1-64 characters of "
                          "[A-Za-z0-9_.-], starting with a letter or digit")
    alias = _text(spec, "alias") or DEFAULT_ALIAS
    if not _NAME.match(alias) or alias.isdigit() or alias == "latest":
        raise InvalidSpec(f"spec.alias {alias!r} is invalid: use 1-64 characters of [A-Za-z0-9_.-], starting with "
                          "a letter or digit, not all digits, not 'latest'")
    schedule = _text(spec, "schedule") or None
    label_column = _text(spec, "labelColumn")
    threshold_method = _text(spec, "thresholdMethod")
    policy = _text(spec, "deletionPolicy") or RETAIN
    if policy not in (RETAIN, DELETE):
        raise InvalidSpec(f"spec.deletionPolicy must be Retain or Delete, got {policy!r}")
    return Spec(algorithm=algorithm, training_data=training_data, platform=platform, model_name=model_name,
                params=dict(params), contamination=contamination,
                schedule=check_schedule(schedule) if schedule else None, alias=alias,
                gate=_read_gate(spec.get("qualityGate") or {}), deletion_policy=policy, label_column=label_column,
                threshold_method=threshold_method)


def _read_gate(gate: Any) -> QualityGate:
    if not isinstance(gate, Mapping):
        raise InvalidSpec(f"spec.qualityGate must be an object, got {gate!r}")
    ceiling = _number(gate, "maxExportError")
    floor = _number(gate, "minRocAuc")
    if ceiling is not None and ceiling < 0:
        raise InvalidSpec(f"spec.qualityGate.maxExportError must be ≥ 0, got {ceiling:g}")
    if floor is not None and not 0 <= floor <= 1:
        raise InvalidSpec(f"spec.qualityGate.minRocAuc must be in [0, 1], got {floor:g}")
    holdout = _text(gate, "holdoutData", "spec.qualityGate")
    label = _text(gate, "labelColumn", "spec.qualityGate")
    if floor is not None and not (holdout and label):
        raise InvalidSpec("spec.qualityGate.minRocAuc needs spec.qualityGate.holdoutData (a labelled CSV or Parquet "
                          "file) and spec.qualityGate.labelColumn (1 = anomaly, 0 = normal)")
    return QualityGate(max_export_error=ceiling, min_roc_auc=floor, holdout_data=holdout, label_column=label)


# --- the tag every training job of a resource carries (its description), to find it again after a crash ---

_TAG = re.compile(r"^anomalydetector/(?P<ns>[^/ ]*)/(?P<name>\S+) uid=(?P<uid>\S+) "
                  r"generation=(?P<generation>\d+) run=(?P<run>\d+)$")


def owner_tag(resource: Resource) -> str:
    return f"anomalydetector/{resource.namespace}/{resource.name} uid={resource.uid}"


def job_description(resource: Resource, generation: int, run: int) -> str:
    """Deterministic: the same resource, generation and run always give the same description."""
    return f"{owner_tag(resource)} generation={generation} run={run}"


def parse_description(resource: Resource, description: str) -> tuple[int, int] | None:
    """(generation, run) if the description is this resource's tag (same namespace, name and uid), else None."""
    m = _TAG.match(description)
    if not m or (m["ns"], m["name"], m["uid"]) != (resource.namespace, resource.name, resource.uid):
        return None
    return int(m["generation"]), int(m["run"])


# --- time ---


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first time strictly after `after` (UTC) at which the cron expression fires."""
    return next(CronSim(schedule, after.astimezone(UTC).replace(microsecond=0)))


# --- conditions and status patches ---


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  now: datetime) -> list[dict[str, Any]]:
    """The list with condition `type_` set; lastTransitionTime moves only when its status changes."""
    old = next((c for c in conditions if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else iso(now)
    new = {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}
    return [new if c is old else c for c in conditions] if old else [*conditions, new]


def merge_patch(status: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386), as the API server applies kopf's status patches: None removes a key."""
    merged = dict(status)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged
