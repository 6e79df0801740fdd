"""Algorithm "auto" with labels: a hyperparameter search over the candidates, scored on a held-out split.

The labelled rows are split once, stratified (HELD_OUT of them held out, the seed in the model card). Each trial
(Optuna's TPE sampler, seeded) picks a candidate and its hyperparameters from SPACES, fits it on the training split
without the labels, as every detector here is unsupervised, and scores the held-out rows through its exported ONNX
graph: what would be served is what is ranked, by ROC-AUC (average precision recorded too). The search ends after
`trials` trials or `time_budget_s` seconds, whichever comes first; the best trial's candidate and parameters are
then refitted on every row, exported and verified as any model. Hyperparameters a candidate was given are fixed;
the others are searched where SPACES has a range, and left at their defaults otherwise.
"""

from __future__ import annotations

import json
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


def search(candidates: list[dict[str, Any]], X: np.ndarray, y: np.ndarray, *, trials: int, time_budget_s: float,
           seed: int, contamination: float, progress: Callable[[dict[str, Any]], None],
           ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """(a record per trial, the best one or None, the tuning summary for the model card)."""
    import optuna
    from sklearn.metrics import average_precision_score, roc_auc_score

    from pynomaly import export, verification

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, held = split(y, seed)
    names = [c["algorithm"] for c in candidates]
    fixed = {c["algorithm"]: c["params"] for c in candidates}
    records: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}  # parameters already scored (TPE repeats a candidate with nothing to search)

    def objective(trial: Any) -> float:
        name = trial.suggest_categorical("algorithm", names)
        algo = _registry.ALGORITHMS[name]
        space = SPACES.get(name)
        searched = space(trial, name) if space else {}
        params = algo.resolve_params({**searched, **fixed[name]})
        if "random_state" in params and params["random_state"] is None:
            params["random_state"] = seed
        record: dict[str, Any] = {"algorithm": name, "params": params, "outcome": EVALUATED, "message": "",
                                  "fit_seconds": 0.0, "weight": 0.0, "trial": trial.number + 1}
        key = json.dumps([name, params], sort_keys=True, default=str)
        if key in seen:
            first = seen[key]
            record.update({k: first[k] for k in ("outcome", "roc_auc", "average_precision") if k in first},
                          message=f"the parameters of trial {first['trial']}: {first['message']}")
            records.append(record)
            progress(record)
            if first["outcome"] != EVALUATED:
                raise optuna.TrialPruned()
            return float(first["roc_auc"])
        seen[key] = record
        t = time.monotonic()
        try:
            detector = algo.build(params, contamination)
            detector.fit(X[train])
            session = verification.session(export.to_onnx(detector, X.shape[1]).SerializeToString())
            scores = verification.scores(session, X[held])
            if not np.all(np.isfinite(scores)):
                raise ValueError("non-finite held-out scores (NaN or inf)")
            auc = float(roc_auc_score(y[held], scores))
            ap = float(average_precision_score(y[held], scores))
        except Exception as e:  # a fit or an export that fails is a failed trial; the search goes on
            record.update(outcome=FAILED, message=f"{type(e).__name__}: {e}", fit_seconds=time.monotonic() - t)
            records.append(record)
            progress(record)
            raise optuna.TrialPruned() from None
        record.update(fit_seconds=time.monotonic() - t, roc_auc=auc, average_precision=ap,
                      message=f"held-out ROC-AUC {auc:.4f}, average precision {ap:.4f}")
        records.append(record)
        progress(record)
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=time_budget_s)
    scored = [r for r in records if r["outcome"] == EVALUATED and not r["message"].startswith("the parameters of")]
    best = max(scored, key=lambda r: (r["roc_auc"], r["average_precision"], -r["trial"])) if scored else None
    summary = {"metric": "roc_auc", "held_out_rows": len(held), "held_out_anomalies": int(y[held].sum()),
               "held_out_share": HELD_OUT, "seed": seed, "trials": len(records),
               "best_roc_auc": best["roc_auc"] if best else 0.0,
               "best_average_precision": best["average_precision"] if best else 0.0}
    return records, best, summary
