"""Kernel SHAP with the served graph as the black box (Lundberg & Lee 2017), interventional on a background sample.

Up to `EXACT_MAX_FEATURES` features every coalition is evaluated, so the values are the exact Shapley values of
v(S) = mean over background rows b of f(x_S, b_rest). Above that, coalitions are sampled by the Shapley kernel in
complementary pairs (seeded: the same row always gets the same attributions) and the efficiency constraint
Σφ = f(x) − E_b f(b) is imposed exactly in the least-squares solve.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from math import comb

import numpy as np

EXACT_MAX_FEATURES = 11
DEFAULT_COALITIONS = 512  # sampled coalitions when F > EXACT_MAX_FEATURES (in complementary pairs)

Score = Callable[[np.ndarray], np.ndarray]


def _shapley_kernel(F: int, sizes: np.ndarray) -> np.ndarray:
    return (F - 1) / (np.array([comb(F, int(s)) for s in sizes], dtype=np.float64) * sizes * (F - sizes))


def coalitions(F: int, n_samples: int = DEFAULT_COALITIONS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(masks [K, F] bool, kernel weights [K]) excluding the empty and full coalitions."""
    if F <= EXACT_MAX_FEATURES:
        masks = np.array([[i in c for i in range(F)] for s in range(1, F) for c in combinations(range(F), s)],
                         dtype=bool).reshape(-1, F)
        return masks, _shapley_kernel(F, masks.sum(axis=1))
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, F)
    size_p = _shapley_kernel(F, sizes) * np.array([comb(F, int(s)) for s in sizes])
    size_p /= size_p.sum()
    half = n_samples // 2
    drawn = rng.choice(sizes, size=half, p=size_p)
    masks = np.zeros((half, F), dtype=bool)
    for i, s in enumerate(drawn):
        masks[i, rng.choice(F, size=s, replace=False)] = True
    masks = np.vstack([masks, ~masks])  # complementary pairs halve the variance
    # Sampled by the kernel already: equal weights in the regression.
    return masks, np.ones(len(masks))


def evaluations(F: int, background_rows: int, n_samples: int = DEFAULT_COALITIONS) -> int:
    """Rows scored per explained row."""
    k = (2**F - 2) if F <= EXACT_MAX_FEATURES else 2 * (n_samples // 2)
    return k * background_rows + 1


def explain_row(score: Score, x: np.ndarray, background: np.ndarray, masks: np.ndarray,
                weights: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(score of x, base value E_b f(b), contributions [F]) for one row x [F]."""
    F, M = x.shape[0], background.shape[0]
    # One batch: every coalition against every background row, plus x itself and the background alone.
    batch = np.where(masks[:, None, :], x[None, None, :], background[None, :, :]).reshape(-1, F)
    out = score(np.vstack([batch, x[None, :], background])).astype(np.float64)
    v = out[: len(batch)].reshape(len(masks), M).mean(axis=1)
    fx, base = out[len(batch)], out[len(batch) + 1 :].mean()
    # Weighted least squares with Σφ = fx − base: substitute φ_F = (fx − base) − Σ_{j<F} φ_j.
    z = masks.astype(np.float64)
    total = fx - base
    A = z[:, :-1] - z[:, -1:]
    b = v - base - z[:, -1] * total
    w = weights[:, None]
    phi_head = np.linalg.lstsq(A * np.sqrt(w), b * np.sqrt(weights), rcond=None)[0]
    phi = np.append(phi_head, total - phi_head.sum())
    return float(fx), float(base), phi
