"""The transport-neutral core of the API: every RPC is one method here. No gRPC in this module.

One DataPlane serves both engines; what differs is injected: where versions are scored (a `Scoring`: this
process's onnxruntime sessions, `runtime.LocalScoring`, or Ray Serve replicas, `ray_engine.gateway.ReplicaScoring`)
and where training runs (the JobManager's pool: worker processes, or Ray tasks), and batch jobs (BatchJobs over
an engine: worker threads here, or Ray Data).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pynomaly import algorithms
from pynomaly.batch import BatchJobs, BatchRequest
from pynomaly.batch.jobs import check_id
from pynomaly.data import read_labelled
from pynomaly.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, PermissionDenied, unknown_model
from pynomaly.explain import Explanation
from pynomaly.imports import ImportSpec, import_model
from pynomaly.jobs import JobManager
from pynomaly.labels import check_labels
from pynomaly.labels import contamination as labels_contamination
from pynomaly.limits import Limits, check_new_version
from pynomaly.observability import tracing
from pynomaly.observability.metrics import NO_METRICS
from pynomaly.refs import check_alias, check_name, parse_ref
from pynomaly.rows import F32_MAX, check_rows
from pynomaly.store import LocalStore, ModelStore, resolve
from pynomaly.store.base import check_job_id
from pynomaly.thresholds import check_method
from pynomaly.training import TrainSpec

DEFAULT_CONTAMINATION = 0.1


@dataclass(frozen=True)
class DetectResult:
    scores: np.ndarray  # in the precision of the rows: float64, or float32 for float32 rows
    is_anomaly: np.ndarray
    threshold: float
    model_name: str
    model_version: int


class ScoredModel(Protocol):
    """What the data plane checks a call against: the version and its manifest."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def manifest(self) -> dict[str, Any]: ...
    @property
    def n_features(self) -> int: ...
    @property
    def threshold(self) -> float: ...


class Scoring(Protocol):
    """Where model versions are scored. `load` returns the version (and whether it was loaded already, where that
    is known here); `score` and `explain` take rows the data plane has checked against it."""

    run_span: str  # the name of the scoring stage in a trace

    async def load(self, name: str, version: int) -> tuple[ScoredModel, bool | None]: ...
    async def score(self, model: Any, X: np.ndarray) -> np.ndarray: ...
    async def explain(self, model: Any, X: np.ndarray, method: str | None,
                      deadline: float | None) -> Explanation: ...
    def evict(self, name: str, version: int) -> None: ...


def _trace_attributes(model: ScoredModel, X: np.ndarray) -> dict[str, Any]:
    return {
        tracing.MODEL_NAME: model.name, tracing.MODEL_VERSION: model.version,
        tracing.ALGORITHM: model.manifest.get("algorithm", ""),
        tracing.ROWS: int(X.shape[0]) if X.ndim else 0, tracing.FEATURES: int(X.shape[1]) if X.ndim == 2 else 0,
    }


