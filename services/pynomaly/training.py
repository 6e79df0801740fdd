"""Fit → export → verify: what a training worker does. Plain functions, run in a worker process.

The result is the ONNX graph and its manifest; the caller writes them to the registry, so a cancelled or
failed job never leaves a version behind.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as _pkg_version
from typing import Any

import numpy as np

from pynomaly import algorithms, fit_progress, verification

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

# Stages reported through `progress`, in order.
FIT, EXPORT, VERIFY = "fit", "export", "verify"
# Reported through `progress(CANDIDATE, record)` during FIT by algorithm "auto", once per candidate detector.
CANDIDATE = "candidate"
# Reported through `progress(FIT_PROGRESS, {"done": d, "total": t, "unit": "epoch"})` during FIT by detectors
# trained in epochs (Algorithm.epochs; pynomaly.fit_progress).
FIT_PROGRESS = "fit_progress"


class TrainingFailed(Exception):
    """The job cannot produce a servable model; the message says why, for the user."""


class Cancelled(BaseException):
    """Raised by a job's `progress` once a client has cancelled it: the worker stops at the next stage, "auto"
    candidate or reported epoch. A BaseException, so that no library's or candidate's `except Exception` swallows
    it."""


@dataclass
class TrainSpec:
    model_name: str
    algorithm: str
    params: dict[str, Any]
    contamination: float
    feature_names: list[str]
    description: str = ""
    job_id: str = ""
    given_params: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None  # 0/1 per row, checked (pynomaly.labels); never a feature
    threshold_method: str = "contamination"  # or a pythresh method (pynomaly.thresholds)


@dataclass
class TrainedModel:
    onnx_model: bytes
    manifest: dict[str, Any]
    # Stored beside the graph as explain.npz (plain arrays, no pickle): background sample, trees.
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def summarize(scores: np.ndarray) -> dict[str, Any]:
    return {
        "min": float(scores.min()),
        "max": float(scores.max()),
        "mean": float(scores.mean()),
        "quantile_levels": list(QUANTILE_LEVELS),
        "quantiles": [float(q) for q in np.quantile(scores, QUANTILE_LEVELS)],
    }


def label_summary(y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """How served scores rank labelled rows: ROC-AUC and average precision."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"rows": len(y), "anomalies": int(y.sum()), "roc_auc": float(roc_auc_score(y, scores)),
            "average_precision": float(average_precision_score(y, scores))}


def _libraries(implementation: str) -> str:
    top = implementation.split(".")[0]
    dist = {"sklearn": "scikit-learn"}.get(top, top)
    return f"{dist} {_pkg_version(dist)}, onnxruntime {_pkg_version('onnxruntime')}"


