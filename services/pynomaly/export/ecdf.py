"""PyOD ECOD and COPOD with the training distribution frozen: per feature, a search tree over the float64 line.

PyOD (pyod 3.6.7 models/ecod.py, copod.py) scores a batch by computing ECDFs and skewness over
concat(X_train, batch), so a row's score depends on the rest of the batch (pyod issue 604). The graph serves
what PyOD gives a row scored alone, i.e. over the m = n + 1 values of concat(X_train, row). Per feature f,
with le / ge the counts of training values <= x / >= x:
    U_l = -log p[le],  U_r = -log p[ge],  p = linspace(1/m, 1, m)   (the row counts itself: p[k] ~ (k + 1) / m)
    s = sign(skew over the m values)   (scipy.stats.skew, NaN -> 0)
    U_skew = U_l * -sign(s - 1) + U_r * sign(s + 1)
    ECOD:  O_f = max(U_l, U_r, U_skew)          COPOD:  O_f = max(U_skew, (U_l + U_r) / 2)
and the score is the sum of O_f over features.

For a float64 x, le and ge are step functions with steps at the training values, and the sign of the third
central moment of the m values is the sign of a cubic in x, m^3 * m3 = M(x), whose coefficients come from the
exact power sums of the training column: M is evaluated in exact rational arithmetic at export time and its
sign changes are located on the float64 line. So O_f is a step function of x, known exactly at export time;
its values are computed with PyOD's own numpy expressions. Graph: per feature, a balanced search tree (one
double TreeEnsemble node: thresholds are float64 values, compared exactly with the float64 row; a float32 row is
a float64 value too) yields the cell id; one Gather maps cell ids to the float64 terms O_f (the exact
per-feature explanation, output "contributions"); ReduceSum gives the score. ~2 cells per distinct training
value: the graph grows with the training set (12.5 MB for 10k x 20 continuous rows, 65 MB for 50k x 20).

X_train is taken as fitted (float64), as the native reference takes it: float64 rows tie with the training values
they equal. (Before rows travelled as float64, the training values were rounded to float32 so that the float32
row standing for a float64 value tied with it; a float32 row now ties only with training values it equals.)

Exactness: per-feature terms are bitwise PyOD's; the sum differs only by summation order (~1e-16). The
skewness sign is the exact sign of m3, where scipy computes it in floating point: they can disagree only when
m3 is within rounding noise of 0: a row within ~1e-15 relative of a root of M, or, for a (near-)constant
training column, a row within a few ulps per training row of its value, where PyOD's sign is that of scipy's
rounding. For the latter the graph holds PyOD's own sign, evaluated at export time on every float64 within
8 ulps per training row (at most 2^15) of the column's mean (_noise_window).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import onnx
from onnx import helper
from sklearn.utils.validation import check_is_fitted

from ._graph import CONTRIBUTIONS_NAME, INPUT_NAME, ML_DOMAIN, OUTPUT_NAME, Trees, const, make_model

# Keys: float64 values in order as integers (-0.0 and +0.0 share key 0); finite float64 span these.
_KEY_MAX = 0x7FEFFFFFFFFFFFFF
_EXHAUSTIVE = 16  # key ranges this short are evaluated point by point
_MAX_CELLS = 2**24  # cells over all features: ~16 bytes of graph each, and protobufs stop at 2 GiB
_SIGN = np.uint64(1 << 63)
# (Near-)constant columns: spread at most this share of their magnitude; PyOD's skewness sign is evaluated on the
# float64 values this many ulps per training row around their mean (at most NOISE_ULPS_MAX), see _noise_window.
NEAR_CONSTANT = 2.0**-30
NOISE_ULPS_PER_ROW, NOISE_ULPS_MAX = 8, 1 << 15


# --- the float64 line as ordered integer keys ---


def _keys(x: np.ndarray) -> np.ndarray:
    bits = np.asarray(x, np.float64).view(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFFFFFFFFFF), bits)


def _values(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, np.int64)
    bits = np.where(keys < 0, np.abs(keys).astype(np.uint64) | _SIGN, keys.astype(np.uint64))
    return bits.view(np.float64)


def _exact(key: int) -> Fraction:
    return Fraction(float(_values(np.array([key]))[0]))


# --- the sign of the skewness of concat(train column, x) as a step function of float64 x ---


def _power_sums(col: np.ndarray) -> tuple[Fraction, Fraction, Fraction]:
    """Exact sums of z, z^2, z^3 over a float64 column (integers scaled by a common power of two)."""
    mant, exp = np.frexp(col)
    ints = (mant * 2.0**53).astype(np.int64)  # exact: a double's significand has 53 bits
    nonzero = ints != 0
    if not nonzero.any():
        return Fraction(0), Fraction(0), Fraction(0)
    e = exp.astype(np.int64) - 53
    base = int(e[nonzero].min())
    vals = [i << s for i, s in zip(ints[nonzero].tolist(), (e[nonzero] - base).tolist(), strict=True)]
    unit = Fraction(2) ** base
    return sum(vals) * unit, sum(v * v for v in vals) * unit**2, sum(v * v * v for v in vals) * unit**3


def _skew_cubic(col: np.ndarray) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """(a0, a1, a2, a3): m^3 times the third central moment of concat(col, x) is a0 + a1 x + a2 x^2 + a3 x^3."""
    m = len(col) + 1
    p1, p2, p3 = _power_sums(col)
    # m^3 m3 = m^2 S3 - 3 m S1 S2 + 2 S1^3 with S_k = p_k + x^k, expanded in x.
    return (
        m * m * p3 - 3 * m * p1 * p2 + 2 * p1**3,
        6 * p1 * p1 - 3 * m * p2,
        (6 - 3 * m) * p1,
        Fraction(m * m - 3 * m + 2),
    )


def _sign_runs(poly: tuple[Fraction, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(start keys, signs): sign(poly(x)) over finite float64 x, as runs starting at the given keys.

    Bernstein coefficients of the cubic over a key range bound it: all of one strict sign means no root there;
    exactly one sign variation with opposite signs at the ends means exactly one root, found by bisection on
    the keys; otherwise the range is halved. Every evaluation is exact, so the runs are exact.
    """
    a0, a1, a2, a3 = poly
    if not any(poly):
        return np.array([-_KEY_MAX]), np.array([0.0])

    def value(x: Fraction) -> Fraction:
        return ((a3 * x + a2) * x + a1) * x + a0

    def sign(key: int) -> int:
        v = value(_exact(key))
        return (v > 0) - (v < 0)

    runs: list[tuple[int, int]] = []

    def add(key: int, s: int) -> None:
        if not runs or runs[-1][1] != s:
            runs.append((key, s))

    def solve(ka: int, kb: int) -> None:  # keys ka..kb inclusive, in increasing order of calls
        if kb - ka < _EXHAUSTIVE:
            for k in range(ka, kb + 1):
                add(k, sign(k))
            return
        xa, xb = _exact(ka), _exact(kb)
        h = xb - xa
        d0 = value(xa)
        d1 = ((3 * a3 * xa + 2 * a2) * xa + a1) * h
        d2 = (3 * a3 * xa + a2) * h * h
        d3 = a3 * h * h * h
        bern = [d0, d0 + d1 / 3, d0 + 2 * d1 / 3 + d2 / 3, d0 + d1 + d2 + d3]
        if all(b > 0 for b in bern) or all(b < 0 for b in bern):
            add(ka, 1 if d0 > 0 else -1)
            return
        nonzero = [b > 0 for b in bern if b != 0]
        variations = sum(u != v for u, v in zip(nonzero, nonzero[1:], strict=False))
        sa, sb = (d0 > 0) - (d0 < 0), (bern[3] > 0) - (bern[3] < 0)
        if variations == 1 and sa * sb == -1:
            lo, hi = ka, kb  # sign(lo) == sa, sign(hi) != sa: bisect for the first key that leaves sa
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if sign(mid) == sa else (lo, mid)
            add(ka, sa)
            add(hi, sign(hi))
            add(hi + 1, sb)  # one root: after it the sign is sb up to kb
            return
        mid = (ka + kb) // 2
        solve(ka, mid)
        solve(mid + 1, kb)

    solve(-_KEY_MAX, _KEY_MAX)
    starts, signs = zip(*runs, strict=True)
    return np.array(starts, np.int64), np.array(signs, np.float64)


