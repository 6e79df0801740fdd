"""Distance-based detectors as MatMul graphs: PyOD KNN, LOF, KDE, INNE and scikit-learn's LocalOutlierFactor.

All of them need distances from each scored row to a fixed set of points (training rows or hyperspheres'
centres), held as constants. skl2onnx's NearestNeighbors/LOF graphs compute them in a Scan over rows (10-100x
slower than sklearn), so the graphs here use ||x - mu||^2 - 2 (x - mu).(t - mu) + ||t - mu||^2 as one MatMul
(mu = the points' mean, which shrinks the cancellation), all in float64.

Rows go through a Loop over blocks of ROW_BLOCK rows: the [rows, points] matrix of one block stays in cache
(10k x 10k KNN, 2 threads: ~2x faster than one [N, points] matrix; blocks of 16-64 rows within 10 % of each
other, 128 ~30 % slower) and memory stays bounded by the block, not by the batch. Each row is computed only
from its own values, so a row's score never depends on the batch.

Nearest neighbours (KNN, LOF): the k smallest of each row are found in two steps, both exact on the MatMul
values: the minimum of each group of GROUP consecutive points, then the k best groups (each of the k nearest
points lies in one of them), then the k best among those groups' points. That replaces a TopK over all points
(the most expensive node) by a ReduceMin. The k chosen neighbours' distances are then recomputed exactly as
sqrt(sum((x - t)^2)), as sklearn's trees compute them, so a row equal to a training row has distance 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.utils.validation import check_is_fitted

from pynomaly.algorithms.neighbors import gaussian_log_norm, kde_points

from ._graph import INPUT_NAME, OUTPUT_NAME, make_model

ROW_BLOCK = 32
GROUP = 32
# onnx protobufs cannot exceed 2 GiB; keep the embedded constants well below.
MAX_CONSTANT_BYTES = 1 << 30
_EUCLIDEAN = ("euclidean", "l2")


class _Graph:
    """Nodes and float64/int64 constants under unique names; `op` returns the output name(s)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0
        self.const_bytes = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, dtype: type = np.float64, hint: str = "c") -> str:
        arr: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
        self.const_bytes += arr.nbytes
        if self.const_bytes > MAX_CONSTANT_BYTES:
            raise ValueError(
                f"the detector's stored points need over {MAX_CONSTANT_BYTES >> 20} MiB of constants; "
                "too large for one ONNX graph (train on fewer rows)"
            )
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(arr, name=name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else tuple(outs)

    def axes(self, *axes: int) -> str:
        return self.const(list(axes), np.int64, "axes")


def _in_row_blocks(g: _Graph, x: str, score_block: Callable[[_Graph, str], str], block_rows: int = ROW_BLOCK,
                   ) -> str:
    """double[N] = concat over blocks of `block_rows` rows of score_block(rows of x): a Loop, built in g.

    The body's constants go to the outer graph (subgraphs may read outer-scope initializers).
    """
    block = g.const([block_rows], np.int64, "block")
    zero = g.axes(0)
    n_rows = g.op("Shape", [x], start=0, end=1)
    n_blocks = g.op("Div", [g.op("Add", [n_rows, g.const([block_rows - 1], np.int64)]), block])

    body = _Graph()
    body._count = g._count + 10_000_000  # body names never collide with outer ones
    it, cond, acc = body.name("i"), body.name("cond"), body.name("acc")
    start = body.op("Mul", [body.op("Unsqueeze", [it, zero]), block])
    rows = body.op("Slice", [x, start, body.op("Add", [start, block]), zero])
    scores = score_block(body, rows)
    acc_out = body.op("Concat", [acc, scores], axis=0)
    cond_out = body.op("Identity", [cond])
    g.inits += body.inits
    g.const_bytes += body.const_bytes
    graph = helper.make_graph(
        body.nodes,
        "row_block",
        [
            helper.make_tensor_value_info(it, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
            helper.make_tensor_value_info(acc, TensorProto.DOUBLE, [None]),
        ],
        [
            helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(acc_out, TensorProto.DOUBLE, [None]),
        ],
    )
    g._count = body._count
    return g.op("Loop", [g.op("Squeeze", [n_blocks, zero]), "", g.const(np.zeros(0), hint="empty")], body=graph)


def _wrap(score_block: Callable[[_Graph, str], str], g: _Graph, n_features: int, name: str) -> onnx.ModelProto:
    """X float[N, F] -> Cast double -> row blocks -> Cast float -> anomaly_score."""
    x64 = g.op("Cast", [INPUT_NAME], to=TensorProto.DOUBLE)
    score = _in_row_blocks(g, x64, score_block)
    g.nodes.append(helper.make_node("Cast", [score], [OUTPUT_NAME], to=TensorProto.FLOAT))
    return make_model(g.nodes, g.inits, n_features, name)


class _Points:
    """Constants for ||x - p||^2 against fixed points p: centred, transposed, pre-scaled by -2."""

    def __init__(self, g: _Graph, points: np.ndarray, pad_to: int | None = None, centre: bool = True) -> None:
        points = np.asarray(points, np.float64)
        self.n = len(points)
        mu = points.mean(axis=0) if centre else np.zeros(points.shape[1])
        centred = points - mu
        w = -2.0 * centred.T  # exact: scaling by a power of two
        norms = np.einsum("ij,ij->i", centred, centred)
        if pad_to is not None and pad_to > self.n:
            # Padding points: MatMul term 0, squared norm +inf, so they are never among the nearest.
            w = np.hstack([w, np.zeros((w.shape[0], pad_to - self.n))])
            norms = np.concatenate([norms, np.full(pad_to - self.n, np.inf)])
        self.mu, self.w, self.norms = g.const(mu, hint="mu"), g.const(w, hint="w"), g.const(norms, hint="norms")

    def shifted_sq_dists(self, g: _Graph, x: str) -> tuple[str, str]:
        """(||x - p||^2 - ||x - mu||^2 as double[b, points], x - mu): ranks points like the distances do."""
        xc = g.op("Sub", [x, self.mu])
        return g.op("Add", [g.op("MatMul", [xc, self.w]), self.norms]), xc

    def sq_dists(self, g: _Graph, x: str) -> str:
        """||x - p||^2, double[b, points], clipped at 0 (rounding can make it slightly negative)."""
        shifted, xc = self.shifted_sq_dists(g, x)
        xx = g.op("ReduceSumSquare", [xc, g.axes(1)], keepdims=1)
        return g.op("Max", [g.op("Add", [shifted, xx]), g.const(0.0)])


def _nearest(g: _Graph, points: np.ndarray, k: int,
             raw: str | None = None) -> Callable[[_Graph, str], tuple[str, str]]:
    """Builder of (indices int64[b, k], exact squared distances double[b, k]) of each row's k nearest points.
    `raw`: the name of a constant of the points the caller has already (else one is added)."""
    points = np.asarray(points, np.float64)
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"n_neighbors={k} must be in [1, {n}] (training rows)")
    group = min(GROUP, n // (2 * k))
    n_groups = -(-n // group) if group >= 4 else 0
    pts = _Points(g, points, pad_to=n_groups * group if n_groups else None)
    raw = raw or g.const(points, hint="points")
    kk = g.const([k], np.int64, "k")

    def build(b: _Graph, x: str) -> tuple[str, str]:
        shifted, _ = pts.shifted_sq_dists(b, x)
        if n_groups:
            grouped = b.op("Reshape", [shifted, b.const([0, n_groups, group], np.int64)])
            group_min = b.op("ReduceMin", [grouped, b.axes(2)], keepdims=0)
            _, best_groups = b.op("TopK", [group_min, kk], n_out=2, largest=0, sorted=0)
            candidates = b.op("GatherND", [grouped, b.op("Unsqueeze", [best_groups, b.axes(2)])], batch_dims=1)
            flat = b.op("Reshape", [candidates, b.const([0, -1], np.int64)])
            _, pos = b.op("TopK", [flat, kk], n_out=2, largest=0, sorted=0)
            size = b.const(group, np.int64)
            chosen_group = b.op("GatherElements", [best_groups, b.op("Div", [pos, size])], axis=1)
            idx = b.op("Add", [b.op("Mul", [chosen_group, size]), b.op("Mod", [pos, size])])
        else:
            _, idx = b.op("TopK", [shifted, kk], n_out=2, largest=0, sorted=0)
        diff = b.op("Sub", [b.op("Unsqueeze", [x, b.axes(1)]), b.op("Gather", [raw, idx])])
        return idx, b.op("ReduceSumSquare", [diff, b.axes(2)], keepdims=0)

    return build


def _check_width(n_fitted: int, n_features: int, what: str) -> None:
    if n_features != n_fitted:
        raise ValueError(f"n_features={n_features} but {what} was fitted on {n_fitted}")


def _check_euclidean(nn: Any) -> None:
    """A fitted sklearn NearestNeighbors-like estimator must measure plain Euclidean distance."""
    if nn.effective_metric_ not in _EUCLIDEAN:
        raise ValueError(f"only the Euclidean metric is exported, not {nn.effective_metric_!r}")


# --- KNN ---


def knn_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD KNN: of each row's n_neighbors nearest training rows (itself included if it is one), the largest
    distance, their mean, or their median (even k: mean of the middle two), as decision_function."""
    check_is_fitted(det, ["decision_scores_"])
    nn = det.neigh_
    _check_euclidean(nn)
    train = np.asarray(nn._fit_X, np.float64)
    _check_width(train.shape[1], n_features, "KNN")
    k, method = det.n_neighbors, det.method
    if method not in ("largest", "mean", "median"):
        raise ValueError(f"unknown KNN method {method!r}")
    g = _Graph()
    nearest = _nearest(g, train, k)
    kk = g.const([k], np.int64, "k") if method == "median" else ""

    def score(b: _Graph, x: str) -> str:
        _, sq = nearest(b, x)
        if method == "largest":
            return b.op("Sqrt", [b.op("ReduceMax", [sq, b.axes(1)], keepdims=0)])
        if method == "mean":
            return b.op("ReduceMean", [b.op("Sqrt", [sq]), b.axes(1)], keepdims=0)
        ordered, _ = b.op("TopK", [sq, kk], n_out=2, largest=0, sorted=1)
        middle = [k // 2] if k % 2 else [k // 2 - 1, k // 2]
        picked = b.op("Sqrt", [b.op("Gather", [ordered, b.const(middle, np.int64)], axis=1)])
        return b.op("ReduceMean", [picked, b.axes(1)], keepdims=0)

    return _wrap(score, g, n_features, f"knn_{method}")


# --- LOF ---


def _lof_graph(lof: Any, n_features: int, offset: float, name: str) -> onnx.ModelProto:
    """sklearn LocalOutlierFactor(novelty=True): -score_samples + offset (offset 0 gives the LOF itself).

    lrd(x) = 1 / (mean over x's k neighbours o of max(d(x, o), k-distance(o)) + 1e-10);
    LOF(x) = mean over o of lrd(o) / lrd(x). Training lrd and k-distances are constants.
    """
    check_is_fitted(lof, ["_lrd", "_distances_fit_X_"])
    if not lof.novelty:
        raise ValueError("LocalOutlierFactor must be fitted with novelty=True to score new rows")
    _check_euclidean(lof)
    train = np.asarray(lof._fit_X, np.float64)
    _check_width(train.shape[1], n_features, type(lof).__name__)
    k = lof.n_neighbors_
    g = _Graph()
    nearest = _nearest(g, train, k)
    k_distance = g.const(lof._distances_fit_X_[:, k - 1], hint="k_distance")
    lrd = g.const(lof._lrd, hint="lrd")

    def score(b: _Graph, x: str) -> str:
        idx, sq = nearest(b, x)
        reach = b.op("Max", [b.op("Sqrt", [sq]), b.op("Gather", [k_distance, idx])])
        mean_reach = b.op("ReduceMean", [reach, b.axes(1)], keepdims=1)
        x_lrd = b.op("Div", [b.const(1.0), b.op("Add", [mean_reach, b.const(1e-10)])])
        ratios = b.op("Div", [b.op("Gather", [lrd, idx]), x_lrd])
        factor = b.op("ReduceMean", [ratios, b.axes(1)], keepdims=0)
        return b.op("Add", [factor, b.const(offset)]) if offset else factor

    return _wrap(score, g, n_features, name)


def pyod_lof_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    check_is_fitted(det, ["detector_"])
    return _lof_graph(det.detector_, n_features, 0.0, "lof")


def sklearn_lof_to_onnx(est: Any, n_features: int) -> onnx.ModelProto:
    check_is_fitted(est, ["offset_"])
    # -decision_function = -(score_samples - offset_) = LOF + offset_
    return _lof_graph(est, n_features, float(est.offset_), "sklearn_lof")


# --- KDE ---


def kde_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """-log density of a Gaussian KDE: -(logsumexp_i(-||x - t_i||^2 / 2h^2) + log norm - log n), in float64.

    As scipy's logsumexp computes it (the reference, pynomaly.algorithms.neighbors.kde_score): the m largest terms
    apart, top + log(m) + log1p(sum of the other terms' exp(v - top) / m). The largest term (the nearest training
    row) is recomputed from the exact squared distance, as scipy's cdist has it, and log1p is taken as
    log(u) * s / (u - 1), u = 1 + s (s itself where u rounds to 1). So rows whose other terms are below float64's
    resolution (on unscaled data, e.g. pima with bandwidth 1, most training rows) tie exactly as they do natively
    instead of being ordered by the MatMul expansion's rounding, and the small terms keep their precision.
    """
    train, h = kde_points(det)
    _check_width(train.shape[1], n_features, "KDE")
    g = _Graph()
    pts = _Points(g, train)
    scale = g.const(-0.5 / (h * h))
    offset = g.const(-(gaussian_log_norm(h, n_features) - np.log(len(train))))
    raw, zero, one = g.const(train, hint="points"), g.const(0.0), g.const(1.0)

    def score(b: _Graph, x: str) -> str:
        # Exp of [rows, points] then a sum: ReduceLogSumExp computes the same but ran 2.6x slower (scalar exp).
        log_kernel = b.op("Mul", [pts.sq_dists(b, x), scale])
        top = b.op("ReduceMax", [log_kernel, b.axes(1)], keepdims=1)
        is_top = b.op("Equal", [log_kernel, top])
        m = b.op("ReduceSum", [b.op("Cast", [is_top], to=TensorProto.DOUBLE), b.axes(1)], keepdims=1)
        rest = b.op("Where", [is_top, zero, b.op("Exp", [b.op("Sub", [log_kernel, top])])])
        # The top term exactly: the other terms rescaled onto it.
        nearest = b.op("Gather", [raw, b.op("ArgMax", [log_kernel], axis=1, keepdims=0)])
        exact = b.op("Mul", [b.op("ReduceSumSquare", [b.op("Sub", [x, nearest]), b.axes(1)], keepdims=1), scale])
        rest_sum = b.op("Mul", [b.op("ReduceSum", [rest, b.axes(1)], keepdims=1),
                                b.op("Exp", [b.op("Sub", [top, exact])])])
        s = b.op("Div", [rest_sum, m])
        u = b.op("Add", [one, s])
        ratio = b.op("Div", [s, b.op("Sub", [u, one])])  # 0/0 where u rounds to 1: replaced below
        log1p = b.op("Where", [b.op("Equal", [u, one]), s, b.op("Mul", [b.op("Log", [u]), ratio])])
        log_sum = b.op("Add", [b.op("Add", [log1p, b.op("Log", [m])]), exact])
        return b.op("Sub", [offset, b.op("Squeeze", [log_sum, b.axes(1)])])

    return _wrap(score, g, n_features, "kde")


# --- INNE ---


def inne_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """PyOD INNE: mean over ensembles of the ratio of the smallest hypersphere covering x (1 if none covers it).

    Squared distances as sklearn's euclidean_distances computes them (||x||^2 - 2 x.c + ||c||^2, not centred),
    covered iff <= the stored radius (a squared distance too); ArgMin's first index as nanargmin's. A row equal
    to a centre sits exactly on the boundary of the spheres of the centres whose nearest neighbour it is, and
    PyOD decides those ties by the rounding of its BLAS MatMul (about 2 % fall outside); with duplicated
    training rows a radius is 0 up to rounding and the ratio it gives is rounding noise. Training rows hit these
    cases, so a row equal to a centre (checked exactly) gets PyOD's own score of that centre, computed here;
    other rows are computed.
    """
    check_is_fitted(det, ["decision_scores_", "_centroids"])
    centres = np.asarray(det._centroids, np.float64)
    n_est, n_samples, n_fit = centres.shape
    _check_width(n_fit, n_features, "INNE")
    radius = np.asarray(det._centroids_radius, np.float64).ravel()
    ratio = np.asarray(det._ratio, np.float64).ravel()
    if not (np.all(np.isfinite(radius)) and np.all(np.isfinite(ratio))):
        raise ValueError("INNE has non-finite radii or ratios (max_samples must be at least 2)")
    flat = centres.reshape(-1, n_features)
    at_centres = np.asarray(det.decision_function(flat), np.float64)

    g = _Graph()
    # Not centred, as sklearn's euclidean_distances: on integer-valued data both are then exact, and the many
    # rows exactly on a sphere's boundary are decided alike.
    pts = _Points(g, flat, centre=False)
    radius_c, ratio_c = g.const(radius, hint="radius"), g.const(ratio, hint="ratio")
    flat_c, at_centres_c = g.const(flat, hint="centres"), g.const(at_centres, hint="score_at_centres")
    first = g.const(np.arange(n_est, dtype=np.int64) * n_samples, np.int64, "first")

    def score(b: _Graph, x: str) -> str:
        sq = pts.sq_dists(b, x)
        covering = b.op("Where", [b.op("LessOrEqual", [sq, radius_c]), radius_c, b.const(np.inf)])
        per_set = b.op("Reshape", [covering, b.const([0, n_est, n_samples], np.int64)])
        smallest = b.op("ArgMin", [per_set], axis=2, keepdims=0)
        chosen = b.op("Gather", [ratio_c, b.op("Add", [smallest, first])])
        uncovered = b.op("IsInf", [b.op("ReduceMin", [per_set, b.axes(2)], keepdims=0)])
        isolation = b.op("Where", [uncovered, b.const(1.0), chosen])
        computed = b.op("ReduceMean", [isolation, b.axes(1)], keepdims=0)
        nearest = b.op("ArgMin", [sq], axis=1, keepdims=0)
        differs = b.op("Cast", [b.op("Not", [b.op("Equal", [x, b.op("Gather", [flat_c, nearest])])])],
                       to=TensorProto.DOUBLE)
        is_centre = b.op("Equal", [b.op("ReduceMax", [differs, b.axes(1)], keepdims=0), b.const(0.0)])
        return b.op("Where", [is_centre, b.op("Gather", [at_centres_c, nearest]), computed])

    return _wrap(score, g, n_features, "inne")


CONVERTERS = {
    "pyod.models.knn.KNN": knn_to_onnx,
    "pyod.models.lof.LOF": pyod_lof_to_onnx,
    "sklearn.neighbors._lof.LocalOutlierFactor": sklearn_lof_to_onnx,
    "pyod.models.kde.KDE": kde_to_onnx,
    "pyod.models.inne.INNE": inne_to_onnx,
}
