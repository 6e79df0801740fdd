"""Prometheus metrics of the embedded server, served over HTTP when `--metrics-port` is given; a no-op otherwise.

Off (the default), `NO_METRICS` stands in: prometheus_client is never imported and no interceptor is installed.

What a scrape shows (one registry per server, plus the client's process_* / python_* collectors):

    grpc_server_started_total{grpc_type,grpc_service,grpc_method}              RPCs started
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}    RPCs finished, by status code;
                                                                               errors are grpc_code != "OK"
    grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}           latency histogram
    pynomaly_detect_rows_total{model,version}                                  rows scored
    pynomaly_detect_rows_flagged_total{model,version}                          rows over the model's own threshold
    pynomaly_detect_score{model,version}                                       histogram of served scores (below;
                                                                               no _sum when scores can be negative)
    pynomaly_model_threshold{model,version}, pynomaly_model_contamination{model,version}
    pynomaly_model_cache_models, _capacity, _hits_total, _misses_total, _evictions_total
    pynomaly_training_jobs{state}                                              job records by state
    pynomaly_training_stage_seconds{algorithm,stage}                           fit / export / verify / register

The gRPC series follow go-grpc-prometheus, so its dashboards and alerts apply unchanged.

Drift: `pynomaly_detect_score`'s bucket bounds are the model's own training-score quantiles (1 %, 5 %, 25 %, 50 %,
75 %, 95 %, 99 %), min, max and threshold (as float64, and rounded to float32 for the float32 scores of float32
requests, which are flagged in float32), so with no drift the share of served scores at or below the q-quantile
bound stays near q. The flagged share `rate(pynomaly_detect_rows_flagged_total[1h]) /
rate(pynomaly_detect_rows_total[1h])` should stay near `pynomaly_model_contamination` (the threshold is the
training-score quantile at 1 - contamination); it counts rows over the model's threshold even when a call
overrides the threshold, so per-call overrides do not move the signal.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

RPC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0, 30.0, 60.0)
TRAINING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
JOB_STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
# gRPC handler kinds as go-grpc-prometheus names them, by (request streaming, response streaming).
RPC_TYPES = {(False, False): "unary", (False, True): "server_stream", (True, False): "client_stream",
             (True, True): "bidi_stream"}


class NoMetrics:
    enabled = False

    def observe_scores(self, name: str, version: int, manifest: dict[str, Any], scores: np.ndarray) -> None:
        pass

    def served(self, name: str, version: int) -> dict[str, Any] | None:
        """A model version's served-score histogram: {"bounds", "counts" (the last above the last bound), "rows",
        "flagged"}; None when none is kept (no scores served yet, or metrics and the console off)."""
        return None

    def observe_training(self, algorithm: str, stages: Iterable[tuple[str, int, int]]) -> None:
        pass

    def close(self) -> None:
        pass


NO_METRICS = NoMetrics()


class _KeepsScores:
    """The served-score histograms of the model versions (the drift signal): Metrics exports them to Prometheus,
    ServedScores keeps them for the web console alone."""

    _scores: dict[tuple[str, int], _ScoreStats]
    _others: list[tuple[str, str]]  # --workers: the serving processes' (worker label, metrics socket)

    def observe_scores(self, name: str, version: int, manifest: dict[str, Any], scores: np.ndarray) -> None:
        stats = self._scores.get((name, version))
        if stats is None:
            stats = self._scores.setdefault((name, version), _ScoreStats.for_model(manifest))
        stats.observe(scores)

    def served(self, name: str, version: int) -> dict[str, Any] | None:
        """This process's histogram, plus every serving process's under --workers (read from their sockets:
        blocking, up to gathered.SCRAPE_TIMEOUT_S; call it off the event loop)."""
        if not self._others:
            return self.own_served(name, version)
        from pynomaly.observability import gathered

        return gathered.served(self.own_served(name, version), self._others, name, version)

    def own_served(self, name: str, version: int) -> dict[str, Any] | None:
        stats = self._scores.get((name, version))
        if stats is None:
            return None
        counts, _, rows, flagged = stats.snapshot()
        return {"bounds": list(stats.bounds), "counts": counts, "rows": rows, "flagged": flagged} if rows else None


class _ScoreStats:
    """One model version's served-score histogram and flagged count; written on the event loop, read by scrapes."""

    __slots__ = ("bounds", "buckets", "sum", "count", "flagged", "threshold", "cut", "contamination", "lock")

    def __init__(self, bounds: Sequence[float], threshold: float, contamination: float):
        self.bounds = list(bounds)
        # The dataplane flags float32 scores (float32 requests) in float32: count those the same way.
        self.cut = float(np.float32(threshold))
        self.buckets = [0] * (len(self.bounds) + 1)  # buckets[i]: bounds[i-1] < score <= bounds[i]; last: +Inf
        self.sum = 0.0
        self.count = self.flagged = 0
        self.threshold = threshold
        self.contamination = contamination
        self.lock = threading.Lock()

    @classmethod
    def for_model(cls, manifest: dict[str, Any]) -> _ScoreStats:
        t = manifest.get("training_scores") or {}
        threshold = float(manifest["threshold"])
        edges = {float(q) for q in t.get("quantiles", ())} | {threshold, float(np.float32(threshold))}
        edges |= {float(t[k]) for k in ("min", "max") if k in t}
        return cls(sorted(edges), threshold, float(manifest.get("contamination", 0.0)))

    def observe(self, scores: np.ndarray) -> None:
        cut = self.cut if scores.dtype == np.float32 else self.threshold
        if len(scores) == 1:  # the 1-row hot path: no numpy calls
            s = float(scores[0])
            with self.lock:
                self.buckets[bisect_left(self.bounds, s)] += 1
                self.sum += s
                self.count += 1
                self.flagged += s > cut
            return
        counts = np.bincount(np.searchsorted(self.bounds, scores, side="left"), minlength=len(self.buckets))
        total = float(scores.sum(dtype=np.float64))
        flagged = int(np.count_nonzero(scores > cut))
        with self.lock:
            for i, c in enumerate(counts.tolist()):
                self.buckets[i] += c
            self.sum += total
            self.count += len(scores)
            self.flagged += flagged

    def snapshot(self) -> tuple[list[int], float, int, int]:
        with self.lock:
            return list(self.buckets), self.sum, self.count, self.flagged


