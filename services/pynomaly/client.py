"""The Python SDK: train on a numpy array or DataFrame, detect, get numpy arrays back.

    from pynomaly import Client
    with Client("127.0.0.1:50051") as client:
        model = client.train("cardio", X, algorithm="iforest", params={"random_state": 0})
        result = client.detect("cardio", X_new)
        result.anomaly_scores, result.is_anomaly
        job = client.batch_detect("cardio", "in.parquet", "out.parquet", id_column="id")  # files the server reads
    Client("pynomaly.example:443", tls_ca="ca.crt", token="...")  # TLS, and a bearer token (default $PYNOMALY_TOKEN)

A refused call raises the ApiError subclass for its status (pynomaly.client_errors: InvalidArgumentError,
NotFoundError, ...) with the server's reason, field violations and resource; each is a `grpc.RpcError` too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from pynomaly.algorithms import as_declared
from pynomaly.client_errors import BatchError, TrainingError, TypedStub
from pynomaly.data import precision
from pynomaly.labels import wire_labels
from pynomaly.v1 import (
    common_pb2,
    detect_pb2,
    detect_pb2_grpc,
    explain_pb2,
    explain_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    train_pb2,
    train_pb2_grpc,
)

DEFAULT_TARGET = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ExplainResult:
    anomaly_scores: np.ndarray  # [rows]
    base_values: np.ndarray  # [rows]; anomaly_score = base_value + Σ contributions
    contributions: np.ndarray  # [rows, features], feature order; NaN where top_k left a feature out
    feature_names: list[str]
    method: str  # "exact", "tree_shap" or "kernel_shap"
    evaluations_per_row: int
    model_name: str
    model_version: int


@dataclass(frozen=True)
class DetectResult:
    anomaly_scores: np.ndarray  # float64, one per row, higher = more anomalous (float32 values for float32 rows)
    is_anomaly: np.ndarray  # bool, anomaly_score > threshold
    threshold: float
    model_name: str
    model_version: int


def to_matrix(X: Any) -> tuple[common_pb2.Matrix, list[str]]:
    """A Matrix in X's precision (raw float64, or float32 when X is float32); a DataFrame's column names."""
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else []
    # float32 when X holds float32 data (a float32 array; a DataFrame whose columns all are), float64 for the rest:
    # numpy's default float, integers, Python lists, CSV and Parquet double columns.
    dtype = precision(list(X.dtypes) if hasattr(X, "columns") and hasattr(X, "dtypes") else [getattr(X, "dtype", None)])
    array = np.asarray(X, dtype=dtype)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array (rows × features), got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=dtype)
    field = "raw_values" if dtype.itemsize == 4 else "raw_double_values"
    return common_pb2.Matrix(rows=array.shape[0], columns=array.shape[1], **{field: array.tobytes()}), names


def _value(v: Any) -> Any:
    from google.protobuf import json_format, struct_pb2

    return json_format.ParseDict(v.item() if isinstance(v, np.generic) else v, struct_pb2.Value())


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call's metadata."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), self._header])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def _pem(value: str | os.PathLike[str] | bytes | None) -> bytes | None:
    return value if isinstance(value, bytes) or value is None else Path(value).read_bytes()


class Client:
    """A connection to a Pynomaly server. TLS when `tls_ca` (the CA that signed the server's certificate: a PEM
    file or its bytes), `tls_cert`/`tls_key` (this client's certificate, for mutual TLS) or `credentials` are
    given; plaintext otherwise. `token`: the bearer token sent with every call (default: $PYNOMALY_TOKEN)."""

    def __init__(self, target: str = DEFAULT_TARGET, *, timeout: float | None = 60.0,
                 channel: grpc.Channel | None = None, token: str | None = None,
                 tls_ca: str | os.PathLike[str] | bytes | None = None,
                 tls_cert: str | os.PathLike[str] | bytes | None = None,
                 tls_key: str | os.PathLike[str] | bytes | None = None,
                 credentials: grpc.ChannelCredentials | None = None):
        self.timeout = timeout
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together: give both, or neither")
        if credentials is None and (tls_ca or tls_cert):
            credentials = grpc.ssl_channel_credentials(_pem(tls_ca), _pem(tls_key), _pem(tls_cert))
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if channel is None:
            channel = (grpc.secure_channel(target, credentials, options) if credentials is not None
                       else grpc.insecure_channel(target, options))
        token = token if token is not None else os.environ.get("PYNOMALY_TOKEN") or None
        self._channel = grpc.intercept_channel(channel, _BearerToken(token)) if token else channel
        self.train_stub: Any = TypedStub(train_pb2_grpc.TrainServiceStub(self._channel))
        self.model_stub: Any = TypedStub(model_pb2_grpc.ModelServiceStub(self._channel))
        self.detect_stub: Any = TypedStub(detect_pb2_grpc.DetectServiceStub(self._channel))
        self.explain_stub: Any = TypedStub(explain_pb2_grpc.ExplainServiceStub(self._channel))
        self._features: dict[tuple[str, int], list[str]] = {}
        self._types: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- training ---

    def start_training(
        self,
        name: str,
        X: Any,
        *,
        algorithm: str = "iforest",
        params: Mapping[str, Any] | None = None,
        contamination: float = 0.0,
        feature_names: Sequence[str] | None = None,
        description: str = "", labels: Any = None, threshold_method: str = "",
    ) -> train_pb2.TrainingJob:
        """Start a training job on rows X (array or DataFrame); `labels`: 0/1 per row (1 = anomaly), optional."""
        matrix, names = to_matrix(X)
        request = train_pb2.CreateTrainingJobRequest(
            model_name=name, algorithm=algorithm, threshold_method=threshold_method,
            params={k: _value(v) for k, v in (params or {}).items()},
            contamination=contamination,
            matrix=matrix,
            feature_names=list(feature_names or names),
            description=description,
            labels=wire_labels(labels),
        )
        return self.train_stub.CreateTrainingJob(request, timeout=self.timeout).job

    def wait(self, job_id: str, on_update: Callable[[train_pb2.TrainingJob], None] | None = None,
             timeout: float | None = None) -> train_pb2.TrainingJob:
        """Follow a job until it ends; return it if it succeeded, else raise TrainingError."""
        job = None
        for event in self.train_stub.WatchTrainingJob(train_pb2.WatchTrainingJobRequest(id=job_id), timeout=timeout):
            job = event.job
            if on_update:
                on_update(job)
        assert job is not None
        if job.state != train_pb2.TRAINING_JOB_STATE_SUCCEEDED:
            raise TrainingError(job)
        return job

    def cancel_training(self, job_id: str) -> train_pb2.TrainingJob:
        """Cancel a training job (a running one stops at its next stage, "auto" candidate or reported epoch);
        returns the job."""
        cancel = train_pb2.CancelTrainingJobRequest(id=job_id)
        return self.train_stub.CancelTrainingJob(cancel, timeout=self.timeout).job

    def train(self, name: str, X: Any, *, on_update: Callable[[train_pb2.TrainingJob], None] | None = None,
              wait_timeout: float | None = None, **kwargs: Any) -> model_pb2.ModelVersion:
        """Train a new version of model `name` on X and wait for it; return its model card."""
        job = self.wait(self.start_training(name, X, **kwargs).id, on_update, wait_timeout)
        return self.get_model(f"{job.model_name}@{job.model_version}")

    def list_algorithms(self) -> list[train_pb2.Algorithm]:
        return list(self.train_stub.ListAlgorithms(train_pb2.ListAlgorithmsRequest(), timeout=self.timeout).algorithms)

    def params(self, message: Any) -> dict[str, Any]:
        """The parameters of a ModelVersion or TrainingJob (or an Algorithm's defaults) as values of their declared
        types, as ListAlgorithms declares them: 100, not the 100.0 a google.protobuf.Value carries."""
        from google.protobuf import json_format

        if isinstance(message, train_pb2.Algorithm):
            return {p.name: as_declared(json_format.MessageToDict(p.default_value), p.type) for p in message.parameters}
        if not self._types:
            self._types = {a.name: {p.name: p.type for p in a.parameters} for a in self.list_algorithms()}
        types = self._types.get(message.algorithm, {})
        return {k: as_declared(json_format.MessageToDict(v), types.get(k, "")) for k, v in message.params.items()}

    # --- models ---

    def get_model(self, model: str) -> model_pb2.ModelVersion:
        request = model_pb2.GetModelVersionRequest(model=model)
        return self.model_stub.GetModelVersion(request, timeout=self.timeout).model_version

    def list_models(self) -> list[model_pb2.ModelVersion]:
        return list(self.model_stub.ListModels(model_pb2.ListModelsRequest(), timeout=self.timeout).models)

    def list_model_versions(self, name: str) -> list[model_pb2.ModelVersion]:
        """Every version of one model, newest first."""
        request = model_pb2.ListModelVersionsRequest(name=name)
        return list(self.model_stub.ListModelVersions(request, timeout=self.timeout).versions)

    def delete_model(self, model: str) -> None:
        self.model_stub.DeleteModelVersion(model_pb2.DeleteModelVersionRequest(model=model), timeout=self.timeout)

    def set_alias(self, name: str, alias: str, version: int) -> model_pb2.ModelVersion:
        request = model_pb2.SetModelAliasRequest(name=name, alias=alias, version=version)
        return self.model_stub.SetModelAlias(request, timeout=self.timeout).model_version

    def import_model(
        self,
        name: str,
        onnx_model: bytes,
        *,
        score_output: str = "",
        feature_names: Sequence[str] | None = None,
        threshold: float | None = None,
        reference_rows: Any = None,
        contamination: float = 0.1,
        lower_is_anomalous: bool = False,
        description: str = "",
    ) -> model_pb2.ModelVersion:
        """Import an ONNX model trained anywhere as the next version of `name`; give a threshold or reference rows."""
        request = model_pb2.ImportModelRequest(
            name=name, onnx_model=onnx_model, score_output=score_output, feature_names=list(feature_names or []),
            threshold=threshold, contamination=contamination, lower_is_anomalous=lower_is_anomalous,
            description=description,
        )
        if reference_rows is not None:
            request.reference_rows.CopyFrom(to_matrix(reference_rows)[0])
        return self.model_stub.ImportModel(request, timeout=self.timeout).model_version

    def import_torch(
        self,
        name: str,
        module: Any,
        n_features: int,
        *,
        higher_is_anomalous: bool = True,
        **kwargs: Any,
    ) -> model_pb2.ModelVersion:
        """Export a torch module mapping float32 rows [N, F] to scores [N] to ONNX (verified against the module),
        then import it like `import_model` (give `threshold` or `reference_rows`)."""
        from pynomaly.export.torch_module import export_module

        graph = export_module(module, n_features, higher_is_anomalous=higher_is_anomalous)
        return self.import_model(name, graph, score_output="anomaly_score", **kwargs)

    def download_model(self, model: str) -> bytes:
        chunks = self.model_stub.DownloadModel(model_pb2.DownloadModelRequest(model=model), timeout=self.timeout)
        return b"".join(c.chunk for c in chunks)

    # --- explanation ---

    def explain(self, model: str, X: Any, *, top_k: int = 0, method: str | None = None) -> ExplainResult:
        """Per-feature contributions to the scores of rows X; method "exact", "tree_shap", "kernel_shap" or None
        (the model's default)."""
        matrix, _ = to_matrix(X)
        enum = explain_pb2.ExplainMethod.Value(f"EXPLAIN_METHOD_{(method or 'unspecified').upper()}")
        # Every feature: the packed layout (dense arrays, no per-attribution messages); top k: one message per row.
        layout = explain_pb2.EXPLAIN_LAYOUT_ROWS if top_k else explain_pb2.EXPLAIN_LAYOUT_PACKED
        request = explain_pb2.ExplainRequest(model=model, rows=matrix, top_k=top_k, method=enum, layout=layout)
        r = self.explain_stub.Explain(request, timeout=self.timeout)
        if top_k:
            names = self._feature_names(r.model_name, r.model_version)
            index = {n: j for j, n in enumerate(names)}
            contributions = np.full((len(r.rows), len(names)), np.nan)
            for i, row in enumerate(r.rows):
                for a in row.attributions:
                    contributions[i, index[a.feature]] = a.contribution
            scores = np.array([row.anomaly_score for row in r.rows])
            base_values = np.array([row.base_value for row in r.rows])
        else:
            names = list(r.feature_names)
            scores, base_values = np.array(r.anomaly_scores), np.array(r.base_values)
            contributions = np.array(r.contributions).reshape(len(scores), len(names))
        return ExplainResult(
            anomaly_scores=scores,
            base_values=base_values,
            contributions=contributions,
            feature_names=names,
            method=explain_pb2.ExplainMethod.Name(r.method).removeprefix("EXPLAIN_METHOD_").lower(),
            evaluations_per_row=r.evaluations_per_row,
            model_name=r.model_name,
            model_version=r.model_version,
        )

    def _feature_names(self, name: str, version: int) -> list[str]:
        """A version's feature order, fetched once: versions are immutable."""
        key = (name, version)
        if key not in self._features:
            self._features[key] = list(self.get_model(f"{name}@{version}").feature_names)
        return self._features[key]

    # --- detection ---

    def detect(self, model: str, X: Any, *, threshold: float | None = None) -> DetectResult:
        """Score rows X with `model` ("name", "name@3" or "name:alias")."""
        matrix, _ = to_matrix(X)
        request = detect_pb2.DetectRequest(model=model, rows=matrix, threshold=threshold)
        r = self.detect_stub.Detect(request, timeout=self.timeout)
        return DetectResult(
            anomaly_scores=np.array(r.double_anomaly_scores or r.anomaly_scores, dtype=np.float64),
            is_anomaly=np.array(r.is_anomaly, dtype=bool),
            threshold=r.threshold,
            model_name=r.model_name,
            model_version=r.model_version,
        )

    # --- batch scoring ---

    def start_batch_detect(self, model: str, input_uri: str, output_uri: str, *, id_column: str = "",
                           pass_through: bool = False, overwrite: bool = False,
                           threshold: float | None = None) -> detect_pb2.BatchDetectJob:
        """Start scoring the file `input_uri` into `output_uri` (.csv or .parquet; paths the server reads and writes
        under its roots, or s3:// URLs) and return the job without waiting."""
        request = detect_pb2.CreateBatchDetectJobRequest(
            model=model, input_uri=input_uri, output_uri=output_uri, id_column=id_column, pass_through=pass_through,
            overwrite=overwrite, threshold=threshold,
        )
        return self.detect_stub.CreateBatchDetectJob(request, timeout=self.timeout).job

    def get_batch_job(self, job_id: str) -> detect_pb2.BatchDetectJob:
        request = detect_pb2.GetBatchDetectJobRequest(id=job_id)
        return self.detect_stub.GetBatchDetectJob(request, timeout=self.timeout).job

    def list_batch_jobs(self, model_name: str = "", page_size: int = 0) -> list[detect_pb2.BatchDetectJob]:
        """Batch jobs, newest first (of one model if `model_name` is given)."""
        request = detect_pb2.ListBatchDetectJobsRequest(model_name=model_name, page_size=page_size)
        return list(self.detect_stub.ListBatchDetectJobs(request, timeout=self.timeout).jobs)

    def cancel_batch_job(self, job_id: str) -> detect_pb2.BatchDetectJob:
        """Cancel a batch job; returns once its work has stopped and its partial output is gone."""
        request = detect_pb2.CancelBatchDetectJobRequest(id=job_id)
        return self.detect_stub.CancelBatchDetectJob(request, timeout=self.timeout).job

    def watch_batch_job(self, job_id: str, timeout: float | None = None) -> Iterator[detect_pb2.BatchDetectJob]:
        """The job's state and progress: now, then as it changes, until it ends."""
        request = detect_pb2.WatchBatchDetectJobRequest(id=job_id)
        for event in self.detect_stub.WatchBatchDetectJob(request, timeout=timeout):
            yield event.job

    def wait_batch(self, job_id: str, on_update: Callable[[detect_pb2.BatchDetectJob], None] | None = None,
                   timeout: float | None = None) -> detect_pb2.BatchDetectJob:
        """Follow a batch job until it ends; return it if it succeeded, else raise BatchError."""
        job = None
        for job in self.watch_batch_job(job_id, timeout):
            if on_update:
                on_update(job)
        assert job is not None
        if job.state != detect_pb2.BATCH_DETECT_JOB_STATE_SUCCEEDED:
            raise BatchError(job)
        return job

    def batch_detect(self, model: str, input_uri: str, output_uri: str, *,
                     on_update: Callable[[detect_pb2.BatchDetectJob], None] | None = None,
                     wait_timeout: float | None = None, **kwargs: Any) -> detect_pb2.BatchDetectJob:
        """Score a file into another with `model` and wait for the job (see `start_batch_detect` for the options);
        return the finished job. Interrupted while waiting (Ctrl-C), it cancels the job before raising."""
        job = self.start_batch_detect(model, input_uri, output_uri, **kwargs)
        try:
            return self.wait_batch(job.id, on_update, wait_timeout)
        except KeyboardInterrupt:
            self.cancel_batch_job(job.id)
            raise
