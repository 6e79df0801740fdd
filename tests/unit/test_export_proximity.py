"""Proximity graphs (ABOD, Sampling, HDBSCAN, COF frozen in the training batch; SOD refused): what
test_export_contract does not check."""

from __future__ import annotations

import functools
import types
import warnings
from typing import Any

import numpy as np
import pytest
from pyod.models import cof as pyod_cof
from pyod.models.abod import ABOD
from pyod.models.cof import COF
from pyod.models.hdbscan import HDBSCAN
from pyod.models.sampling import Sampling
from pyod.models.sod import SOD
from sklearn.neighbors import NearestNeighbors

from pynomaly import algorithms, training
from pynomaly.algorithms.proximity import TrainingBatchCOF
from pynomaly.errors import InvalidArgument
from pynomaly.export import supports, to_onnx
from pynomaly.export.proximity import cof_paths, cof_weights

import export_checks as checks
import export_data as data

NAMES = ("abod", "sampling", "hdbscan", "cof")


def _normal(rows: int, features: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, features))


def _fit(det: Any, x: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyOD warns when n_neighbors exceeds the rows
        return det.fit(x)


def _built(name: str, params: dict[str, Any], x: np.ndarray) -> tuple[algorithms.Algorithm, Any]:
    algo = algorithms.get(name)
    return algo, _fit(algo.build(algo.resolve_params(params), 0.1), x)


# --- the registry ---


def test_serving_status_of_each_detector() -> None:
    serving = {name: algorithms.get(name).serving for name in (*NAMES, "sod")}
    assert serving == {"abod": "exact", "sampling": "exact", "hdbscan": "exact", "cof": "frozen", "sod": "refused"}
    cof = algorithms.get("cof")
    assert cof.slow_reference and cof.max_training_rows == 5000 and "vstack([X_train, row])" in cof.export_note
    assert "quicksort" in algorithms.get("sod").export_note


def test_defaults_are_pyods() -> None:
    for name, cls in [("abod", ABOD), ("sampling", Sampling), ("hdbscan", HDBSCAN), ("cof", COF), ("sod", SOD)]:
        defaults = cls().get_params()
        for p in algorithms.get(name).params:
            assert defaults[p.name] == p.default, (name, p.name)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("abod", {"n_neighbors": 2}, r"params.n_neighbors: must be an integer in \[3, 100000\]: ABOD takes the "
                                     "angles between pairs"),
        ("abod", {"n_neighbors": 4.5}, "params.n_neighbors: must be an integer"),
        ("abod", {"method": "default"}, r"params.method: must be 'fast': 'default' .* O\(n\^3\)"),
        ("abod", {"metric": "manhattan"}, "params.metric: must be 'minkowski' .* only Euclidean"),
        ("abod", {"p": 1}, r"params.p: must be 2 \(Euclidean\)"),
        ("sampling", {"subset_size": 0}, r"params.subset_size: must be a fraction in \(0, 1\] or an integer count"),
        ("sampling", {"subset_size": 2.5}, r"params.subset_size: must be a fraction in \(0, 1\] or an integer count"),
        ("sampling", {"metric": "cosine"}, "params.metric: must be 'minkowski'"),
        ("sampling", {"random_state": -1}, "params.random_state: must be an integer in"),
        ("hdbscan", {"min_cluster_size": 1}, r"params.min_cluster_size: must be an integer in \[2, "),
        ("hdbscan", {"min_samples": 0}, r"params.min_samples: must be an integer in \[1, "),
        ("hdbscan", {"metric": "manhattan"}, "params.metric: must be 'euclidean': only Euclidean"),
        ("hdbscan", {"alpha": 0}, r"params.alpha: must be in \(0.0, "),
        ("hdbscan", {"algorithm": "prims_kdtree"}, 'params.algorithm: must be one of "auto", "brute", "kd_tree"'),
        ("hdbscan", {"leaf_size": 0}, r"params.leaf_size: must be an integer in \[1, "),
        ("cof", {"n_neighbors": 1}, r"params.n_neighbors: must be an integer in \[2, "),
        ("cof", {"method": "slow"}, 'params.method: must be one of "fast", "memory"'),
        ("sod", {"alpha": 1.0}, r"params.alpha: must be in \(0.0, 1.0\)"),
        ("sod", {"ref_set": 1}, r"params.ref_set: must be an integer in \[2, "),
    ],
)
def test_bad_params_name_the_parameter_and_what_is_valid(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        algorithms.get(name).resolve_params(params)


# --- training through the platform ---


@pytest.mark.parametrize(
    ("name", "params"),
    [("abod", {"n_neighbors": 7}), ("sampling", {"subset_size": 0.2, "random_state": 3}),
     ("hdbscan", {"min_cluster_size": 8}), ("cof", {"n_neighbors": 10})],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    # Float32-exact rows, as the API delivers them: verification then scores exact training rows.
    x = data.f32(_normal(300 if name != "cof" else 100, 5, seed=4))
    checks.train_end_to_end(name, params, x, list("abcde"))


def test_sampling_subset_larger_than_the_data_fails_training_with_pyods_reason() -> None:
    algo = algorithms.get("sampling")
    spec = training.TrainSpec(model_name="m", algorithm="sampling", params=algo.resolve_params({"subset_size": 500}),
                              contamination=0.1, feature_names=list("abcd"))
    with pytest.raises(training.TrainingFailed, match="subset_size=500 must be between 0 and n_samples=100"):
        training.train(spec, _normal(100))


# --- converter refusals ---


@pytest.mark.parametrize(
    ("factory", "n_features", "match"),
    [
        pytest.param(ABOD, 4, "ABOD", id="unfitted-abod"),
        pytest.param(Sampling, 4, "Sampling", id="unfitted-sampling"),
        pytest.param(HDBSCAN, 4, "HDBSCAN", id="unfitted-hdbscan"),
        pytest.param(lambda: TrainingBatchCOF(0.1), 4, "TrainingBatchCOF", id="unfitted-cof"),
        pytest.param(lambda: _fit(ABOD(), _normal(60)), 5, "n_features=5 but ABOD", id="wrong-width-abod"),
        pytest.param(lambda: _fit(Sampling(), _normal(60)), 3, "n_features=3 but Sampling", id="wrong-width-sampling"),
        pytest.param(lambda: _fit(HDBSCAN(), _normal(60)), 5, "n_features=5 but HDBSCAN", id="wrong-width-hdbscan"),
        pytest.param(lambda: _fit(TrainingBatchCOF(0.1), _normal(60)), 6, "n_features=6 but COF",
                     id="wrong-width-cof"),
        pytest.param(lambda: _fit(ABOD(method="default"), _normal(20)), 4, "only 'fast'", id="default-abod"),
        pytest.param(lambda: _fit(ABOD(metric="manhattan"), _normal(60)), 4, "Euclidean", id="manhattan-abod"),
        pytest.param(lambda: _fit(Sampling(metric_params={"p": 1}), _normal(60)), 4, "Euclidean",
                     id="p1-sampling"),
        pytest.param(lambda: _fit(HDBSCAN(metric="manhattan"), _normal(60)), 4, "Euclidean", id="manhattan-hdbscan"),
    ],
)
def test_bad_input_raises_export_error(factory: Any, n_features: int, match: str) -> None:
    checks.assert_refused(factory(), n_features, match)


@pytest.mark.filterwarnings("ignore:Degrees of freedom", "ignore:invalid value encountered")  # PyOD: np.var([])
def test_abod_refuses_rows_present_beyond_its_pairs() -> None:
    """A training row present n_neighbors - 1 times has no pair of other neighbours: PyOD scores it NaN, and training
    fails saying so."""
    x = np.vstack([_normal(60), np.repeat(_normal(2, seed=1), 4, axis=0)])
    det = _fit(ABOD(n_neighbors=5), x)
    assert np.isnan(det.decision_scores_).sum() == 8
    message = "training rows present 4 times or more .* non-finite \\(NaN\\); choose a larger n_neighbors"
    checks.assert_refused(det, 4, message)
    spec = training.TrainSpec(model_name="m", algorithm="abod", params=algorithms.get("abod").resolve_params({}),
                              contamination=0.1, feature_names=list("abcd"))
    with pytest.raises(training.TrainingFailed, match="export to ONNX failed: cannot export ABOD: n_neighbors=5: "
                                                      + message):
        training.train(spec, x)
    checks.train_end_to_end("abod", {"n_neighbors": 6}, x)  # one pair left: served


# --- HDBSCAN's reference ---


def test_hdbscan_reference_is_pyods_own_search_where_it_is_a_tree() -> None:
    algo, det = _built("hdbscan", {}, _normal(150))
    assert det.tree_._fit_method == "kd_tree"
    rows = np.vstack([_normal(40, seed=2), det.X_train_[:20]])
    np.testing.assert_array_equal(algo.score(det, rows), det.decision_function(rows))


@pytest.mark.parametrize("min_cluster_size", [5, 12, 150])
def test_hdbscan_serves_pyods_scores_bit_for_bit(min_cluster_size: int) -> None:
    """Sums in numpy's order (one accumulator, 8, halves above 128 terms): rows whose neighbours' scores are all equal
    (noise: 1) score exactly as in PyOD, so ranking them (ROC-AUC on ADBench ionosphere) does not change."""
    algo, det = _built("hdbscan", {"min_cluster_size": min_cluster_size}, _normal(400, 5))
    rows = np.vstack([_normal(60, 5, seed=2) * 1.5, det.X_train_[::10]])
    served = checks.run(checks.session(to_onnx(det, 5)), rows)
    np.testing.assert_array_equal(served, det.decision_function(rows))
    assert (det.decision_scores_ == 1).any()


def test_hdbscan_reference_replaces_brute_force_distances_by_exact_ones() -> None:
    """Above 15 features PyOD's search is sklearn's brute force: away from the training rows it agrees with the
    exact reference; at a training row, the exact distance 0 gives that row's own score (weight 1e10)."""
    algo, det = _built("hdbscan", {}, _normal(150, 20))
    assert det.tree_._fit_method == "brute"
    away = _normal(40, 20, seed=2) * 2
    np.testing.assert_allclose(algo.score(det, away), det.decision_function(away), rtol=1e-9)
    train = det.X_train_[:30]
    np.testing.assert_allclose(algo.score(det, train), det.decision_scores_[:30], rtol=0, atol=1e-8)


# --- COF, frozen in the training batch ---


def _whole_batch(det: TrainingBatchCOF, rows: np.ndarray) -> np.ndarray:
    """PyOD's own COF on vstack([X_train, row]) for each row: the last score (the definition)."""
    return np.array([det.detector_.decision_function(np.vstack([det.X_train_, r]))[-1] for r in rows])


def _whole_batch_stable(det: TrainingBatchCOF, rows: np.ndarray) -> np.ndarray:
    """The same with numpy's argsort made stable inside pyod.models.cof (equal distances in index order)."""
    stable = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    stable.argsort = functools.partial(np.argsort, kind="stable")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pyod_cof, "np", stable)
        return _whole_batch(det, rows)


@pytest.mark.filterwarnings("ignore:.*encountered in scalar divide")  # PyOD on repeated rows: 0/0, x/0
@pytest.mark.parametrize("k", [20, 6, 2])
@pytest.mark.parametrize("duplicates", [False, True])
def test_cof_reference_is_pyod_on_the_whole_training_batch(k: int, duplicates: bool) -> None:
    """The reference runs PyOD's COF on the rows the last score reads: bit for bit PyOD on the whole batch, for new
    rows, rows next to training rows, training rows (scored beside their copy) and rows of repeated rows."""
    x = _normal(70)
    if duplicates:
        x = np.vstack([x, np.repeat(x[:4], 2, axis=0)])
    algo, det = _built("cof", {"n_neighbors": k}, x)
    rows = np.vstack([_normal(8, seed=2), x[:6] + 1e-3, x[:6], x[-3:], [[1e3] * 4]])
    np.testing.assert_array_equal(algo.score(det, rows), _whole_batch(det, rows))


@pytest.mark.parametrize("k", [20, 5])
def test_cof_equal_distances_are_taken_in_index_order(k: int) -> None:
    """On integer data distinct rows lie at equal distances, which PyOD's unstable argsort leaves in an unspecified
    order: the reference is PyOD's code with a stable one, and the graph serves it."""
    x = np.round(1.5 * _normal(70))
    algo, det = _built("cof", {"n_neighbors": k}, x)
    rows = np.vstack([np.round(1.5 * _normal(10, seed=2)), x[:8], _normal(4, seed=3)])
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(axis=2))
    assert any(len(np.unique(d)) < len(d) - 1 for d in np.sort(dist, axis=1)[:, 1 : k + 2])  # ties in paths
    native = algo.score(det, rows)
    np.testing.assert_array_equal(native, _whole_batch_stable(det, rows))
    np.testing.assert_array_equal(checks.run(checks.session(to_onnx(det, 4)), rows), native)


