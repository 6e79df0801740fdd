"""Algorithm "auto" with labels: a hyperparameter search over the candidates, scored on a held-out split.

The labelled rows are split once, stratified (HELD_OUT of them held out, the seed in the model card). Each trial
(Optuna's TPE sampler, seeded) picks a candidate and its hyperparameters from SPACES, fits it on the training split
without the labels, as every detector here is unsupervised, and scores the held-out rows through its exported ONNX
graph: what would be served is what is ranked, by ROC-AUC (average precision recorded too). The search ends after
`trials` trials or `time_budget_s` seconds, whichever comes first. On the Ray engine trials run as Ray tasks, as
many at once as the cluster has CPUs; in the embedded engine's worker, one after another. The best trial's candidate
and parameters are then refitted on every row, exported and verified as any model. Hyperparameters a candidate was
given are fixed; the others are searched where SPACES has a range, and left at their defaults otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pynomaly.algorithms import _registry

HELD_OUT = 0.3
EVALUATED, FAILED = "evaluated", "failed"

Space = Callable[[Any, str], dict[str, Any]]  # (optuna trial, candidate name) -> hyperparameters

SPACES: dict[str, Space] = {
    "iforest": lambda t, n: {"n_estimators": t.suggest_int(f"{n}.n_estimators", 50, 400, log=True),
                             "max_features": t.suggest_float(f"{n}.max_features", 0.5, 1.0)},
    "knn": lambda t, n: {"n_neighbors": t.suggest_int(f"{n}.n_neighbors", 2, 40, log=True),
                         "method": t.suggest_categorical(f"{n}.method", ["largest", "mean", "median"])},
    "lof": lambda t, n: {"n_neighbors": t.suggest_int(f"{n}.n_neighbors", 5, 60, log=True)},
    "cblof": lambda t, n: {"n_clusters": t.suggest_int(f"{n}.n_clusters", 4, 16),
                           "alpha": t.suggest_float(f"{n}.alpha", 0.6, 0.95)},
    "hbos": lambda t, n: {"n_bins": t.suggest_int(f"{n}.n_bins", 5, 60, log=True)},
    "loda": lambda t, n: {"n_bins": t.suggest_int(f"{n}.n_bins", 5, 60, log=True)},
    "gmm": lambda t, n: {"n_components": t.suggest_int(f"{n}.n_components", 1, 8)},
    "ocsvm": lambda t, n: {"nu": t.suggest_float(f"{n}.nu", 0.05, 0.5)},
    "kde": lambda t, n: {"bandwidth": t.suggest_float(f"{n}.bandwidth", 0.1, 10.0, log=True)},
}


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (training, held out), stratified by label."""
    from sklearn.model_selection import train_test_split

    train, held = train_test_split(np.arange(len(y)), test_size=HELD_OUT, stratify=y, random_state=seed)
    return np.sort(train), np.sort(held)