def train(spec: TrainSpec, X: np.ndarray, progress: Callable[..., None] = lambda stage, detail=None: None,
          ) -> TrainedModel:
    """Fit the detector on X (rows × features), export it, verify the export, and return graph + manifest.
    `progress(stage)` at each stage; `progress(CANDIDATE, record)` for each candidate of algorithm "auto";
    `progress(FIT_PROGRESS, {...})` as a fit trained in epochs moves."""
    from pynomaly import export

    algo = algorithms.get(spec.algorithm)
    X = np.ascontiguousarray(X, dtype=np.float64)

    progress(FIT)
    detector = algo.build(spec.params, spec.contamination)
    if spec.algorithm == "auto":
        detector.progress = lambda record: progress(CANDIDATE, record)
    if "torch" in sys.modules:  # a deep detector: one thread (its default fights the server on a shared machine:
        # 12 s vs 0.5 s to score 10k rows with an AutoEncoder, measured). `import` rather than sys.modules: the
        # worker's warm-up may still be importing torch on another thread, and import waits for it to finish.
        import torch

        torch.set_num_threads(1)
    plan = algo.epochs(spec.params, len(X)) if algo.epochs else None
    try:
        with fit_progress.epochs(plan, lambda done, total: progress(
                FIT_PROGRESS, {"done": done, "total": total, "unit": "epoch"})):
            if spec.labels is not None and (spec.algorithm == "auto" or algo.needs_labels):
                # "auto": labels choose among candidates (no detector trains on them); XGBOD, DevNet learn from them
                detector.fit(X, spec.labels)
            else:
                detector.fit(X)
    except Exception as e:  # libraries fail fits with ValueError, TypeError, even UnboundLocalError (pyod AE)
        raise TrainingFailed(f"{algo.implementation} could not fit the data: {type(e).__name__}: {e}") from e

    progress(EXPORT)
    try:
        graph = export.to_onnx(detector, X.shape[1]).SerializeToString()
    except export.ExportError as e:
        raise TrainingFailed(f"export to ONNX failed: {e}") from e

    progress(VERIFY)
    rows = verification.verification_rows(
        X, sample=verification.SLOW_SAMPLE_ROWS if algo.slow_reference else verification.SAMPLE_ROWS)
    session = verification.session(graph)
    rows = verification.seen(session, rows)
    try:
        native = algo.score(detector, rows)
    except Exception as e:  # the library's own scoring fails on these rows (PyOD LSCP's np.histogram, seen)
        raise TrainingFailed(f"{algo.implementation} could not score the verification rows: {type(e).__name__}: "
                             f"{e}") from e
    served = verification.scores(session, rows)
    if not np.all(np.isfinite(served)) or not np.all(np.isfinite(native)):
        raise TrainingFailed("verification rows produced non-finite scores; the model cannot be served")
    checked = verification.check(served, native)
    if not checked.passed:
        raise TrainingFailed(f"ONNX export does not match {algo.implementation}: {checked.describe()}")

    # The threshold and the score summary come from the served graph, verified above: the threshold is compared
    # with served scores, and a batch-invariant native reference can be slow (ECOD scores one row at a time).
    training_scores = verification.scores(session, X)
    if not np.all(np.isfinite(training_scores)):
        bad = int(np.sum(~np.isfinite(training_scores)))
        raise TrainingFailed(
            f"{algo.implementation} produced {bad} non-finite training scores (NaN or inf); such a model "
            "cannot be served. Check for constant or duplicated features, or choose other parameters."
        )

    from pynomaly import explain

    explain_manifest, arrays = explain.artifacts(detector, X, session)

    from pynomaly import thresholds

    try:
        threshold, flagged = thresholds.threshold(spec.threshold_method, training_scores, spec.contamination)
    except ValueError as e:
        raise TrainingFailed(str(e)) from e
    manifest = {
        "format": 1,
        "algorithm": spec.algorithm,
        "implementation": algo.implementation,
        "params": spec.params,
        "feature_names": spec.feature_names,
        "threshold": threshold,
        "threshold_method": spec.threshold_method,
        "flagged_share": flagged,
        "contamination": spec.contamination,
        "training_scores": summarize(training_scores),
        "export_check": checked.record(_libraries(algo.implementation)),
        "create_time": time.time(),
        "data_sha256": hashlib.sha256(X.tobytes()).hexdigest(),
        "training_rows": len(X),
        "job_id": spec.job_id,
        "description": spec.description,
        "onnx_size_bytes": len(graph),
        "input_name": "X",
        "output_name": "anomaly_score",
        "explain": explain_manifest,
    }
    if hasattr(detector, "card"):  # algorithm "auto": every candidate tried, and how the kept ones combine
        manifest.update(detector.card())
    if spec.labels is not None:
        manifest["labels"] = label_summary(spec.labels, training_scores)
    return TrainedModel(graph, manifest, arrays)


def warm_up() -> None:
    """What the first job of the default algorithm would pay: train a tiny IForest through every stage (imports
    of PyOD, scikit-learn, the ONNX converters and onnxruntime; the export, its check and the explain arrays)."""
    X = np.random.default_rng(0).normal(size=(64, 3))
    algo = algorithms.get("iforest")
    spec = TrainSpec("warm-up", "iforest", algo.resolve_params({"n_estimators": 2}), 0.1, ["a", "b", "c"])
    train(spec, X)
    algorithms.get("hbos")  # its module, imported here: warm_up_more compiles it on another thread


def warm_up_more() -> None:
    """The rest, slower and needed by fewer jobs: HBOS's numba kernels (seconds to compile) and torch (the deep
    detectors). Runs on a thread of its own so a job is not queued behind it: a job that needs one of them waits
    for it (numba's and the import system's locks), the others do not."""
    X = np.random.default_rng(0).normal(size=(64, 3))
    algo = algorithms.get("hbos")
    algo.build(algo.resolve_params({}), 0.1).fit(X)
    try:
        import torch  # noqa: F401
    except ImportError:  # deep detectors not installed
        pass
