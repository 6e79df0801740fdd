"""PyOD detectors that score rows relative to the batch they come in, kept with their training rows: ROD, SOS,
LOCI (and LMDD, in_batch_lmdd), each scored as PyOD scores a row within the training batch.

PyOD's decision_function of these ignores the fitted model in part (ROD: the MAD of the rotation costs is taken
over the batch) or altogether (SOS, LOCI, LMDD: affinities, neighbourhood counts or prefix deviations of the batch
itself), and none keeps the training rows. A row's frozen score is the score PyOD gives it when it is scored with
the training rows: `decision_function(vstack([X_train, row]))[-1]`, one row at a time. (Scored alone, a row has no
batch to be relative to: every row gets the same score, sigmoid(0.6745) from ROD, NaN from SOS, 0 from LOCI and
LMDD.) A training row scored so is in that batch twice: its score is not its decision_scores_ from fit. Each Frozen*
class fits the PyOD detector, keeps X_train_ and computes those scores; the served graphs compute the same per row.

The references compute exactly that quantity, vectorised: PyOD's own expressions, with the batch coupling (a median,
a bisection per training row, neighbourhood counts, prefix sums) evaluated per scored row over the training rows plus
that row, and what does not depend on the row computed once. tests/unit/test_export_transductive.py holds them to
PyOD's literal vstack computation. Where PyOD sums in numba (sequentially) and the reference with numpy (pairwise),
the last bit may differ: the references equal PyOD's to ~1e-15, its discrete decisions (a bisection's stop, a
median's pick) alike except within rounding of a tie; LOCI's counts are exact, LMDD's sums PyOD's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np

MAD_FACTOR = 0.6745  # pyod.models.rod.mad
HALF_PI = np.pi / 2.0  # pyod.models.rod.scale_angles' q1


class FrozenDetector:
    """A PyOD detector fitted on X_train_, scoring rows as PyOD scores each within the training batch."""

    def __init__(self, detector: Any):
        self.detector = detector

    def fit(self, X: np.ndarray, y: Any = None) -> FrozenDetector:
        from sklearn.utils import check_array

        X = np.array(check_array(X), dtype=np.float64)
        self.detector.fit(X)
        self.detector_ = self.detector
        self.X_train_ = X
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        from sklearn.utils import check_array

        X = np.asarray(check_array(X), dtype=np.float64)
        if X.shape[1] != self.X_train_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the detector was fitted on {self.X_train_.shape[1]}")
        return self._in_batch(X)

    def _in_batch(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# --- ROD ---


class RODSubspaces:
    """A fitted ROD's 3-D subspaces and what fit froze in each: the rows' coordinates per subspace (after the data
    scaler, padded to 3 columns), geometric medians, MAD medians, and the angle scalers' scale and offset."""

    def __init__(self, det: Any, n_features: int):
        self.n_features = n_features
        self.nd = n_features > 3  # PyOD's rod_nD: RobustScaler, then sigmoid of each subspace's MAD score
        self.columns = np.array(list(combinations(range(n_features), 3)) if self.nd else [(0, 1, 2)], np.int64)
        listed = (lambda v: list(v)) if self.nd else (lambda v: [v])
        self.gm = np.array([np.asarray(g, np.float64) for g in listed(det.gm_)]).reshape(-1, 3)
        self.median = np.array(listed(det.median_), np.float64).ravel()
        s1, s2 = listed(det.angles_scaler1_), listed(det.angles_scaler2_)
        self.scale = np.array([[a.scale_[0], b.scale_[0]] for a, b in zip(s1, s2, strict=True)], np.float64)
        self.offset = np.array([[a.min_[0], b.min_[0]] for a, b in zip(s1, s2, strict=True)], np.float64)
        self.scaler = det.data_scaler_ if self.nd else None

    def coordinates(self, X: np.ndarray) -> np.ndarray:
        """Rows [m, F] -> [m, subspaces, 3], as rod_nD / ROD.decision_function prepare them."""
        X = np.asarray(X, np.float64)
        if X.shape[1] < 3:
            X = np.hstack((X, np.zeros(shape=(X.shape[0], 3 - X.shape[1]))))
        if self.scaler is not None:
            X = self.scaler.transform(X)
        return X[:, self.columns]

    def costs(self, X: np.ndarray) -> np.ndarray:
        """Rotation costs [m, subspaces] of rows, as rod_3D computes them with the fitted medians and scalers."""
        x = self.coordinates(X)
        out = np.empty(x.shape[:2])
        for s in range(len(self.columns)):
            gm = self.gm[s]
            norm_ = np.linalg.norm(gm)
            _x = x[:, s] - gm
            v_norm = np.linalg.norm(_x, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                if norm_ == 0:  # no angle defined: PyOD uses pi/2 for every row
                    gammas, valid = np.full(len(x), HALF_PI), np.ones(len(x), bool)
                else:
                    denominator = v_norm * norm_
                    valid = denominator > 0
                    gammas = np.arccos(np.clip(np.dot(_x, gm) / denominator, -1, 1))
            second = (gammas > HALF_PI).astype(np.int64)  # scale_angles: group 1 is g <= pi/2
            gammas = gammas * self.scale[s, second] + self.offset[s, second]  # MinMaxScaler.transform
            cost = np.power(v_norm, 3) * np.cos(gammas) * np.square(np.sin(gammas))
            out[:, s] = np.where(valid, cost, 0.0)
        return out

    def mad_bounds(self, train_costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per subspace, the sorted training diffs |cost - median| that the median of the n training diffs plus
        one more can take: (t[k-1], t[k], t[k+1]) of t[1..n] (t[0] = -inf, t[n+1] = inf), k = (n + 1) // 2."""
        t = np.sort(np.abs(train_costs - self.median), axis=0)
        n = len(t)
        padded = np.vstack([np.full((1, t.shape[1]), -np.inf), t, np.full((1, t.shape[1]), np.inf)])
        k = (n + 1) // 2  # the median of n + 1 values: rank k (n even) or ranks k, k + 1 (n odd), 1-based
        return padded[k - 1], padded[k], padded[k + 1]

    @staticmethod
    def merged_median(r: np.ndarray, bounds: tuple[np.ndarray, np.ndarray, np.ndarray], n: int) -> np.ndarray:
        """numba's np.median of the n training diffs plus r: the j-th smallest of them plus r is
        clip(r, t[j-1], t[j])."""
        below, mid, above = bounds
        if n % 2 == 0:  # n + 1 values: the middle one, rank n/2 + 1
            return np.minimum(np.maximum(r, mid), above)
        return (np.minimum(np.maximum(r, below), mid) + np.minimum(np.maximum(r, mid), above)) / 2


def rod_scores(sub: RODSubspaces, bounds: tuple[np.ndarray, ...], n: int, costs: np.ndarray) -> np.ndarray:
    """ROD's score of each row within the training batch, from its costs [m, subspaces]."""
    diff = np.abs(costs - sub.median)
    with np.errstate(invalid="ignore", divide="ignore"):
        mad = MAD_FACTOR * diff / RODSubspaces.merged_median(diff, bounds, n)  # type: ignore[arg-type]
    if not sub.nd:
        return mad[:, 0]
    return np.average(1 / (1 + np.exp(-np.nan_to_num(mad))), axis=1)  # process_sub's sigmoid, rod_nD's mean


class FrozenROD(FrozenDetector):
    """pyod.models.rod.ROD: its decision_function keeps the fitted geometric medians, cost medians and scalers, but
    divides by the median absolute deviation of the batch's costs: here the training rows' plus the row's."""

    def _in_batch(self, X: np.ndarray) -> np.ndarray:
        sub = RODSubspaces(self.detector_, self.X_train_.shape[1])
        bounds = sub.mad_bounds(sub.costs(self.X_train_))
        return rod_scores(sub, bounds, len(self.X_train_), sub.costs(X))


# --- SOS ---

SOS_MAX_TRIES = 5000  # pyod.models.sos.SOS._d2a
SOS_PATH_STEPS = 96  # steps of each training row's own search kept (sos_paths); typical searches take 20-50


def sos_distances(train: np.ndarray, X: np.ndarray) -> np.ndarray:
    """[m, n]: D[i, x] of SOS._x2d over vstack([train, x]) for each row x: sqrt(|(-2 x.t_i + |t_i|^2) + |x|^2|)
    (the GEMM expansion, in PyOD's order of additions)."""
    dots = X @ train.T
    return np.sqrt(np.abs(np.add(-2 * dots + np.sum(np.square(train), 1), np.sum(np.square(X), 1)[:, None])))


def _search(size: int, h_diff: Callable[[np.ndarray, np.ndarray, int], np.ndarray], eps: float,
            steps: int = SOS_MAX_TRIES) -> np.ndarray:
    """SOS._d2a's bisection for `size` precisions at once: PyOD's steps from beta = 1 (beta / 10 on NaN; doubling
    or halving until bounded, then halving the interval), each stopping where PyOD's loop would.
    h_diff(which, their betas, steps taken) is H - log(perplexity); only those still searching are computed."""
    beta = np.ones(size)
    lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
    everyone = np.arange(size)
    diff = h_diff(everyone, beta, 0)
    for step in range(1, steps + 1):
        at = everyone[np.isnan(diff) | (np.abs(diff) > eps)]
        if not at.size:
            break
        b, d = beta[at], diff[at]
        nan, up = np.isnan(d), d > 0
        lo[at] = np.where(~nan & up, b, lo[at])
        hi[at] = np.where(~nan & ~up, b, hi[at])
        stepped = np.where(up, np.where(np.isinf(hi[at]), b * 2.0, (b + hi[at]) / 2.0),
                           np.where(np.isinf(lo[at]), b / 2.0, (b + lo[at]) / 2.0))
        beta[at] = np.where(nan, b / 10.0, stepped)
        diff[at] = h_diff(at, beta[at], step)
    return beta


def _entropy(sum_a: np.ndarray, beta: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):  # log(0), 0 / 0: PyOD's NaN, stepped on as PyOD does
        return np.log(sum_a) + beta * weighted / sum_a  # pyod.models.sos._get_perplexity


def sos_paths(off: np.ndarray, perplexity: float, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each training row's search among the training rows alone, its first SOS_PATH_STEPS steps: (beta, sum of
    affinities, sum of distance x affinity) per step, [n, SOS_PATH_STEPS] each (NaN once stopped).

    A scored row x adds one term to each training row's sums: while the search with x takes the same steps
    (the same beta at the same step: all but the few training rows near x), its sums are these plus x's term,
    O(1) instead of O(n)."""
    n = off.shape[0]
    betas, sums, weighted = (np.full((n, SOS_PATH_STEPS), np.nan) for _ in range(3))
    log_u = np.log(perplexity)

    def h_diff(at: np.ndarray, b: np.ndarray, step: int) -> np.ndarray:
        a = np.exp(-off[at] * b[:, None])
        betas[at, step], sums[at, step], weighted[at, step] = b, a.sum(axis=1), (off[at] * a).sum(axis=1)
        return _entropy(sums[at, step], b, weighted[at, step]) - log_u

    _search(n, h_diff, eps, SOS_PATH_STEPS - 1)
    return betas, sums, weighted


def sos_bisection(off: np.ndarray, to_row: np.ndarray, perplexity: float, eps: float,
                  paths: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """SOS._d2a's beta per training row i, searched with the scored row among its neighbours: its distances to
    the other training rows off[i] ([n, n - 1]) and to the scored row to_row[..., i] ([m, n]); [m, n]. Sums
    from the training rows' own `paths` (sos_paths) while the search is on them. (beta, the sum of affinities to
    the other training rows at beta), [m, n] each."""
    n = off.shape[0]
    betas, sums, weighted = paths
    to_x = to_row.ravel()
    log_u = np.log(perplexity)
    last_sum = np.empty(to_row.size)

    def h_diff(at: np.ndarray, b: np.ndarray, step: int) -> np.ndarray:
        i, d_x = at % n, to_x[at]
        on = b == betas[i, step] if step < SOS_PATH_STEPS else np.zeros(len(at), bool)
        s, w = np.empty(len(at)), np.empty(len(at))
        if on.any():  # past SOS_PATH_STEPS no path is kept (and step would index past the paths' columns)
            s[on], w[on] = sums[i[on], step], weighted[i[on], step]
        d_off = off[i[~on]]
        a = np.exp(-d_off * b[~on, None])
        s[~on], w[~on] = a.sum(axis=1), (d_off * a).sum(axis=1)
        a_x = np.exp(-d_x * b)
        last_sum[at] = s
        return _entropy(s + a_x, b, w + d_x * a_x) - log_u

    return _search(to_row.size, h_diff, eps).reshape(to_row.shape), last_sum.reshape(to_row.shape)


def sos_outlier_probability(to_row: np.ndarray, beta: np.ndarray, sum_off: np.ndarray) -> np.ndarray:
    """[m]: SOS._b2o's column of the scored row: the product over training rows of 1 - the probability that the
    training row binds to it, exp(-d beta) / (sum_off + exp(-d beta)). (The row's own factor, 1 - 0, is left out:
    PyOD computes it as 0 / 0 = NaN where the row's own affinities all underflow, a row ~700 / beta from every
    training row.)"""
    a_row = np.exp(-to_row * beta)
    return np.prod(1 - a_row / (sum_off + a_row), axis=-1)


class FrozenSOS(FrozenDetector):
    """pyod.models.sos.SOS: its decision_function computes affinities among the batch's rows alone (a bisection
    for each row's Gaussian precision to the target perplexity). A row's score here is its outlier probability in
    the training batch plus itself: every training row's precision is searched again with the row among its
    neighbours, and the row is selected unless some training row binds to it. Where PyOD's own search for the row
    itself leaves its affinities all 0 (exp underflows: a row far from every training row), PyOD scores it NaN
    (0 / 0 for the row binding to itself, which SOS defines as 0): here it scores by the training rows alone."""

    def off_diagonal(self) -> np.ndarray:
        """[n, n - 1]: PyOD's distances between training rows, each row without itself (row i of _d2a's Di)."""
        D = self.detector_._x2d(self.X_train_)
        n = len(D)
        return D[~np.eye(n, dtype=bool)].reshape(n, n - 1)

    def paths(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """sos_paths of the training rows (computed once)."""
        if getattr(self, "paths_", None) is None:
            self.paths_ = sos_paths(self.off_diagonal(), self.detector_.perplexity, self.detector_.eps)
        return self.paths_

    def _in_batch(self, X: np.ndarray, block: int = 16) -> np.ndarray:
        det, off, paths = self.detector_, self.off_diagonal(), self.paths()
        out = np.empty(len(X))
        for start in range(0, len(X), block):
            to_row = sos_distances(self.X_train_, X[start : start + block])
            beta, sum_off = sos_bisection(off, to_row, det.perplexity, det.eps, paths)
            out[start : start + block] = sos_outlier_probability(to_row, beta, sum_off)
        return out


# --- LOCI ---


def loci_score(d: np.ndarray, sorted_train: np.ndarray, train_max: float, alpha: float, k: float) -> float:
    """LOCI._calculate_decision_score's score of the last row of vstack([train, x]), from x's distances d to the
    training rows ([n]) and each training row's sorted distances to the training rows ([n, n], itself included).

    PyOD's loop, over x's critical radii r in increasing order, evaluated for every r at once: the sampling
    neighbourhood (rows within r of x, x included), each one's count of rows closer than alpha r, their mean
    n_hat and standard deviation, MDEF = 1 - count(x) / n_hat; the score is MDEF / sigma_MDEF at the first r where
    n_hat >= 20 and MDEF > k sigma_MDEF (PyOD breaks there), else at the last r with n_hat >= 20, else 0.
    """
    r_max = max(train_max, float(d.max())) / alpha
    near = d[(0 < d) & (d <= r_max)]
    radii = np.sort(np.concatenate((near, near / alpha)))
    if not len(radii):
        return 0.0
    t = radii * alpha
    closer = d[None, :] < t[:, None]  # [radii, n]: training row j closer to x than alpha r
    counts = np.stack([np.searchsorted(row, t, side="left") for row in sorted_train], axis=1) + closer
    own = closer.sum(axis=1) + 1  # x's count: itself (distance 0) and the training rows closer than alpha r
    sampled = d[None, :] <= radii[:, None]
    size = sampled.sum(axis=1) + 1
    n_hat = (np.where(sampled, counts, 0).sum(axis=1) + own) / size
    squares = np.where(sampled, np.square(counts - n_hat[:, None]), 0.0).sum(axis=1) + np.square(own - n_hat)
    with np.errstate(invalid="ignore", divide="ignore"):
        mdef = 1 - own / n_hat
        sigma = np.sqrt(squares / size) / n_hat
        value = mdef / sigma
    counted = n_hat >= 20
    stop = counted & (mdef > k * sigma)
    if stop.any():
        return float(value[np.argmax(stop)])
    return float(value[len(counted) - 1 - np.argmax(counted[::-1])]) if counted.any() else 0.0


class FrozenLOCI(FrozenDetector):
    """pyod.models.loci.LOCI: its decision_function computes the distance matrix of the batch alone and each row's
    multi-granularity deviation factor over its neighbourhoods in the batch. A row's score here is its MDEF
    score in the training batch plus itself (PyOD's loop for that row alone: the others' loops do not touch it)."""

    def training_distances(self) -> np.ndarray:
        from scipy.spatial.distance import pdist, squareform

        return squareform(pdist(self.X_train_, metric="euclidean"))

    def _in_batch(self, X: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        train = self.training_distances()
        sorted_train, train_max = np.sort(train, axis=1), float(train.max())
        to_rows = cdist(X, self.X_train_, metric="euclidean")  # pdist's values: a sequential sum of squares
        det = self.detector_
        return np.array([loci_score(d, sorted_train, train_max, det.alpha, det.k) for d in to_rows])

