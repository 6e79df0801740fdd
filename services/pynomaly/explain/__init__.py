"""Explain: per-feature attributions of served scores, exact where the detector allows it, SHAP otherwise.

Methods, by what the model version carries:
- "exact": the graph has a second output "contributions" [N, F] that sums to the score (additive detectors).
  Served centred on the training rows' mean term per feature, with the mean training score as base value: for
  an additive score these are its exact (interventional) Shapley values, and features whose terms are large for
  every row (a wide range, hence low densities) no longer crowd out the one that is unusual.
- "tree_shap": isolation forests; their trees are stored as arrays in explain.npz (see tree_shap.py).
- "kernel_shap": every model; the background sample in explain.npz, the served graph as the black box.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pynomaly.errors import DeadlineExceeded, FailedPrecondition
from pynomaly.explain import kernel_shap
from pynomaly.rows import input_dtype

EXACT, TREE_SHAP, KERNEL_SHAP = "exact", "tree_shap", "kernel_shap"


def wire_name(method: str) -> str:
    """A method as messages name it: the API's enum value and the short name the SDK and CLI take, e.g.
    "EXPLAIN_METHOD_TREE_SHAP (tree_shap)"."""
    return f"EXPLAIN_METHOD_{method.upper()} ({method})"

CONTRIBUTIONS_OUTPUT = "contributions"
BACKGROUND_ROWS = 64
_ISOLATION_FORESTS = {"pyod.models.iforest.IForest", "sklearn.ensemble._iforest.IsolationForest"}
# Kernel SHAP scores coalitions × background rows per explained row; the background is cut to stay under this.
KERNEL_SHAP_BUDGET = 16_384


def artifacts(detector: Any, X: np.ndarray, session: Any, seed: int = 0) -> tuple[dict[str, Any],
                                                                                  dict[str, np.ndarray]]:
    """At training: (manifest["explain"], arrays for explain.npz) — a background sample, the mean contribution per
    feature for additive graphs, the trees of forests."""
    from pynomaly.explain.tree_shap import tree_arrays

    rng = np.random.default_rng(seed)
    background = X[rng.choice(len(X), size=min(len(X), BACKGROUND_ROWS), replace=False)].astype(input_dtype(session))
    arrays: dict[str, np.ndarray] = {"background": background}
    methods = []
    if any(o.name == CONTRIBUTIONS_OUTPUT for o in session.get_outputs()):
        terms = session.run([CONTRIBUTIONS_OUTPUT], {"X": X.astype(input_dtype(session))})[0]
        arrays["contribution_means"] = terms.astype(np.float64).mean(axis=0)
        methods.append(EXACT)
    if f"{type(detector).__module__}.{type(detector).__qualname__}" in _ISOLATION_FORESTS:
        arrays.update(tree_arrays(detector))
        methods.append(TREE_SHAP)
    methods.append(KERNEL_SHAP)
    return {"methods": methods, "default": methods[0], "background_rows": len(background)}, arrays


@dataclass
class Explanation:
    scores: np.ndarray  # [R]
    base_values: np.ndarray  # [R]
    contributions: np.ndarray  # [R, F]
    method: str
    evaluations_per_row: int


class ModelExplainer:
    """Explains one loaded model version. Built once per version and cached with its session."""

    def __init__(self, model: Any, arrays: dict[str, np.ndarray],
                 score: Callable[[np.ndarray], np.ndarray] | None = None):
        """`score`: how Kernel SHAP scores its evaluation batch (default the model's own, one thread)."""
        self.model = model
        self._score = score or model.score
        self.methods: list[str] = list(model.manifest.get("explain", {}).get("methods", []))
        self.default = model.manifest.get("explain", {}).get("default", "")
        # Why there is no method, where the version says (an import without reference rows).
        self._unavailable = model.manifest.get("explain", {}).get("unavailable", "")
        self._arrays = arrays
        self._tree: Any = None

    def check_method(self, method: str | None) -> str:
        method = method or self.default
        if method not in self.methods:
            available = ", ".join(map(wire_name, self.methods)) or (
                f"none ({self._unavailable or 'the model version predates Explain; retrain it'})")
            raise FailedPrecondition(f"method: {wire_name(method) if method else 'the default'} is not available for "
                                     f"model {self.model.name}@{self.model.version} "
                                     f"({self.model.manifest['algorithm']}); "
                                     f"available: {available}", reason="METHOD_UNAVAILABLE")
        return method

    def explain(self, X: np.ndarray, method: str | None = None, deadline: float | None = None) -> Explanation:
        """`deadline` is a time.monotonic() instant; Kernel SHAP stops with DeadlineExceeded before passing it."""
        method = self.check_method(method)
        if method == EXACT:
            scores, terms = self.model.session.run(["anomaly_score", CONTRIBUTIONS_OUTPUT], {"X": self.model.rows(X)})
            means = self._arrays["contribution_means"]
            return Explanation(scores.astype(np.float64), np.full(len(X), means.sum()),
                               terms.astype(np.float64) - means, EXACT, 1)
        if method == TREE_SHAP:
            if self._tree is None:
                from pynomaly.explain.tree_shap import TreeExplainer

                self._tree = TreeExplainer(self._arrays)
            scores, base, contributions = self._tree.explain(X)
            return Explanation(scores, base, contributions, TREE_SHAP, 0)
        return self._kernel_shap(X, deadline)

    def _kernel_shap(self, X: np.ndarray, deadline: float | None) -> Explanation:
        F = X.shape[1]
        masks, weights = kernel_shap.coalitions(F)
        background = self._arrays["background"][: max(1, KERNEL_SHAP_BUDGET // len(masks))]
        scores, bases, contributions = np.empty(len(X)), np.empty(len(X)), np.empty(X.shape)
        started = time.monotonic()
        for i, x in enumerate(X):
            if deadline is not None and i:
                per_row = (time.monotonic() - started) / i
                if time.monotonic() + per_row > deadline:
                    raise DeadlineExceeded(
                        f"Kernel SHAP explained {i} of {len(X)} rows before the deadline "
                        f"({per_row * 1e3:.0f} ms a row, {len(masks) * len(background)} evaluations each); "
                        "send fewer rows per call or allow more time"
                    )
            scores[i], bases[i], contributions[i] = kernel_shap.explain_row(self._score, x, background, masks,
                                                                            weights)
        return Explanation(scores, bases, contributions, KERNEL_SHAP, (len(masks) + 1) * len(background) + 1)
