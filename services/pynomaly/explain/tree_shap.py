"""TreeSHAP for isolation forests, from arrays stored with the model version (no pickle).

The trees' summed path length E(x) = Σ_t h_t(x) is an additive tree model, so path-dependent TreeSHAP (shap's C
implementation, fed a plain dict of arrays) gives its exact Shapley values φ with E(x) = φ₀ + Σφ. The served score
is s = 2^(−E/(T·c(ψ))) + offset, monotone in E; the attributions are rescaled onto it:
contribution_j = φ_j · (s(x) − s(φ₀)) / (E(x) − φ₀), base value s(φ₀), so they sum to the served score exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pynomaly.export.iforest import average_path_length


def _forest(estimator: Any) -> Any:
    """The sklearn IsolationForest inside a PyOD IForest, or the estimator itself."""
    return getattr(estimator, "detector_", estimator)


def tree_arrays(estimator: Any) -> dict[str, np.ndarray]:
    """Flatten the forest into arrays: per node left/right child (tree-local ids), feature, threshold, leaf value
    (depth + c(n_samples)), cover; `tree_sizes` splits them; `transform` = (T·c(ψ), offset, sign)."""
    forest = _forest(estimator)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "value", "cover")}
    sizes = []
    for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = tree.tree_
        depth = np.zeros(t.node_count)
        for i in range(t.node_count):  # parents precede children in sklearn's node order
            for child in (t.children_left[i], t.children_right[i]):
                if child != -1:
                    depth[child] = depth[i] + 1
        leaf = t.children_left == -1
        parts["left"].append(t.children_left.astype(np.int64))
        parts["right"].append(t.children_right.astype(np.int64))
        parts["feature"].append(np.where(leaf, -2, np.asarray(features)[np.maximum(t.feature, 0)]).astype(np.int64))
        parts["threshold"].append(t.threshold.astype(np.float64))
        parts["value"].append(np.where(leaf, depth + average_path_length(t.n_node_samples), 0.0))
        parts["cover"].append(t.weighted_n_node_samples.astype(np.float64))
        sizes.append(t.node_count)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    norm = len(forest.estimators_) * float(average_path_length(np.array([forest.max_samples_]))[0])
    # PyOD's IForest score = 2^(−E/norm) + offset_ (the sklearn estimator's); sklearn's adapter serves the same.
    arrays["tree_sizes"] = np.array(sizes, dtype=np.int64)
    arrays["transform"] = np.array([norm, float(forest.offset_)])
    return arrays


class TreeExplainer:
    def __init__(self, arrays: dict[str, np.ndarray]):
        import shap  # imported on first use: ~1 s

        trees, start = [], 0
        for size in arrays["tree_sizes"]:
            sl = slice(start, start + int(size))
            trees.append({
                "children_left": arrays["left"][sl], "children_right": arrays["right"][sl],
                "children_default": arrays["left"][sl], "features": arrays["feature"][sl],
                "thresholds": arrays["threshold"][sl], "values": arrays["value"][sl].reshape(-1, 1),
                "node_sample_weight": arrays["cover"][sl],
            })
            start += int(size)
        self._explainer = shap.TreeExplainer({"trees": trees})
        self._norm, self._offset = (float(v) for v in arrays["transform"])

    def _score(self, E: np.ndarray) -> np.ndarray:
        return np.power(2.0, -E / self._norm) + self._offset

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores [R], base values [R], contributions [R, F]) for rows X, float32 or float64."""
        # sklearn's trees compare float32(x) <= threshold: round as they do, then compare in double as shap does.
        x = X.astype(np.float32).astype(np.float64)
        phi = np.asarray(self._explainer.shap_values(x), dtype=np.float64).reshape(X.shape)
        phi0 = float(np.ravel(self._explainer.expected_value)[0])
        E = phi0 + phi.sum(axis=1)
        scores, base = self._score(E), float(self._score(np.array([phi0]))[0])
        delta = E - phi0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(delta) > 1e-12, (scores - base) / delta, 0.0)
        return scores, np.full(len(X), base), phi * ratio[:, None]