def evaluate(name: str, params: dict[str, Any], contamination: float, X_train: np.ndarray, X_held: np.ndarray,
             y_held: np.ndarray) -> dict[str, Any]:
    """One trial's work, self-contained (it runs as a Ray task on the Ray engine): fit on the training split,
    export, score the held-out rows through the graph. {"roc_auc", "average_precision", "fit_seconds"}, or
    {"error", "fit_seconds"} when the fit or the export fails."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from pynomaly import export, verification

    t = time.monotonic()
    try:
        detector = _registry.ALGORITHMS[name].build(params, contamination)
        detector.fit(X_train)
        session = verification.session(export.to_onnx(detector, X_train.shape[1]).SerializeToString())
        scores = verification.scores(session, X_held)
        if not np.all(np.isfinite(scores)):
            raise ValueError("non-finite held-out scores (NaN or inf)")
        return {"roc_auc": float(roc_auc_score(y_held, scores)),
                "average_precision": float(average_precision_score(y_held, scores)),
                "fit_seconds": time.monotonic() - t}
    except Exception as e:  # a fit or an export that fails is a failed trial; the search goes on
        return {"error": f"{type(e).__name__}: {e}", "fit_seconds": time.monotonic() - t}


class _Local:
    """Trials one at a time, in this process (the embedded engine's training worker)."""

    name, batch = "in process", 1

    def __init__(self, *data: Any):
        self._data = data

    def submit(self, name: str, params: dict[str, Any], contamination: float) -> Any:
        return evaluate(name, params, contamination, *self._data)

    def result(self, handle: Any) -> dict[str, Any]:
        return handle


class _Ray:
    """Trials as Ray tasks, as many at once as the cluster has CPUs (this task's own CPU is lent to them while it
    waits in ray.get, so a busy cluster runs them one by one rather than never)."""

    name = "ray tasks"

    def __init__(self, *data: Any):
        import ray

        self._ray = ray
        self._task = ray.remote(num_cpus=1)(evaluate)
        self._data = [ray.put(d) for d in data]
        self.batch = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def submit(self, name: str, params: dict[str, Any], contamination: float) -> Any:
        return self._task.remote(name, params, contamination, *self._data)

    def result(self, handle: Any) -> dict[str, Any]:
        return self._ray.get(handle)


def _runner(*data: Any) -> _Local | _Ray:
    ray = sys.modules.get("ray")  # inside a Ray task, Ray is imported and connected
    return _Ray(*data) if ray is not None and ray.is_initialized() else _Local(*data)


def search(candidates: list[dict[str, Any]], X: np.ndarray, y: np.ndarray, *, trials: int, time_budget_s: float,
           seed: int, contamination: float, progress: Callable[[dict[str, Any]], None],
           ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """(a record per trial, the best one or None, the tuning summary for the model card)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, held = split(y, seed)
    runner = _runner(X[train], X[held], y[held])
    fixed = {c["algorithm"]: c["params"] for c in candidates}
    names = list(fixed)
    records: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}  # parameters already scored (TPE repeats a candidate with nothing to search)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    deadline = time.monotonic() + time_budget_s

    def suggest(trial: Any) -> tuple[str, dict[str, Any]]:
        name = trial.suggest_categorical("algorithm", names)
        space = SPACES.get(name)
        params = _registry.ALGORITHMS[name].resolve_params({**(space(trial, name) if space else {}), **fixed[name]})
        if "random_state" in params and params["random_state"] is None:
            params["random_state"] = seed
        return name, params

    def finish(trial: Any, record: dict[str, Any], result: dict[str, Any]) -> None:
        record["fit_seconds"] = result.get("fit_seconds", 0.0)
        if "error" in result:
            record.update(outcome=FAILED, message=result["error"])
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            record.update(roc_auc=result["roc_auc"], average_precision=result["average_precision"],
                          message=f"held-out ROC-AUC {result['roc_auc']:.4f}, average precision "
                                  f"{result['average_precision']:.4f}")
            study.tell(trial, result["roc_auc"])
        records.append(record)
        progress(record)

    while len(records) < trials and (not records or time.monotonic() < deadline):
        pending = []
        for _ in range(min(runner.batch, trials - len(records))):
            trial = study.ask()
            name, params = suggest(trial)
            record: dict[str, Any] = {"algorithm": name, "params": params, "outcome": EVALUATED, "message": "",
                                      "fit_seconds": 0.0, "weight": 0.0, "trial": trial.number + 1}
            key = json.dumps([name, params], sort_keys=True, default=str)
            if key in seen:  # no refit: the same result, said to be that trial's
                first = seen[key]
                result = ({"error": first["message"]} if first["outcome"] == FAILED else
                          {k: first[k] for k in ("roc_auc", "average_precision")})
                finish(trial, record, result)
                record["message"] = f"the parameters of trial {first['trial']}: {first['message']}"
                continue
            seen[key] = record
            pending.append((trial, record, runner.submit(name, params, contamination)))
        for trial, record, handle in pending:
            finish(trial, record, runner.result(handle))
    scored = [r for r in records if r["outcome"] == EVALUATED and not r["message"].startswith("the parameters of")]
    best = max(scored, key=lambda r: (r["roc_auc"], r["average_precision"], -r["trial"])) if scored else None
    summary = {"metric": "roc_auc", "held_out_rows": len(held), "held_out_anomalies": int(y[held].sum()),
               "held_out_share": HELD_OUT, "seed": seed, "trials": len(records), "runner": runner.name,
               "best_roc_auc": best["roc_auc"] if best else 0.0,
               "best_average_precision": best["average_precision"] if best else 0.0}
    return records, best, summary