class DataPlane:
    def __init__(self, store: ModelStore, scoring: Scoring, jobs: JobManager, data_root: Path | None = None,
                 tracer: Any = tracing.NOOP, metrics: Any = NO_METRICS, batch: BatchJobs | None = None):
        self.store = store
        self.scoring = scoring
        self.jobs = jobs
        self.batch = batch
        self.data_root = data_root.resolve() if data_root else None
        # No-op objects unless observability is switched on (pynomaly.observability): the hot path stays cheap.
        self.tracer = tracer
        self.metrics = metrics
        # Object storage answers a cache miss over the network (3-60 ms): that must not stall the event loop.
        self._remote_store = not isinstance(store, LocalStore)

    @property
    def limits(self) -> Limits:
        """The server's limits (pynomaly.limits): the JobManager's, so both enforce the same ones."""
        return self.jobs.limits

    async def _resolve(self, model: str) -> tuple[str, int]:
        ref = parse_ref(model)
        if self._remote_store:
            return await asyncio.to_thread(resolve, self.store, ref)
        return resolve(self.store, ref)

    async def _load(self, model: str, X: np.ndarray) -> ScoredModel:
        """Resolve the reference, get the version from the scoring side, and check the rows against it."""
        tracer = self.tracer
        call = tracer.current()  # the RPC's span: it gets the model's attributes
        with tracer.span("load_model") as span:
            loaded, hit = await self.scoring.load(*await self._resolve(model))
            if hit is not None and span.is_recording():
                span.set_attribute(tracing.CACHE_HIT, hit)
        if call.is_recording():
            call.set_attributes(_trace_attributes(loaded, X))
        check_rows(X, "rows", loaded.n_features)
        return loaded

    # --- detect ---

    async def detect(self, model: str, X: np.ndarray, threshold: float | None = None) -> DetectResult:
        loaded = await self._load(model, X)
        if threshold is not None and not math.isfinite(threshold):
            raise InvalidArgument(f"threshold must be finite, got {threshold}", field="threshold",
                                  reason="NON_FINITE_VALUE")
        tracer = self.tracer
        with tracer.span(self.scoring.run_span):
            scores = await self.scoring.score(loaded, X)
        if X.dtype != np.float64:
            # Float32 rows get float32 scores, flagged in float32: what such clients always got.
            scores = np.clip(scores, -F32_MAX, F32_MAX).astype(np.float32)
        with tracer.span("threshold") as span:
            used = loaded.threshold if threshold is None else threshold
            is_anomaly = scores > used
            if span.is_recording():
                span.set_attributes({tracing.THRESHOLD: used, tracing.FLAGGED: int(is_anomaly.sum())})
        self.metrics.observe_scores(loaded.name, loaded.version, loaded.manifest, scores)
        return DetectResult(scores, is_anomaly, used, loaded.name, loaded.version)

    # --- explain ---

    async def explain(self, model: str, X: np.ndarray, top_k: int = 0, method: str | None = None,
                      deadline: float | None = None) -> tuple[Explanation, list[str], str, int]:
        """(explanation, feature names, model name, version); `deadline` is a time.monotonic() instant."""
        loaded = await self._load(model, X)
        if not 0 <= top_k <= loaded.n_features:
            raise InvalidArgument(f"top_k must be in [0, {loaded.n_features}] (0 = all features), got {top_k}",
                                  field="top_k")
        if deadline is not None:
            result = await self.scoring.explain(loaded, X, method, deadline)
        else:  # no deadline from the client: the server's own bounds Kernel SHAP
            limit = self.limits.explain_timeout_s
            try:
                result = await self.scoring.explain(loaded, X, method, time.monotonic() + limit)
            except DeadlineExceeded as e:
                raise DeadlineExceeded(f"{e} (the call set no deadline: this server allows {limit:g} s, "
                                       "--explain-timeout-s; or set a deadline)") from None
        return result, loaded.manifest["feature_names"], loaded.name, loaded.version

    # --- training ---

    def create_training_job(
        self,
        model_name: str,
        algorithm: str,
        params: Mapping[str, Any],
        contamination: float,
        matrix: np.ndarray | None,
        data_uri: str,
        feature_names: list[str],
        description: str = "",
        label_column: str = "",
        labels: np.ndarray | None = None,
        threshold_method: str = "",
    ) -> dict[str, Any]:
        self.jobs.check_room()  # before the rows are read: a refused job keeps nothing
        check_name(model_name)
        check_new_version(self.store, model_name, self.limits)
        algo = algorithms.get(algorithm)
        resolved = algo.resolve_params(params)
        given_contamination = contamination
        if contamination == 0:
            contamination = DEFAULT_CONTAMINATION
        if not (0 < contamination <= 0.5):
            raise InvalidArgument(f"contamination must be in (0, 0.5], got {contamination}",
                                  reason="INVALID_CONTAMINATION", field="contamination")
        threshold_method = check_method(threshold_method)
        if not algo.exportable:
            raise FailedPrecondition(f"algorithm {algorithm!r} cannot be exported to ONNX: {algo.export_note}",
                                     reason="NOT_EXPORTABLE", field="algorithm")
        if matrix is not None:
            if label_column:
                raise InvalidArgument("label_column: names a column of a data_uri file; rows sent inline (matrix) "
                                      "take their labels in labels", field="label_column")
            X, y = matrix, labels
        elif data_uri:
            if labels is not None:
                raise InvalidArgument("labels: go with rows sent inline (matrix); a data_uri file names its labels' "
                                      "column in label_column", field="labels")
            X, header, y = read_labelled(self._data_path(data_uri), "data_uri", label_column)
            feature_names = feature_names or header
        else:
            raise InvalidArgument("data: set either matrix or data_uri")
        check_rows(X, "matrix" if matrix is not None else "data_uri")
        if algo.max_training_rows and len(X) > algo.max_training_rows:
            raise InvalidArgument(
                f"{'matrix' if matrix is not None else 'data_uri'}: algorithm {algorithm!r} trains on at most "
                f"{algo.max_training_rows} rows (its fit is quadratic in the rows), got {len(X)}; sample the data",
                reason="TOO_MANY_ROWS")
        if algo.n_features and X.shape[1] != algo.n_features:
            raise InvalidArgument(
                f"{'matrix' if matrix is not None else 'data_uri'}: algorithm {algorithm!r} trains on exactly "
                f"{algo.n_features} feature(s), got {X.shape[1]} columns; send only the column(s) to model",
                reason="WRONG_WIDTH")
        if len(X) < 2:
            raise InvalidArgument(f"{'matrix' if matrix is not None else 'data_uri'}: training needs at least "
                                  f"2 rows, got {len(X)}")
        if not feature_names:
            feature_names = [f"f{i}" for i in range(X.shape[1])]
        if len(feature_names) != X.shape[1]:
            raise InvalidArgument(f"feature_names: {len(feature_names)} names for {X.shape[1]} columns")
        if len(set(feature_names)) != len(feature_names) or not all(feature_names):
            raise InvalidArgument("feature_names: names must be non-empty and unique")
        if y is None and algo.needs_labels:
            where = "labels" if matrix is not None else "label_column"
            raise InvalidArgument(
                f"{where}: algorithm {algorithm!r} learns from labels; send them in labels (rows sent inline) or "
                "name their column in label_column (a data_uri file)", reason="LABELS_REQUIRED", field=where)
        if y is not None:
            y = check_labels(y, len(X), "labels" if matrix is not None else "label_column")
            contamination = labels_contamination(y, given_contamination)
        spec = TrainSpec(model_name=model_name, algorithm=algorithm, params=resolved, contamination=contamination,
                         feature_names=list(feature_names), description=description,
                         given_params={k: resolved[k] for k in params},  # as declared: 100, not 100.0
                         labels=y, threshold_method=threshold_method)
        return self.jobs.submit(spec, X)

    def _data_path(self, uri: str) -> Path:
        if self.data_root is None:
            raise FailedPrecondition("data_uri: this server reads no files; start it with --data-root DIR, "
                                     "or send the rows inline")
        if "\0" in uri:
            raise InvalidArgument(f"data_uri: {uri!r} contains a NUL character")
        path = Path(uri.removeprefix("file://"))
        if "://" in uri and not uri.startswith("file://"):
            raise InvalidArgument(f"data_uri: unsupported scheme in {uri!r}; use file:// or a plain path")
        path = (self.data_root / path).resolve()
        if not path.is_relative_to(self.data_root):
            raise PermissionDenied(f"data_uri: {uri!r} is outside the server's data root")
        try:
            is_file = path.is_file()
        except OSError as e:  # a name too long, say
            raise InvalidArgument(f"data_uri: {uri!r}: {e.strerror}") from None
        if not is_file:
            raise InvalidArgument(f"data_uri: {uri!r} does not exist or is not a file")
        return path

    # --- models ---

    def model_card(self, name: str, version: int) -> dict[str, Any]:
        manifest = self.store.manifest(name, version)
        aliases = sorted(a for a, v in self.store.aliases(name).items() if v == version)
        return {**manifest, "aliases": aliases}

    def get_model_version(self, model: str) -> dict[str, Any]:
        return self.model_card(*resolve(self.store, parse_ref(model)))

    def list_models(self) -> list[dict[str, Any]]:
        return [self.model_card(name, self.store.versions(name)[-1]) for name in self.store.model_names()]

    def list_model_versions(self, name: str) -> list[dict[str, Any]]:
        check_name(name, "name")
        versions = self.store.versions(name)
        if not versions:
            raise unknown_model(name)
        return [self.model_card(name, v) for v in reversed(versions)]

    def delete_model_version(self, model: str) -> None:
        ref = parse_ref(model)
        if ref.version is None:
            raise InvalidArgument(f"model: name an explicit version to delete, e.g. '{ref.name}@1'")
        name, version = resolve(self.store, ref)
        self.store.delete_version(name, version)
        self.scoring.evict(name, version)

    def set_model_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        check_name(name, "name")
        check_alias(alias)
        if version < 1:
            raise InvalidArgument(f"version must be ≥ 1, got {version}", field="version")
        self.store.set_alias(name, alias, version)
        return self.model_card(name, version)

    def delete_model_alias(self, name: str, alias: str) -> None:
        check_name(name, "name")
        check_alias(alias)
        self.store.delete_alias(name, alias)

    def import_model(self, spec: ImportSpec) -> dict[str, Any]:
        check_name(spec.name, "name")
        if spec.contamination == 0:
            spec.contamination = DEFAULT_CONTAMINATION
        check_new_version(self.store, spec.name, self.limits)
        graph, manifest, arrays = import_model(spec, self.limits.import_run_timeout_s)
        version = self.store.create_version(spec.name, graph, manifest, arrays or None)
        return self.model_card(spec.name, version)

    def model_file(self, model: str) -> tuple[dict[str, Any], bytes]:
        name, version = resolve(self.store, parse_ref(model))
        return self.model_card(name, version), self.store.onnx_bytes(name, version)

    # --- jobs ---

    def get_training_job(self, job_id: str) -> dict[str, Any]:
        check_job_id(job_id)
        return self.jobs.get(job_id)

    def list_training_jobs(self, model_name: str, page_size: int) -> list[dict[str, Any]]:
        if page_size < 0:
            raise InvalidArgument(f"page_size must be ≥ 0, got {page_size}", field="page_size")
        return self.jobs.list(model_name, page_size or 100)

    def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        check_job_id(job_id)
        return self.jobs.cancel(job_id)

    def watch_training_job(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        check_job_id(job_id)
        return self.jobs.watch(job_id)  # NotFound at once, before the stream starts

    # --- batch jobs ---

    def _batch(self) -> BatchJobs:
        if self.batch is None:
            raise FailedPrecondition("this server runs no batch jobs")
        return self.batch

    async def create_batch_detect_job(self, request: BatchRequest) -> dict[str, Any]:
        batch = self._batch()
        name, version = await self._resolve(request.model)
        if self._remote_store:
            manifest = await asyncio.to_thread(self.store.manifest, name, version)
        else:
            manifest = self.store.manifest(name, version)
        return await batch.create(request, name, version, manifest)

    def get_batch_detect_job(self, job_id: str) -> dict[str, Any]:
        check_id(job_id)
        return self._batch().get(job_id)

    def list_batch_detect_jobs(self, model_name: str, page_size: int) -> list[dict[str, Any]]:
        if page_size < 0:
            raise InvalidArgument(f"page_size must be ≥ 0, got {page_size}", field="page_size")
        return self._batch().list(model_name, page_size or 100)

    async def cancel_batch_detect_job(self, job_id: str) -> dict[str, Any]:
        check_id(job_id)
        return await self._batch().cancel(job_id)

    def watch_batch_detect_job(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        check_id(job_id)
        return self._batch().watch(job_id)  # NotFound at once, before the stream starts
