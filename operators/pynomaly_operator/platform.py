"""The gRPC side: what the platform says about a resource (observe), doing what reconcile decided (execute), and
scoring the quality gate's holdout. `step` is the whole of one reconciliation; the kopf handlers and the tests call
it the same way.

gRPC errors that mean "try again" (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, …) propagate: kopf
retries the handler and nothing is written to status. A refusal of the request itself (INVALID_ARGUMENT,
FAILED_PRECONDITION, NOT_FOUND, PERMISSION_DENIED) ends the run as Failed with the platform's message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format, struct_pb2

from pynomaly import Client
from pynomaly.v1 import train_pb2
from pynomaly_operator.reconcile import (
    SUCCEEDED,
    CancelJob,
    Candidate,
    CreateJob,
    DeleteVersion,
    Job,
    Observed,
    Plan,
    SetAlias,
    due,
    in_flight,
    reconcile,
    reconcile_deletion,
    rejected,
    started,
)
from pynomaly_operator.resources import InvalidSpec, QualityGate, Resource, parse_description, read_spec

REFUSED = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                     grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE})
DETECT_CHUNK_ROWS = 10_000  # holdout rows per Detect call, well under the platform's message limit
DATA_ROOT_ENV = "PYNOMALY_OPERATOR_DATA_ROOT"


def _code(e: grpc.RpcError) -> grpc.StatusCode | None:
    """The status of a failed call: the SDK raises its typed errors (grpc.RpcError with code()), the raw stubs
    grpc.Call objects."""
    code = getattr(e, "code", None)
    return code() if callable(code) else None


def _not_found(e: grpc.RpcError) -> bool:
    return _code(e) == grpc.StatusCode.NOT_FOUND


def _job(proto: train_pb2.TrainingJob) -> Job:
    state = train_pb2.TrainingJobState.Name(proto.state).removeprefix("TRAINING_JOB_STATE_")
    return Job(id=proto.id, state=state, message=proto.message, model_version=proto.model_version,
               description=proto.description)


class Platform:
    """The platforms the resources name (one SDK client per address) and the operator's own data access."""

    def __init__(self, data_root: Path | None = None, timeout: float = 30.0,
                 connect: Callable[[str], Client] | None = None):
        root = data_root or (Path(os.environ[DATA_ROOT_ENV]) if os.environ.get(DATA_ROOT_ENV) else None)
        self.data_root = root.resolve() if root else None
        self._connect = connect or (lambda address: Client(address, timeout=timeout))
        self._clients: dict[str, Client] = {}

    def client(self, address: str) -> Client:
        if address not in self._clients:
            self._clients[address] = self._connect(address)
        return self._clients[address]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # --- observing ---

    def observe(self, resource: Resource, now: datetime) -> Observed:
        """What reconcile needs to decide: the job in flight, the tagged jobs when a run is due, the candidate's
        card and holdout ROC-AUC once its job succeeded."""
        try:
            spec = read_spec(resource)
        except InvalidSpec:
            return Observed()
        client, status = self.client(spec.platform), resource.status
        job = self._get_job(client, status["jobId"]) if in_flight(status) else None
        tagged = self._tagged_jobs(client, resource, spec.model_name) if due(resource, now) else ()
        if job is None or job.state != SUCCEEDED or status.get("runGeneration") != resource.generation:
            return Observed(job=job, tagged_jobs=tagged)
        ref = f"{spec.model_name}@{job.model_version}"
        try:
            card = client.get_model(ref)
        except grpc.RpcError as e:
            if not _not_found(e):
                raise
            return Observed(job=job, tagged_jobs=tagged)
        candidate = Candidate(version=card.version, threshold=card.threshold,
                              export_error=card.export_check.max_rel_error)
        roc_auc, error = None, ""
        if spec.gate.min_roc_auc is not None:
            roc_auc, error = self.holdout_roc_auc(client, ref, spec.gate, list(card.feature_names))
        return Observed(job=job, tagged_jobs=tagged, candidate=candidate, roc_auc=roc_auc, holdout_error=error)

    def observe_deletion(self, resource: Resource) -> Observed:
        """The job in flight, every job and version carrying the resource's tag."""
        address = resource.spec.get("platform")
        if not isinstance(address, str) or not address:
            return Observed()  # never reached a platform
        client, name = self.client(address), resource.model_name
        job = self._get_job(client, resource.status["jobId"]) if resource.status.get("jobId") else None
        try:
            versions = client.list_model_versions(name)
        except grpc.RpcError as e:
            if not _not_found(e):
                raise
            versions = []
        mine = tuple(v.version for v in versions if parse_description(resource, v.description) is not None)
        return Observed(job=job, tagged_jobs=self._tagged_jobs(client, resource, name), trained_versions=mine)

    def _get_job(self, client: Client, job_id: str) -> Job | None:
        try:
            return _job(client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job_id),
                                                         timeout=client.timeout).job)
        except grpc.RpcError as e:
            if _not_found(e):
                return None
            raise

    def _tagged_jobs(self, client: Client, resource: Resource, model_name: str) -> tuple[Job, ...]:
        request = train_pb2.ListTrainingJobsRequest(model_name=model_name, page_size=100)
        jobs = client.train_stub.ListTrainingJobs(request, timeout=client.timeout).jobs
        return tuple(_job(j) for j in jobs if parse_description(resource, j.description) is not None)

    # --- the ROC-AUC gate ---

    def holdout_roc_auc(self, client: Client, ref: str, gate: QualityGate,
                        feature_names: list[str]) -> tuple[float | None, str]:
        """(ROC-AUC of the version's scores against the label column, "") or (None, why it could not be had)."""
        from sklearn.metrics import roc_auc_score

        try:
            table = self.read_table(gate.holdout_data)
        except (OSError, ValueError, ImportError) as e:
            return None, f"{type(e).__name__}: {e}"
        if gate.label_column not in table.columns:
            return None, f"label column {gate.label_column!r} not in its columns {list(table.columns)}"
        missing = [f for f in feature_names if f not in table.columns]
        if missing:
            return None, f"the model's features {missing} are not among its columns {list(table.columns)}"
        labels = table[gate.label_column].to_numpy()
        if not set(np.unique(labels).tolist()) <= {0, 1} or len(np.unique(labels)) != 2:
            return None, (f"label column {gate.label_column!r} must hold 0 (normal) and 1 (anomaly), both present; "
                          f"found {sorted(np.unique(labels).tolist())[:5]}")
        X = table[feature_names].to_numpy(dtype=np.float64)
        try:
            scores = np.concatenate([client.detect(ref, X[i:i + DETECT_CHUNK_ROWS]).anomaly_scores
                                     for i in range(0, len(X), DETECT_CHUNK_ROWS)])
        except grpc.RpcError as e:
            if _code(e) in REFUSED:
                return None, f"Detect refused it: {e.details()}"
            raise
        return float(roc_auc_score(labels.astype(int), scores)), ""

    def read_table(self, uri: str) -> Any:
        """A CSV or Parquet file: s3:// (fsspec, credentials from the environment) or a path inside the data root,
        plain or file://, the same rule as the platform's data_uri."""
        import pandas as pd

        lower = uri.lower()
        if not lower.endswith((".csv", ".parquet")):
            raise ValueError(f"{uri!r}: use a .csv or .parquet file")
        if "://" in uri and not uri.startswith("file://"):
            if not uri.startswith("s3://"):
                raise ValueError(f"{uri!r}: unsupported scheme; use s3://, file:// or a path in the data root")
            source: Any = uri
        else:
            if self.data_root is None:
                raise ValueError(f"{uri!r} is a path, and the operator has no data root (set {DATA_ROOT_ENV})")
            source = (self.data_root / uri.removeprefix("file://")).resolve()
            if not source.is_relative_to(self.data_root):
                raise ValueError(f"{uri!r} is outside the operator's data root")
        return pd.read_csv(source) if lower.endswith(".csv") else pd.read_parquet(source)

    # --- executing ---

    def execute(self, resource: Resource, plan: Plan, now: datetime) -> dict[str, Any]:
        """Carry out the plan's actions in order; the status patch to write once they are done."""
        status = dict(plan.status)
        for action in plan.actions:
            if isinstance(action, CreateJob):
                status.update(self._create(resource, action, now))
                continue
            client = self.client(str(resource.spec["platform"]))
            try:
                if isinstance(action, CancelJob):
                    client.train_stub.CancelTrainingJob(train_pb2.CancelTrainingJobRequest(id=action.job_id),
                                                        timeout=client.timeout)
                elif isinstance(action, SetAlias):
                    client.set_alias(action.model_name, action.alias, action.version)
                elif isinstance(action, DeleteVersion):
                    client.delete_model(f"{action.model_name}@{action.version}")
            except grpc.RpcError as e:
                if not (_not_found(e) and isinstance(action, CancelJob | DeleteVersion)):
                    raise  # a job or version already gone is done; anything else is retried
        return status

    def _create(self, resource: Resource, create: CreateJob, now: datetime) -> dict[str, Any]:
        spec = read_spec(resource)
        client = self.client(spec.platform)
        request = train_pb2.CreateTrainingJobRequest(
            model_name=create.model_name, algorithm=create.algorithm, contamination=create.contamination or 0,
            params={k: json_format.ParseDict(v, struct_pb2.Value()) for k, v in create.params.items()},
            data_uri=create.data_uri, description=create.description, label_column=create.label_column,
            threshold_method=create.threshold_method)
        try:
            job = client.train_stub.CreateTrainingJob(request, timeout=client.timeout).job
        except grpc.RpcError as e:
            if _code(e) in REFUSED:
                return rejected(resource, spec, create, f"{e.code().name}: {e.details()}", now)
            raise
        return started(resource, spec, create, job.id, now)


def step(platform: Platform, resource: Resource, now: datetime) -> dict[str, Any]:
    """One reconciliation: observe, decide, act; returns the status patch (empty for a resource being deleted,
    whose finalizer goes once this returns)."""
    if resource.deleting:
        platform.execute(resource, reconcile_deletion(resource, platform.observe_deletion(resource)), now)
        return {}
    return platform.execute(resource, reconcile(resource, platform.observe(resource, now), now), now)

