"""LMDD kept with its training rows, scored as PyOD scores a row within the training batch (see
pynomaly.algorithms.in_batch, which this extends): PyOD's own pass over the training rows plus the row, its
seeded orders fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pynomaly.algorithms.in_batch import FrozenDetector


def lmdd_permutations(det: Any, size: int) -> np.ndarray:
    """[n_iter, size]: the orders in which LMDD.decision_function visits a batch of `size` rows, iteration by
    iteration (pyod.models.lmdd.LMDD.__sf: a RandomState seeded from random_state_, one in-place shuffle of the
    same index array per iteration, reseeded after each). They depend on the seed and the batch size alone."""
    def key(state: Any) -> int:  # get_state()[1][0]: the Mersenne Twister's first key word
        return int(state.get_state()[1][0])

    random_state = np.random.RandomState(seed=key(det.random_state_))
    indices = np.arange(size)
    orders = np.empty((det.n_iter_, size), np.int64)
    for t in range(det.n_iter_):
        random_state.shuffle(indices)
        orders[t] = indices
        random_state.seed(key(random_state) + 1)
    return orders


def _aad_after(head: np.ndarray, head_sum: float, rows: np.ndarray) -> np.ndarray:
    """[K]: numba's _aad (sequential sums) of the values `head` followed by each of `rows` [K, F]."""
    count = len(head) + rows.shape[1]
    mean = np.cumsum(np.hstack([np.full((len(rows), 1), head_sum), rows]), axis=1)[:, -1] / count
    values = np.hstack([np.broadcast_to(head, (len(rows), len(head))), rows])
    return np.cumsum(np.abs(values - mean[:, None]), axis=1)[:, -1] / count


def _prefix_deviations(flat: np.ndarray, prefix: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """numba's _aad of the first counts[i] values of `flat`, for each i (prefix = np.cumsum(flat))."""
    mean = prefix[counts - 1] / counts
    return np.cumsum(np.abs(flat[None, :] - mean[:, None]), axis=1)[np.arange(len(counts)), counts - 1] / counts


def lmdd_training_prefixes(train: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """[n_iter, n + 1]: per order of the training batch plus a row, the D of its prefixes before the row (NaN from
    the row's place on): training rows only, the same for every row scored."""
    size, width = len(train) + 1, train.shape[1]
    out = np.full(orders.shape, np.nan)
    batch = np.vstack([train, np.zeros((1, width))])
    for t, order in enumerate(orders):
        place = int(np.argmax(order == size - 1))
        flat = batch[order[:place]].ravel()
        out[t, :place] = _prefix_deviations(flat, np.cumsum(flat), np.arange(1, place + 1) * width)
    return out


def lmdd_last(batch: np.ndarray, orders: np.ndarray, before: np.ndarray) -> float:
    """LMDD.__sf's score of the last row of `batch` ([n + 1, F]) over the given orders, as PyOD computes it: per
    order, every prefix's mean absolute deviation D (sequential sums, numba's; those before the row from
    `before`, lmdd_training_prefixes), j = the first prefix whose row raised it most (var_max), the later rows'
    differences D(first j + row) - D(first j + 1 + row), the last row's result and the cardinality; the largest
    result (first reached) times its cardinality."""
    size, width = batch.shape
    counts = np.arange(1, size + 1) * width
    dis = card = 0.0
    for order, d_before in zip(orders, before, strict=True):
        seq = batch[order]
        flat = seq.ravel()
        prefix = np.cumsum(flat)
        place = int(np.argmax(order == size - 1))
        d = np.concatenate([d_before[:place], _prefix_deviations(flat, prefix, counts[place:])])
        rise = d[1:] - d[:-1]
        j = int(np.argmax(rise)) + 1
        var_max = rise[j - 1]
        if not var_max > 0:
            continue  # no positive result: the row's is 0, and 0 > dis never holds
        later = seq[j + 1 :]
        diffs = (_aad_after(flat[: j * width], prefix[j * width - 1], later)
                 - _aad_after(flat[: (j + 1) * width], prefix[(j + 1) * width - 1], later))
        result = var_max if place == j else (diffs[place - j - 1] + var_max
                                            if place > j and diffs[place - j - 1] >= 0 else 0.0)
        if result > dis:
            dis, card = result, size - (1 + np.sum(diffs >= 0))
    return float(dis * card)


class FrozenLMDD(FrozenDetector):
    """pyod.models.lmdd.LMDD: its decision_function ignores the fitted model: it computes smoothing factors of the
    batch alone, over n_iter seeded permutations of it. A row's score here is its smoothing factor times
    cardinality in the training batch plus itself (lmdd_last: PyOD's computation for that row, vectorised; each
    costs what PyOD's scoring of the whole training batch costs)."""

    def _in_batch(self, X: np.ndarray) -> np.ndarray:
        orders = lmdd_permutations(self.detector_, len(self.X_train_) + 1)
        before = lmdd_training_prefixes(self.X_train_, orders)
        return np.array([lmdd_last(np.vstack([self.X_train_, row]), orders, before) for row in X])