@pytest.mark.parametrize("dataset", ["normal", "duplicates"])
def test_cof_constants_reproduce_pyods_training_scores(dataset: str) -> None:
    """The training paths the graph holds (neighbours, distances, chaining costs) give PyOD's own training scores."""
    f = checks.fitted(f"cof-{'default' if dataset == 'normal' else 'k5-memory'}-{dataset}")
    k = f.det.detector_.n_neighbors_
    neighbours, _, costs = cof_paths(f.train, k)
    acd = costs @ cof_weights(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        cof = np.nan_to_num(acd * k / acd[neighbours].sum(axis=1))
    np.testing.assert_allclose(cof, f.det.decision_scores_, rtol=1e-12)


def test_cof_with_more_neighbours_than_training_rows() -> None:
    """PyOD lowers n_neighbors to the training rows - 1; a new row then displaces each row's farthest neighbour."""
    algo, det = _built("cof", {"n_neighbors": 20}, _normal(12))
    assert det.detector_.n_neighbors_ == 11
    sess = checks.session(to_onnx(det, 4))
    rows = np.vstack([_normal(10, seed=5), det.X_train_])
    native = algo.score(det, rows)
    np.testing.assert_array_equal(native, _whole_batch(det, rows))
    checks.assert_matches_native(sess, rows, native)


def test_cof_served_score_does_not_depend_on_the_batch_as_pyods_does() -> None:
    """PyOD scores a batch within itself (a lone row: 0, no neighbours); served, a row scores the same alone."""
    f = checks.fitted("cof-default-normal")
    rows = f.rows[:30]
    assert not np.allclose(f.det.detector_.decision_function(rows), f.native[:30], rtol=1e-3)
    checks.assert_batch_invariant(f.sess, rows, np.arange(0, 30, 7))


def test_pyods_bare_cof_is_not_served() -> None:
    """PyOD's own COF keeps no training rows: only TrainingBatchCOF, which does, is exported."""
    assert supports(TrainingBatchCOF) and not supports(COF)
    checks.assert_refused(_fit(COF(), _normal(30)), 4, "COF")


# --- SOD: refused ---


def _sod_score(batch: np.ndarray, ref: np.ndarray, alpha: float = 0.8) -> float:
    """PyOD's SOD score of the last row of `batch` against the reference set `ref` (pyod/models/sod.py _sod)."""
    obs, refs = batch[-1], batch[ref]
    means = refs.mean(axis=0)
    var_expect = alpha * np.sum(np.square(refs - means)) / len(ref) / batch.shape[1]
    relevant = (refs.var(axis=0) < var_expect).astype(float)
    return float(np.sqrt(relevant @ np.square(obs - means) / relevant.sum())) if relevant.sum() else 0.0


def test_sod_refusal_reason_is_true() -> None:
    """Within the training batch, a new row's reference set (the 10 rows sharing the most of its 20 nearest
    neighbours) ends in a tie: more rows share the 10th-place count than places are left; PyOD takes the ones its
    (numba, unstable) quicksort leaves first, and which ones it takes changes the score."""
    x, row = _normal(300, 6), _normal(1, 6, seed=2)
    batch = np.vstack([x, row])
    ind = NearestNeighbors(n_neighbors=20).fit(batch).kneighbors(return_distance=False)
    shared = np.array([len(set(ind[j]) & set(ind[-1])) for j in range(len(x))])
    boundary = np.sort(shared)[::-1][9]
    surely, tied = np.nonzero(shared > boundary)[0], np.nonzero(shared == boundary)[0]
    places = 10 - len(surely)
    assert 0 < places < len(tied)
    first = _sod_score(batch, np.concatenate([surely, tied[:places]]))
    last = _sod_score(batch, np.concatenate([surely, tied[-places:]]))
    assert abs(first - last) > 1e-3 * max(first, last)
    assert not supports(SOD)