def _pyod_signs(X: np.ndarray, f: int, xs: np.ndarray) -> np.ndarray:
    """PyOD's own skewness sign of feature f over concat(X_train, row) for each value x of the row's feature f,
    computed as PyOD computes it: scipy over the 2-D concatenation (its layout sets numpy's order of summation:
    rows one after another for two or more features, pairwise for one), NaN (scipy's "constant") as 0."""
    from pyod.models.ecod import skew

    n, n_features = X.shape
    col = X[:, f]
    signs = np.empty(len(xs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's "precision loss" warning: that is the case looked at
        if n_features == 1:
            for i, x in enumerate(xs):
                signs[i] = np.sign(skew(np.append(col, x)[:, None], axis=0))[0]
            return signs
        step = max(2, (1 << 22) // (n + 1))  # one column per value: [n + 1, values] doubles at a time
        for start in range(0, len(xs), step):
            chunk = xs[start : start + step]
            Z = np.empty((n + 1, max(2, len(chunk))))
            Z[:n], Z[n, : len(chunk)], Z[n, len(chunk) :] = col[:, None], chunk, col[0]
            signs[start : start + len(chunk)] = np.sign(skew(Z, axis=0))[: len(chunk)]
    return signs


def _noise_window(X: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, PyOD's signs there) for a (near-)constant training column: every float64 within NOISE_ULPS
    of its mean, and its distinct values; empty otherwise.

    There PyOD's skewness is not the sign of the exact third moment: scipy's mean of n values equal to c (0.1,
    say) is off c by up to ~n/2 ulps, so for a row within a few times that of c the sign is that of the rounding
    (and scipy calls m2 <= (eps * mean)^2 constant: NaN, 0 for PyOD). Such rows (a constant feature's own value
    above all) get PyOD's sign, evaluated at export time; farther ones the exact sign, as elsewhere. Columns of
    more spread are not affected: their third moment dwarfs the rounding except at its roots.
    """
    col = X[:, f]
    scale = float(np.max(np.abs(col)))
    if float(np.max(col) - np.min(col)) > NEAR_CONSTANT * scale or scale == 0.0:
        return np.empty(0), np.empty(0)
    ulps = min(NOISE_ULPS_PER_ROW * (len(col) + 1), NOISE_ULPS_MAX)
    centre = int(_keys(np.array([np.mean(col)]))[0])
    keys = np.arange(max(-_KEY_MAX, centre - ulps), min(_KEY_MAX, centre + ulps) + 1)
    values = np.unique(np.concatenate([_values(keys), col]))
    return values, _pyod_signs(X, f, values)


# --- one search tree per feature ---


def _search_tree(feature: int, thresholds: np.ndarray, values: np.ndarray) -> Trees:
    """Balanced tree sending x to values[i] where thresholds[i-1] < x <= thresholds[i] (one more value).

    Built level by level with numpy (a feature can have ~10^5 thresholds).
    """
    t = len(thresholds)
    if t == 0:  # a single leaf still needs a node: both branches reach it
        one, zero = np.ones(1, np.int64), np.zeros(1, np.int64)
        return Trees(zero, np.full(1, feature), np.array([np.inf]), zero, one, zero, one, np.asarray(values, float))
    split = np.empty(t)
    true_id, true_leaf = np.empty(t, np.int64), np.empty(t, np.int64)
    false_id, false_leaf = np.empty(t, np.int64), np.empty(t, np.int64)
    lo, hi, ids = np.array([0]), np.array([t]), np.array([0])  # node ids[i] covers thresholds[lo[i]:hi[i]]
    next_id = 1
    while len(ids):
        mid = (lo + hi) // 2
        split[ids] = thresholds[mid]
        left_inner, right_inner = mid > lo, hi > mid + 1
        n_left, n_right = int(left_inner.sum()), int(right_inner.sum())
        left_ids = np.arange(next_id, next_id + n_left)
        right_ids = np.arange(next_id + n_left, next_id + n_left + n_right)
        next_id += n_left + n_right
        true_leaf[ids], false_leaf[ids] = ~left_inner, ~right_inner
        true_id[ids] = mid  # leaf ids where the child is a leaf, overwritten below for interior children
        false_id[ids] = mid + 1
        true_id[ids[left_inner]], false_id[ids[right_inner]] = left_ids, right_ids
        lo = np.concatenate([lo[left_inner], mid[right_inner] + 1])
        hi = np.concatenate([mid[left_inner], hi[right_inner]])
        ids = np.concatenate([left_ids, right_ids])
    return Trees(
        roots=np.zeros(1, np.int64),
        feature=np.full(t, feature),
        split=split,
        true_id=true_id,
        true_leaf=true_leaf,
        false_id=false_id,
        false_leaf=false_leaf,
        leaf_weight=np.asarray(values, np.float64),
    )


def _feature_steps(X: np.ndarray, f: int, terms: Callable[..., np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Feature f's term O_f as a step function of x: (thresholds, values), values[j] for
    thresholds[j-1] < x <= thresholds[j] (one more value than thresholds)."""
    col = X[:, f]
    v = np.sort(col)
    n = len(v)
    below = np.nextafter(v, -np.inf)  # x < v  iff  x <= below
    starts, signs = _sign_runs(_skew_cubic(col))
    sign_steps = _values(starts[1:] - 1)  # the sign changes right after these values
    noisy, noisy_signs = _noise_window(X, f)
    thresholds = np.unique(np.concatenate([v, below, sign_steps, noisy, np.nextafter(noisy, -np.inf)]))
    # Each cell (thresholds[j-1], thresholds[j]] is represented by its top; the last cell by the next float64.
    reps = np.append(thresholds, np.nextafter(thresholds[-1], np.inf))
    le = np.searchsorted(v, reps, side="right")
    ge = n - np.searchsorted(v, reps, side="left")
    rep_keys = np.where(np.isfinite(reps), _keys(reps), np.where(reps > 0, _KEY_MAX, -_KEY_MAX))
    skew_sign = signs[np.searchsorted(starts, rep_keys, side="right") - 1]
    if len(noisy):  # each noisy value is a cell of its own: (its predecessor, itself]
        at = np.searchsorted(noisy, reps)
        hit = (at < len(noisy)) & (noisy[np.minimum(at, len(noisy) - 1)] == reps)
        skew_sign = np.where(hit, noisy_signs[np.minimum(at, len(noisy) - 1)], skew_sign)
    m = n + 1
    # PyOD's probabilities, computed as it does (a 2-D linspace), indexed by count - 1 = le (the row counts).
    p = np.linspace(np.ones(1) / m, np.ones(1), m)[:, 0]
    return thresholds, terms(-1 * np.log(p[le]), -1 * np.log(p[ge]), skew_sign)


def _ecod_terms(u_l: np.ndarray, u_r: np.ndarray, skewness: np.ndarray) -> np.ndarray:
    # pyod/models/ecod.py, expression for expression.
    u_skew = u_l * -1 * np.sign(skewness - 1) + u_r * np.sign(skewness + 1)
    o = np.maximum(u_l, u_r)
    return np.maximum(u_skew, o)


def _copod_terms(u_l: np.ndarray, u_r: np.ndarray, skewness: np.ndarray) -> np.ndarray:
    # pyod/models/copod.py, expression for expression.
    u_skew = u_l * -1 * np.sign(skewness - 1) + u_r * np.sign(skewness + 1)
    return np.maximum(u_skew, np.add(u_l, u_r) / 2)


def _ints(name: str, values: np.ndarray) -> onnx.AttributeProto:
    # helper.make_attribute type-checks every element in Python: seconds for 10^6 nodes.
    attr = onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS)
    attr.ints.extend(np.asarray(values, np.int64).tolist())
    return attr


def _feature_node(trees: Trees, out: str) -> onnx.NodeProto:
    """A double TreeEnsemble over the row for one feature's tree; leaves hold cell ids.

    One node per feature: ORT then walks one tree for all rows (cache-friendly); a single ensemble with one
    target per feature walks every tree per row and ran 2-3x slower on 10k rows. (Float compares ran ~1.4x
    faster than double ones when rows were float32; float64 rows need the double thresholds.)
    """
    node = helper.make_node(
        "TreeEnsemble",
        ["x64"],
        [out],
        domain=ML_DOMAIN,
        aggregate_function=1,  # SUM, of the one tree's leaf
        post_transform=0,
        n_targets=1,
        nodes_modes=const(f"{out}_modes", np.zeros(len(trees.feature)), np.uint8),  # BRANCH_LEQ
        nodes_splits=const(f"{out}_splits", trees.split),
        leaf_weights=const(f"{out}_cells", trees.leaf_weight),
    )
    node.attribute.extend(
        [
            _ints("tree_roots", trees.roots),
            _ints("nodes_featureids", trees.feature),
            _ints("nodes_truenodeids", trees.true_id),
            _ints("nodes_trueleafs", trees.true_leaf),
            _ints("nodes_falsenodeids", trees.false_id),
            _ints("nodes_falseleafs", trees.false_leaf),
            _ints("leaf_targetids", np.zeros(len(trees.leaf_weight))),
        ]
    )
    return node


def _ecdf_to_onnx(det, n_features: int, terms: Callable[..., np.ndarray], name: str) -> onnx.ModelProto:
    check_is_fitted(det, ["X_train"])
    X = np.asarray(det.X_train, np.float64)
    if X.ndim != 2 or n_features != X.shape[1]:
        raise ValueError(f"n_features={n_features} but {name} was fitted on {X.shape[1:]} features")
    if len(X) < 2:
        raise ValueError(f"{name} needs at least 2 training rows, got {len(X)}")
    if not np.all(np.isfinite(X)):
        raise ValueError("training values must be finite")
    if getattr(det, "n_jobs", 1) != 1:
        raise ValueError(f"n_jobs={det.n_jobs}: export supports n_jobs=1 only")
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=onnx.TensorProto.DOUBLE)]
    tables: list[np.ndarray] = []
    offset = 0
    for f in range(n_features):
        thresholds, values = _feature_steps(X, f, terms)
        cells = np.arange(offset, offset + len(values), dtype=np.float64)
        nodes.append(_feature_node(_search_tree(f, thresholds, cells), f"cell{f}"))
        tables.append(values)
        offset += len(values)
    if offset > _MAX_CELLS:
        raise ValueError(f"{offset} distinct ECDF steps over all features: more than {_MAX_CELLS} cannot be exported")
    nodes += [
        helper.make_node("Concat", [f"cell{f}" for f in range(n_features)], ["cells"], axis=1),
        helper.make_node("Cast", ["cells"], ["cell_ids"], to=onnx.TensorProto.INT64),
        helper.make_node("Gather", ["terms_table", "cell_ids"], ["terms64"]),
        helper.make_node("ReduceSum", ["terms64", "sum_axes"], ["score64"], keepdims=0),
        helper.make_node("Cast", ["score64"], [OUTPUT_NAME], to=onnx.TensorProto.FLOAT),
        helper.make_node("Cast", ["terms64"], [CONTRIBUTIONS_NAME], to=onnx.TensorProto.FLOAT),
    ]
    inits = [const("terms_table", np.concatenate(tables)), const("sum_axes", [1], np.int64)]
    return make_model(nodes, inits, n_features, name, contributions=True)


def ecod_to_onnx(det, n_features: int) -> onnx.ModelProto:
    return _ecdf_to_onnx(det, n_features, _ecod_terms, "ecod")


def copod_to_onnx(det, n_features: int) -> onnx.ModelProto:
    return _ecdf_to_onnx(det, n_features, _copod_terms, "copod")


CONVERTERS = {"pyod.models.ecod.ECOD": ecod_to_onnx, "pyod.models.copod.COPOD": copod_to_onnx}
