"""Explanation algorithms against brute force and against shap's own IsolationForest support."""

from itertools import permutations
from math import factorial

import numpy as np
import onnxruntime as ort
import pytest
from pyod.models.iforest import IForest
from sklearn.ensemble import IsolationForest

from pynomaly import export
from pynomaly.explain import kernel_shap
from pynomaly.explain.tree_shap import TreeExplainer, tree_arrays

RNG = np.random.default_rng(0)


def brute_force_shapley(f, x, background):
    """Interventional Shapley values by averaging marginal contributions over all feature orders."""
    F = len(x)

    def v(subset):
        rows = background.copy()
        rows[:, list(subset)] = x[list(subset)]
        return f(rows).mean()

    phi = np.zeros(F)
    for order in permutations(range(F)):
        chosen = []
        for j in order:
            before = v(chosen)
            chosen.append(j)
            phi[j] += v(chosen) - before
    return phi / factorial(F)


def nonadditive(X):
    X = np.asarray(X, dtype=np.float64)
    return X @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 2 * X[:, 0] * X[:, 1] + np.abs(X[:, 2] - X[:, 4])


def test_kernel_shap_is_exact_for_few_features():
    background = RNG.normal(size=(8, 5))
    x = np.array([1.5, -0.5, 2.0, 0.3, -1.0])
    masks, weights = kernel_shap.coalitions(5)
    assert len(masks) == 2**5 - 2
    fx, base, phi = kernel_shap.explain_row(nonadditive, x, background, masks, weights)
    np.testing.assert_allclose(phi, brute_force_shapley(nonadditive, x, background), rtol=1e-4, atol=1e-4)
    assert fx == pytest.approx(nonadditive(x[None])[0], rel=1e-6)
    assert phi.sum() == pytest.approx(fx - base, rel=1e-9)


def test_kernel_shap_sampled_keeps_efficiency_and_finds_the_driver():
    F = 16
    w = np.zeros(F)
    w[7] = 5.0
    w[2] = -1.0

    def f(X):
        X = np.asarray(X, dtype=np.float64)
        return X @ w + 0.1 * np.sin(X).sum(axis=1)

    background = RNG.normal(size=(16, F))
    x = RNG.normal(size=F)
    x[7] = 4.0
    masks, weights = kernel_shap.coalitions(F, 512)
    assert len(masks) == 512
    fx, base, phi = kernel_shap.explain_row(f, x, background, masks, weights)
    assert phi.sum() == pytest.approx(fx - base, rel=1e-9)  # efficiency holds exactly, not just on average
    assert int(np.argmax(phi)) == 7
    # For the linear part the Shapley value is w_j (x_j - mean_b b_j): sampling error stays small.
    assert phi[7] == pytest.approx(5.0 * (4.0 - background[:, 7].mean()), rel=0.02)
    # Seeded: the same row gets the same attributions every time.
    np.testing.assert_array_equal(phi, kernel_shap.explain_row(f, x, background, *kernel_shap.coalitions(F, 512))[2])


@pytest.mark.parametrize("detector", [IForest(n_estimators=30, random_state=0, max_features=0.7),
                                      IsolationForest(n_estimators=30, random_state=0)], ids=["pyod", "sklearn"])
def test_tree_shap_sums_to_the_served_score(detector):
    X = RNG.normal(size=(300, 6))
    detector.fit(X)
    # float64 rows, and the same rounded to float32: sklearn's trees round them, TreeSHAP must too.
    rows = np.vstack([X[:20], RNG.uniform(-6, 6, size=(10, 6))])
    rows = np.vstack([rows, rows.astype(np.float32)])
    session = ort.InferenceSession(export.to_onnx(detector, 6).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    served = session.run(None, {"X": rows})[0]
    scores, base, contributions = TreeExplainer(tree_arrays(detector)).explain(rows)
    np.testing.assert_allclose(scores, served, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(base + contributions.sum(axis=1), scores, rtol=1e-9, atol=1e-12)


def test_tree_shap_agrees_with_shaps_isolation_forest_support():
    import shap

    X = RNG.normal(size=(300, 5))
    est = IsolationForest(n_estimators=25, random_state=1).fit(X)
    rows = X[:15].astype(np.float32)
    ours = TreeExplainer(tree_arrays(est))
    reference = shap.TreeExplainer(est).shap_values(rows.astype(np.float64))  # explains the mean path length
    phi = np.asarray(ours._explainer.shap_values(rows.astype(np.float64)))  # our trees explain the summed length
    np.testing.assert_allclose(phi / len(est.estimators_), reference, rtol=1e-6, atol=1e-9)