class RpcRecorder:
    """The series of one RPC method, bound once so a call costs two increments and one observation."""

    def __init__(self, metrics: Metrics, grpc_type: str, method: str):
        service, _, name = method.lstrip("/").rpartition("/")
        self._labels = (grpc_type, service, name)
        self._handled_family = metrics.rpc_handled
        self._started = metrics.rpc_started.labels(*self._labels)
        self._seconds = metrics.rpc_seconds.labels(*self._labels)
        self._handled: dict[str, Any] = {"OK": self._handled_family.labels(*self._labels, "OK")}

    def started(self) -> None:
        self._started.inc()

    def handled(self, code: str, seconds: float) -> None:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._handled_family.labels(*self._labels, code)
        child.inc()
        self._seconds.observe(seconds)


class ServedScores(_KeepsScores, NoMetrics):
    """Metrics off, the web console on: only the served-score histograms are kept (a bisect and a lock per call)."""

    def __init__(self, others: list[tuple[str, str]] | None = None) -> None:
        self._scores = {}
        self._others = others or []


class Metrics(_KeepsScores):
    enabled = True

    def __init__(self, others: list[tuple[str, str]] | None = None) -> None:
        """`others`: under --workers, the serving processes' (worker label, metrics socket), gathered with this
        process's own by /metrics and the console (pynomaly.observability.gathered)."""
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            GCCollector,
            Histogram,
            PlatformCollector,
            ProcessCollector,
        )

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        rpc_labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.rpc_started = Counter("grpc_server_started", "RPCs started on the server.", rpc_labels, registry=r)
        self.rpc_handled = Counter("grpc_server_handled", "RPCs completed on the server, by status code.",
                                   [*rpc_labels, "grpc_code"], registry=r)
        self.rpc_seconds = Histogram("grpc_server_handling_seconds",
                                     "Time from the start of the handler to its response (seconds).", rpc_labels,
                                     buckets=RPC_BUCKETS, registry=r)
        self.training_seconds = Histogram("pynomaly_training_stage_seconds", "Duration of training job stages.",
                                          ["algorithm", "stage"], buckets=TRAINING_BUCKETS, registry=r)
        self._scores: dict[tuple[str, int], _ScoreStats] = {}
        self._others = others or []
        self._http: Any = None
        self._unix: Any = None  # a serving process's socket for the primary's /metrics (--workers)
        r.register(_ScoreCollector(self._scores))

    def bind(self, sessions: Any, jobs: Any) -> None:
        """Expose the model cache's and the job manager's own counters, read at scrape time (no hot-path cost).
        `sessions` is None where models are loaded elsewhere (the Ray engine's replicas); `jobs` None where the
        job records are another process's to count (a serving process of --workers)."""
        if sessions is not None:
            self.registry.register(_CacheCollector(sessions))
        if jobs is not None:
            self.registry.register(_JobCollector(jobs))

    def rpc(self, grpc_type: str, method: str) -> RpcRecorder:
        return RpcRecorder(self, grpc_type, method)

    def observe_training(self, algorithm: str, stages: Iterable[tuple[str, int, int]]) -> None:
        for stage, start_ns, end_ns in stages:
            self.training_seconds.labels(algorithm, stage).observe(max(end_ns - start_ns, 0) / 1e9)

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics over HTTP on host:port (0 picks a free port); return the port."""
        from prometheus_client import start_http_server

        registry: Any = self.registry
        if self._others:
            from pynomaly.observability.gathered import Gathered

            registry = Gathered(self.registry, self._others)
        self._http, _ = start_http_server(port, addr=host.strip("[]"), registry=registry)
        return int(self._http.server_port)

    async def serve_unix(self, path: str) -> None:
        """A serving process of --workers: hand this registry to the primary's /metrics on the Unix socket path."""
        from pynomaly.observability.gathered import serve_unix

        self._unix = await serve_unix(self, path)

    def close(self) -> None:
        if self._unix is not None:
            self._unix.close()
            self._unix = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


