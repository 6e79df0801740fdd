"""onnxruntime sessions for model versions, loaded once and kept in an LRU bounded by count and by bytes, and
`LocalScoring`: the data plane's scoring port over them (the embedded engine; each Ray Scorer replica)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from pynomaly.limits import timed_run
from pynomaly.rows import input_dtype
from pynomaly.store import ModelStore

_SCORE = ["anomaly_score"]  # graphs may have more outputs (e.g. "contributions"): ask for the score only
SPLIT_ROWS = 2048  # below this, one thread: splitting costs more than it saves
# Above this many rows, onnxruntime runs in worker threads so the event loop keeps answering other calls.
INLINE_ROWS = 512
# One onnxruntime run scores at most this many [rows x reference rows] values: the kernel and distance graphs
# (OCSVM, KNN, LOF, KDE, ...) hold an [N, M] matrix per run, M = support vectors or training rows. Scoring
# shuttle's 49k rows against OCSVM's ~24k support vectors in one run took >20 GB and was killed.
RUN_ELEMENTS = 1 << 25
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 64, 8192


def run_chunked(session: ort.InferenceSession, input_name: str, X: np.ndarray, rows: int,
                timeout_s: float | None = None, what: str = "") -> np.ndarray:
    """The score output for X (already in the graph's input dtype), at most `rows` rows per run; each run stopped
    after `timeout_s` (imported graphs: pynomaly.limits.timed_run), `what` naming the graph in that error."""
    def run(part: np.ndarray) -> np.ndarray:
        if timeout_s is None:
            return session.run(_SCORE, {input_name: part})[0]
        return timed_run(session, _SCORE, {input_name: part}, timeout_s, f"{what} scoring {len(part)} rows")[0]

    if len(X) <= rows:
        return run(X)
    return np.concatenate([run(X[i : i + rows]) for i in range(0, len(X), rows)])


def chunk_rows(graph: bytes | Any) -> int:
    """Rows per onnxruntime run for this graph: bounded by the largest 2-D constant it scores rows against."""
    import onnx

    model = onnx.load_from_string(graph) if isinstance(graph, bytes) else graph
    # The longer side of a matrix constant: [M, F] or [F, M] (transposed for MatMul) alike.
    reference = max((max(t.dims) for t in model.graph.initializer if len(t.dims) == 2), default=1)
    for node in model.graph.node:  # constants folded into Constant nodes by some exporters
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and len(a.t.dims) == 2:
                reference = max(reference, max(a.t.dims))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, RUN_ELEMENTS // max(reference, 1))))


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    session: ort.InferenceSession  # the whole graph: every output (Explain's exact method reads "contributions")
    manifest: dict[str, Any]
    input_name: str
    n_features: int
    threshold: float
    score_session: ort.InferenceSession  # the score alone (Detect); `session` itself for single-output graphs
    chunk_rows: int = MAX_CHUNK_ROWS  # rows per onnxruntime run (bounds memory; the graphs are batch-invariant)
    dtype: np.dtype = np.dtype(np.float64)  # the graph's input: float64, or float32 for versions that predate it
    size_bytes: int = 0  # what the session cache counts against --max-cache-mb: the ONNX bytes of its sessions
    run_timeout_s: float | None = None  # imported graphs: --import-run-timeout-s a run; exported ones: none

    def rows(self, X: np.ndarray) -> np.ndarray:
        """X as the graph takes it: float64 rows rounded to float32 for a float32 graph, float32 ones widened."""
        return np.ascontiguousarray(X, dtype=self.dtype)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly scores (float64, one per row) of a float32 or float64 matrix of the right width."""
        scores = run_chunked(self.score_session, self.input_name, self.rows(X), self.chunk_rows,
                             self.run_timeout_s, f"model {self.name}@{self.version} (an imported graph)")
        return scores.astype(np.float64, copy=False)


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    # Thread counts are explicit: onnxruntime ignores OMP_NUM_THREADS, and its default (one thread per core)
    # oversubscribes a shared machine. Sessions are single-threaded: a 1-row call then never waits for a worker
    # thread to wake; large batches are split across `SessionCache.threads` instead (rows are independent).
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads of many sessions in one process fight over the cores (10k-row IForest went from
    # 18 ms to 50-70 ms with sessions interleaved); not spinning cost nothing measurable.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def score_only_session(graph: bytes, session: ort.InferenceSession,
                       options: ort.SessionOptions) -> ort.InferenceSession:
    """A session of the graph cut down to what the score needs, or `session` itself when the score is the only
    output. onnxruntime runs every node whatever outputs are asked for: an additive graph's contributions cost
    Detect up to 1.8x (PCA, 10k rows: 2.6 vs 1.4 ms)."""
    if len(session.get_outputs()) == 1:
        return session
    import onnx
    from onnx.utils import Extractor

    try:
        pruned = Extractor(onnx.load_from_string(graph)).extract_model([session.get_inputs()[0].name], _SCORE)
        return ort.InferenceSession(pruned.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 — a graph the extractor cannot cut is served whole
        return session


class SessionCache:
    """Loaded versions, least recently used evicted first beyond `max_models` versions or beyond `max_bytes`.

    Bytes are a proxy for memory: the ONNX bytes of a version's sessions, plus its explain arrays once loaded
    (onnxruntime's own buffers come on top, roughly in proportion). A version larger than the whole byte budget
    still loads: it is then the only one held. `run_timeout_s` bounds each onnxruntime run of an imported graph."""

    def __init__(self, store: ModelStore, threads: int = 2, max_models: int = 64, max_bytes: int | None = None,
                 run_timeout_s: float | None = None):
        self._store = store
        self._max_bytes = max_bytes
        self._run_timeout_s = run_timeout_s
        self._sizes: dict[tuple[str, int], int] = {}
        self.bytes = 0  # the sum of _sizes: the held versions' bytes
        self._options = session_options(1)
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pynomaly-ort")
        self._max = max_models
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._explainers: dict[tuple[str, int], Any] = {}
        # Two locks: `_index` guards the LRU (held for a few dict operations, also on the 1-row hot path), and
        # `_loading` makes loads one at a time (no version loaded twice) without holding up hits on other versions.
        # Hits come from the event loop while a load or an eviction runs in a worker thread (object stores, the
        # Ray Scorer): an unguarded move_to_end then races popitem.
        self._index = threading.Lock()
        self._loading = threading.Lock()
        self.hits = self.misses = self.evictions = 0  # read by the metrics at scrape time

    def __len__(self) -> int:
        return len(self._models)

    @property
    def capacity(self) -> int:
        return self._max

    def cached(self, name: str, version: int) -> LoadedModel | None:
        """The version if it is loaded (a hit), else None: nothing is read from the store."""
        key = (name, version)
        with self._index:
            model = self._models.get(key)
            if model is not None:
                self.hits += 1
                self._models.move_to_end(key)
        return model

    def get(self, name: str, version: int) -> LoadedModel:
        model = self.cached(name, version)
        if model is not None:
            return model
        key = (name, version)
        with self._loading:
            with self._index:
                model = self._models.get(key)  # loaded by the call this one waited for
            if model is None:
                model = self._load(name, version)
                with self._index:
                    self.misses += 1
                    self._models[key] = model
                    self._add_bytes(key, model.size_bytes)
                    self._shrink()
        return model

    def _add_bytes(self, key: tuple[str, int], size: int) -> None:
        self._sizes[key] = self._sizes.get(key, 0) + size
        self.bytes += size

    def _shrink(self) -> None:
        """Evict least recently used versions until both bounds hold, or one version is left (held: `_index`)."""
        while len(self._models) > self._max or (
                self._max_bytes is not None and self.bytes > self._max_bytes and len(self._models) > 1):
            evicted, _ = self._models.popitem(last=False)
            self._explainers.pop(evicted, None)
            self.bytes -= self._sizes.pop(evicted, 0)
            self.evictions += 1

    def _load(self, name: str, version: int) -> LoadedModel:
        manifest = self._store.manifest(name, version)
        graph = self._store.onnx_bytes(name, version)
        session = ort.InferenceSession(graph, self._options, providers=["CPUExecutionProvider"])
        score_session = score_only_session(graph, session, self._options)
        imported = manifest.get("algorithm") == "onnx"  # pynomaly.imports: a graph from outside
        return LoadedModel(
            name=name,
            version=version,
            session=session,
            manifest=manifest,
            input_name=session.get_inputs()[0].name,
            n_features=len(manifest["feature_names"]),
            threshold=float(manifest["threshold"]),
            score_session=score_session,
            chunk_rows=chunk_rows(graph),
            dtype=input_dtype(session),
            size_bytes=len(graph) * (1 if score_session is session else 2),
            run_timeout_s=self._run_timeout_s if imported else None,
        )

    def loaded(self) -> list[LoadedModel]:
        """The versions held now, least recently used first."""
        with self._index:
            return list(self._models.values())

    def evict(self, name: str, version: int) -> None:
        with self._index:
            self._models.pop((name, version), None)
            self._explainers.pop((name, version), None)
            self.bytes -= self._sizes.pop((name, version), 0)

    def explainer(self, model: LoadedModel) -> Any:
        """The version's ModelExplainer (its explain.npz read once), kept while the version is loaded."""
        key = (model.name, model.version)
        explainer = self._explainers.get(key)
        if explainer is None:
            from pynomaly.explain import ModelExplainer

            arrays = self._store.arrays(model.name, model.version)
            explainer = ModelExplainer(model, arrays, functools.partial(self.score_split, model))
            with self._index:
                if self._models.get(key) is model and key not in self._explainers:
                    # Not evicted meanwhile (an evicted version's would leak): held, and counted, with the version.
                    self._explainers[key] = explainer
                    self._add_bytes(key, sum(a.nbytes for a in arrays.values()))
                    self._shrink()
                else:
                    explainer = self._explainers.get(key, explainer)
        return explainer

    def score_split(self, model: LoadedModel, X: np.ndarray) -> np.ndarray:
        """Score a large batch in `threads` chunks at once, blocking: for callers already off the event loop
        (Kernel SHAP's ~16k evaluations a row; never from a thread of this pool, which could deadlock it)."""
        if self.threads == 1 or len(X) < SPLIT_ROWS:
            return model.score(X)
        return np.concatenate(list(self._pool.map(model.score, np.array_split(X, self.threads))))

    async def score_parallel(self, model: LoadedModel, X: np.ndarray) -> np.ndarray:
        """Score a large batch off the event loop, in `threads` chunks at once (onnxruntime releases the GIL)."""
        loop = asyncio.get_running_loop()
        chunks = np.array_split(X, min(self.threads, len(X)))
        parts = await asyncio.gather(*(loop.run_in_executor(self._pool, model.score, c) for c in chunks))
        return np.concatenate(parts)


class LocalScoring:
    """The data plane's scoring port in this process: versions from the SessionCache, scored by onnxruntime.

    `offload_loads`: load versions and explainers in a worker thread (an object store answers a miss over the
    network, 3-60 ms, which must not stall the event loop); a local disk is read on the loop."""

    run_span = "onnxruntime.run"

    def __init__(self, sessions: SessionCache, offload_loads: bool = False):
        self.sessions = sessions
        self._offload = offload_loads

    async def load(self, name: str, version: int) -> tuple[LoadedModel, bool]:
        loaded = self.sessions.cached(name, version)
        if loaded is not None:
            return loaded, True
        if self._offload:
            return await asyncio.to_thread(self.sessions.get, name, version), False
        return self.sessions.get(name, version), False

    async def score(self, model: LoadedModel, X: np.ndarray) -> np.ndarray:
        if len(X) <= INLINE_ROWS:
            return model.score(X)
        return await self.sessions.score_parallel(model, X)

    async def explain(self, model: LoadedModel, X: np.ndarray, method: str | None, deadline: float | None) -> Any:
        if self._offload:  # the first call reads the version's arrays from the store
            explainer = await asyncio.to_thread(self.sessions.explainer, model)
        else:
            explainer = self.sessions.explainer(model)
        method = explainer.check_method(method)
        if method == "exact" and len(X) <= INLINE_ROWS:
            return explainer.explain(X, method)
        return await asyncio.to_thread(explainer.explain, X, method, deadline)

    def evict(self, name: str, version: int) -> None:
        self.sessions.evict(name, version)
