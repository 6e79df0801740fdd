"""AutoML without labels: `algorithm: "auto"` fits a diverse set of detectors and serves the mean of their
standardised scores as one ONNX graph.

Why an ensemble rather than a choice: ADBench (Han et al., NeurIPS 2022) finds that no unsupervised detector wins
on most datasets, and without labels nothing tells in advance which one will. The mean of several detectors'
standardised scores is rarely the best on a dataset and rarely bad: on the 12 ADBench sets in ../shared/datasets it
is at or above the median default detector on every set (benchmarks/automl.py prints the table).

How a candidate is treated, in order (DEFAULT_CANDIDATES, or the `candidates` parameter):
- skipped when the time budget is spent (the first candidate is always tried), or when it scores each row against
  every training row (KNN, LOF, …) and the data has more than QUADRATIC_ROWS rows: its served graph would be that
  large and that slow;
- fitted, exported and verified on its own, as a single model is (a candidate whose export fails or does not match
  its library is dropped, saying why: the rest still serve);
- standardised with the mean and standard deviation of its *served* training scores, frozen into the graph as
  constants, so the combined score of a row never depends on the other rows (batch-invariant);
- pruned when the rank (Spearman) correlation of its training scores with an already kept member's is above
  `max_correlation` (0.99: near-duplicates, such as scikit-learn's IsolationForest beside PyOD's): it would add
  that member's opinion twice. Not lower by default: on easy data good detectors agree (0.96–0.97 on breastw),
  and pruning them there leaves the weaker ones (ROC-AUC 0.979 with 0.95, against the median single 0.986).

The kept members are averaged with equal weights. With labels, "auto" searches instead (algorithms.tuning) and
serves the best trial's detector, standardised the same way. Every candidate, kept or not, is recorded in the model card
(`candidates_`): fit time, export check, normalisation, correlation, outcome and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pynomaly.algorithms import _registry
from pynomaly.algorithms._spec import Algorithm, Check, Param, algorithm_spec, integer, number

# Four views of "unusual", strongest first (the first of two correlated candidates is the one kept): isolation by
# random axis-parallel splits (IForest), per-feature tail probabilities joined by a copula (COPOD), the distance to
# the nearest training rows (KNN), the distance to the nearest large cluster (CBLOF). Chosen on the 12 ADBench sets
# (benchmarks/automl.py) among the exportable detectors; each is fast to fit and to verify (ECOD, COPOD's close
# relative, is verified one row at a time and is left out for that).
DEFAULT_CANDIDATES = ("iforest", "copod", "knn", "cblof")
# Served graphs that score each row against every training row (or a kernel over them): skipped on large data.
QUADRATIC = frozenset({"knn", "lof", "cof", "sod", "kde", "ocsvm", "sklearn.local_outlier_factor",
                       "sklearn.one_class_svm", "inne", "abod", "hdbscan", "kpca", "qmcd", "cd"})
QUADRATIC_ROWS = 20_000
KEPT, PRUNED, FAILED, SKIPPED = "kept", "pruned", "failed", "skipped"
# The deep detectors train for minutes and export with their own opsets; the ensembles are ensembles already.
_NOT_CANDIDATES = frozenset({"auto", "auto_encoder", "vae", "deep_svdd", "ae1svm", "lunar", "so_gaal", "mo_gaal",
                              "alad", "anogan", "dif", "feature_bagging", "lscp", "suod"})


def _candidate_algorithm(name: str) -> Algorithm:
    allowed = sorted(n for n, a in _registry.ALGORITHMS.items()
                     # labels choose among candidates, none learns from them; a capped fit would fail big data
                     if a.exportable and not a.needs_labels and not a.max_training_rows and n not in _NOT_CANDIDATES)
    if name not in allowed:
        raise ValueError(f"{name!r} cannot be a candidate; choose among {', '.join(allowed)}")
    return _registry.ALGORITHMS[name]


def _candidate(v: Any) -> dict[str, Any]:
    """A candidate spec, normalised to {"algorithm": name, "params": {given hyperparameters, coerced}}."""
    return algorithm_spec(v, "candidate", _candidate_algorithm)


def _candidates(v: Any) -> list[dict[str, Any]]:
    if isinstance(v, str | Mapping) or not isinstance(v, list | tuple) or not v:
        raise ValueError("must be a non-empty list of algorithm names or {'algorithm', 'params'} objects")
    out = []
    for i, c in enumerate(v):
        try:
            out.append(_candidate(c))
        except ValueError as e:
            raise ValueError(f"[{i}]: {e}") from None
    names = [c["algorithm"] for c in out]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"lists {twice!r} twice")
    return out


def _candidates_check(v: Any) -> list[Any]:
    """The candidates as given, checked: a name stays a name, a spec has its parameters coerced."""
    return [c["algorithm"] if not c["params"] else c for c in _candidates(v)]


_check: Check = _candidates_check


class AutoEnsemble:
    """Fits the candidates (see the module docstring); `decision_function` is the native reference of the served
    graph: the mean over kept members of (member score - its training mean) / its training deviation."""

    def __init__(self, candidates: list[dict[str, Any]], time_budget_s: float, max_correlation: float,
                 contamination: float, random_state: int | None = None, trials: int = 30):
        self.candidates = candidates
        self.trials = trials
        self.time_budget_s = time_budget_s
        self.max_correlation = max_correlation
        self.contamination = contamination
        self.random_state = random_state
        # Told each candidate's record as it is decided (training reports it as job progress).
        self.progress: Callable[[dict[str, Any]], None] = lambda record: None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> AutoEnsemble:
        """Without labels, the ensemble; with labels (0/1 per row, checked), the search (algorithms.tuning)."""
        if y is not None:
            return self._tune(X, y)
        from scipy.stats import rankdata

        started = time.monotonic()
        self.members_: list[Any] = []
        self.member_algorithms_: list[str] = []
        self.means_: list[float] = []
        self.scales_: list[float] = []
        self.candidates_: list[dict[str, Any]] = []
        ranks: list[np.ndarray] = []
        for spec in self.candidates:
            name = spec["algorithm"]
            algo = _registry.ALGORITHMS[name]
            params = algo.resolve_params(spec["params"])
            if "random_state" in params and params["random_state"] is None:
                params["random_state"] = self.random_state
            record: dict[str, Any] = {"algorithm": name, "params": params, "outcome": SKIPPED, "message": "",
                                      "fit_seconds": 0.0, "weight": 0.0}
            spent = time.monotonic() - started
            if spent >= self.time_budget_s and self.candidates_:  # the first is always tried
                record["message"] = f"the time budget ({self.time_budget_s:g} s) was spent before it"
            elif name in QUADRATIC and len(X) > QUADRATIC_ROWS:
                record["message"] = (f"{len(X)} rows > {QUADRATIC_ROWS}: its graph would score each row against "
                                     "every training row")
            else:
                fitted = _fit_one(algo, params, self.contamination, X, record)
                if fitted is not None:
                    detector, served = fitted
                    mean, scale = float(served.mean()), float(served.std())
                    record.update(score_mean=mean, score_scale=scale)
                    rank = rankdata(served)
                    closest, corr = _closest(rank, ranks, self.member_algorithms_)
                    record["max_correlation"] = corr
                    if not scale > 0:
                        record.update(outcome=FAILED, message="its training scores are all equal: it ranks "
                                                              "nothing")
                    elif closest is not None and corr > self.max_correlation:
                        record.update(outcome=PRUNED, message=f"Spearman correlation {corr:.3f} with {closest} > "
                                                              f"max_correlation {self.max_correlation:g}")
                    else:
                        record["outcome"] = KEPT
                        self.members_.append(detector)
                        self.member_algorithms_.append(name)
                        self.means_.append(mean)
                        self.scales_.append(scale)
                        ranks.append(rank)
            self.candidates_.append(record)
            self.progress(record)
        if not self.members_:
            reasons = "; ".join(f"{r['algorithm']}: {r['message']}" for r in self.candidates_)
            raise ValueError(f"no candidate could be kept ({reasons})")
        weight = 1.0 / len(self.members_)
        for record in self.candidates_:
            if record["outcome"] == KEPT:
                record["weight"] = weight
        self.elapsed_s_ = time.monotonic() - started
        return self

    def _tune(self, X: np.ndarray, y: np.ndarray) -> AutoEnsemble:
        from pynomaly.algorithms import tuning

        started = time.monotonic()
        seed = 0 if self.random_state is None else self.random_state
        self.candidates_ = []
        searched = []
        for spec in self.candidates:
            if spec["algorithm"] in QUADRATIC and len(X) > QUADRATIC_ROWS:
                record = {"algorithm": spec["algorithm"], "params": spec["params"], "outcome": SKIPPED,
                          "fit_seconds": 0.0, "weight": 0.0, "message": f"{len(X)} rows > {QUADRATIC_ROWS}: its "
                          "graph would score each row against every training row"}
                self.candidates_.append(record)
                self.progress(record)
            else:
                searched.append(spec)
        if not searched:
            raise ValueError("no candidate can be searched: " + "; ".join(r["message"] for r in self.candidates_))
        trials, best, self.tuning_ = tuning.search(
            searched, X, y, trials=self.trials, time_budget_s=self.time_budget_s, seed=seed,
            contamination=self.contamination, progress=self.progress)
        self.candidates_ += trials
        if best is None:
            reasons = "; ".join(f"trial {r['trial']} ({r['algorithm']}): {r['message']}" for r in trials)
            raise ValueError(f"no trial of the search succeeded ({reasons})")
        algo = _registry.ALGORITHMS[best["algorithm"]]
        record = {"algorithm": best["algorithm"], "params": best["params"], "outcome": KEPT, "weight": 1.0,
                  "trial": best["trial"], "roc_auc": best["roc_auc"], "average_precision": best["average_precision"],
                  "message": f"trial {best['trial']}'s parameters (held-out ROC-AUC {best['roc_auc']:.4f}), "
                             f"refitted on all {len(X)} rows"}
        fitted = _fit_one(algo, best["params"], self.contamination, X, record)
        if fitted is None:
            raise ValueError(f"the best trial's {best['algorithm']}, refitted on every row: {record['message']}")
        detector, served = fitted
        scale = float(served.std()) or 1.0
        record.update(score_mean=float(served.mean()), score_scale=scale)
        self.members_, self.member_algorithms_ = [detector], [best["algorithm"]]
        self.means_, self.scales_ = [record["score_mean"]], [scale]
        self.candidates_.append(record)
        self.progress(record)
        self.elapsed_s_ = time.monotonic() - started
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        columns = [(_registry.ALGORITHMS[name].score(m, X) - mean) / scale for name, m, mean, scale
                   in zip(self.member_algorithms_, self.members_, self.means_, self.scales_, strict=True)]
        return np.mean(np.column_stack(columns), axis=1)

    def card(self) -> dict[str, Any]:
        """What the model card records: every candidate and how the kept ones are combined."""
        tuned = getattr(self, "tuning_", None)
        return {"candidates": self.candidates_,
                "automl": {"combination": "the best trial of a search on labels" if tuned else
                           "mean of standardised scores", "members": len(self.members_),
                           "max_correlation": self.max_correlation, "time_budget_s": self.time_budget_s,
                           "elapsed_s": self.elapsed_s_, **({"tuning": tuned} if tuned else {})}}


def _fit_one(algo: Algorithm, params: dict[str, Any], contamination: float, X: np.ndarray,
             record: dict[str, Any]) -> tuple[Any, np.ndarray] | None:
    """Fit, export and verify one candidate as training does a single model; (detector, served training scores),
    or None with the record saying why it failed."""
    from pynomaly import export, verification

    t = time.monotonic()
    try:
        detector = algo.build(params, contamination)
        detector.fit(X)
        session = verification.session(export.to_onnx(detector, X.shape[1]).SerializeToString())
        sample = verification.SLOW_SAMPLE_ROWS if algo.slow_reference else verification.SAMPLE_ROWS
        rows = verification.seen(session, verification.verification_rows(X, sample=sample))
        checked = verification.check(verification.scores(session, rows), algo.score(detector, rows))
        served = verification.scores(session, X)
    except Exception as e:  # a library's fit or a converter: the candidate fails, the job goes on
        record.update(outcome=FAILED, message=f"{type(e).__name__}: {e}", fit_seconds=time.monotonic() - t)
        return None
    record.update(fit_seconds=time.monotonic() - t, export_max_rel_error=checked.max_rel_error)
    if not checked.passed:
        record.update(outcome=FAILED, message=f"its ONNX export does not match {algo.implementation}: "
                                              f"{checked.describe()}")
        return None
    if not np.all(np.isfinite(served)):
        record.update(outcome=FAILED, message="non-finite training scores (NaN or inf)")
        return None
    return detector, served


def _closest(rank: np.ndarray, kept: list[np.ndarray], names: list[str]) -> tuple[str | None, float]:
    """The kept member whose training-score ranks correlate most with `rank` (Pearson on ranks = Spearman)."""
    best: tuple[str | None, float] = (None, 0.0)
    for other, name in zip(kept, names, strict=True):
        corr = float(np.corrcoef(rank, other)[0, 1])
        if best[0] is None or corr > best[1]:
            best = (name, corr)
    return best


def _build(p: dict[str, Any], contamination: float) -> AutoEnsemble:
    return AutoEnsemble(_candidates(p["candidates"]), p["time_budget_s"], p["max_correlation"], contamination,
                        p["random_state"], p["trials"])


ALGORITHMS = [
    Algorithm(
        name="auto",
        implementation="pynomaly.algorithms.auto.AutoEnsemble",
        description="AutoML without labels: fits diverse detectors, drops redundant ones, and serves the mean of "
                    "their standardised scores as one graph. The model card lists every candidate.",
        params=(
            Param("candidates", "list[str | object]", list(DEFAULT_CANDIDATES),
                  "Detectors to try, in order: names, or {'algorithm': name, 'params': {...}}.", _check),
            Param("time_budget_s", "float", 120.0, "No candidate but the first is started after this many "
                  "seconds, > 0.",
                  number(0.0, 86_400.0, lo_open=True)),
            Param("max_correlation", "float", 0.99, "A candidate whose training-score rank correlation with a kept "
                  "one is above this is pruned as a near-duplicate, in (0, 1].", number(0.0, 1.0, lo_open=True)),
            Param("random_state", "int | null", 0, "Seed given to every candidate that takes one (and, with "
                  "labels, to the held-out split and the search).", integer(0, 2**32 - 1, none_ok=True)),
            Param("trials", "int", 30, "With labels: trials of the hyperparameter search, ≥ 1 (it also ends after "
                  "time_budget_s).", integer(1, 10_000)),
        ),
        build=_build,
        score=lambda det, X: det.decision_function(X),
        # ECOD and COPOD score one row at a time natively: verify on fewer rows.
        slow_reference=True,
        export_note="The members' own graphs, each score standardised with constants frozen from its training "
                    "scores, averaged; each member verified alone, then the whole.",
    ),
]