class _ScoreCollector:
    def __init__(self, scores: dict[tuple[str, int], _ScoreStats]):
        self._scores = scores

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.samples import Sample
        from prometheus_client.utils import floatToGoString

        labels = ["model", "version"]
        hist = HistogramMetricFamily("pynomaly_detect_score", "Served anomaly scores; bucket bounds are the "
                                     "model's training-score quantiles, min, max and threshold.", labels=labels)
        rows = CounterMetricFamily("pynomaly_detect_rows", "Rows scored.", labels=labels)
        flagged = CounterMetricFamily("pynomaly_detect_rows_flagged",
                                      "Rows scored above the model's own threshold.", labels=labels)
        threshold = GaugeMetricFamily("pynomaly_model_threshold", "The model's threshold.", labels=labels)
        contamination = GaugeMetricFamily("pynomaly_model_contamination", "The model's training contamination: "
                                          "the expected share of flagged rows.", labels=labels)
        for (name, version), stats in list(self._scores.items()):
            key = [name, str(version)]
            buckets, total, count, n_flagged = stats.snapshot()
            cumulative, running = [], 0
            for bound, c in zip([*stats.bounds, float("inf")], buckets, strict=True):
                running += c
                cumulative.append((floatToGoString(bound), running))
            hist.add_metric(key, cumulative, total)
            if stats.bounds[0] < 0:  # the client then leaves out _sum (OpenMetrics: it would not be monotonic)
                hist.samples.append(Sample("pynomaly_detect_score_count", dict(zip(labels, key, strict=True)), count))
            rows.add_metric(key, count)
            flagged.add_metric(key, n_flagged)
            threshold.add_metric(key, stats.threshold)
            contamination.add_metric(key, stats.contamination)
        return [hist, rows, flagged, threshold, contamination]


class _CacheCollector:
    def __init__(self, sessions: Any):
        self._sessions = sessions

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self._sessions
        return [
            GaugeMetricFamily("pynomaly_model_cache_models", "Model versions loaded in onnxruntime.", value=len(s)),
            GaugeMetricFamily("pynomaly_model_cache_capacity", "Most model versions kept loaded.", value=s.capacity),
            CounterMetricFamily("pynomaly_model_cache_hits", "Lookups served from the cache.", value=s.hits),
            CounterMetricFamily("pynomaly_model_cache_misses", "Lookups that loaded a model.", value=s.misses),
            CounterMetricFamily("pynomaly_model_cache_evictions", "Models dropped by the LRU.", value=s.evictions),
        ]


class _JobCollector:
    def __init__(self, jobs: Any):
        self._jobs = jobs

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        counts = self._jobs.count_by_state()
        family = GaugeMetricFamily("pynomaly_training_jobs", "Training job records by state.", labels=["state"])
        for state in JOB_STATES:
            family.add_metric([state], counts.get(state, 0))
        return [family]
