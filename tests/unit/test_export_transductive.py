"""ROD, SOS, LOCI and LMDD served frozen (each row scored as PyOD scores it within the training batch): what
test_export_contract does not check. Above all, that the references are that: PyOD's own decision_function on
vstack([X_train, row]), last score."""

from __future__ import annotations

import copy
import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from pyod.models.lmdd import LMDD
from pyod.models.loci import LOCI
from pyod.models.rod import ROD
from pyod.models.sos import SOS

from pynomaly import algorithms, export
from pynomaly.algorithms.in_batch import FrozenLOCI, FrozenROD, FrozenSOS
from pynomaly.algorithms.in_batch_lmdd import FrozenLMDD
from pynomaly.errors import InvalidArgument

import export_checks as checks

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # PyOD divides by zero on purpose (NaN, inf)


def _data(n: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width))


def _rows(train: np.ndarray) -> np.ndarray:
    """New rows, training rows (each then twice in the batch), far rows, an integer-valued row."""
    rng = np.random.default_rng(7)
    width = train.shape[1]
    return np.vstack([rng.normal(size=(3, width)), train[:3], rng.uniform(-1e3, 1e3, size=(1, width)),
                      np.round(2 * rng.normal(size=(1, width)))])


def _in_training_batch(det: Any, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """PyOD's own code, literally: each row scored in the training batch, on a copy of the fitted detector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([copy.deepcopy(det.detector_).decision_function(np.vstack([train, r]))[-1] for r in rows])


@pytest.mark.parametrize(("n", "width"), [(41, 2), (41, 3), (40, 5)])
def test_rod_reference_is_pyod_in_the_training_batch(n: int, width: int) -> None:
    train = _data(n, width)  # n odd: the median of the n + 1 costs is a mean of two; n even: the middle one
    det = FrozenROD(ROD()).fit(train)
    rows = _rows(train)
    np.testing.assert_allclose(det.decision_function(rows), _in_training_batch(det, train, rows), rtol=1e-13)


def test_sos_reference_is_pyod_in_the_training_batch() -> None:
    train = _data(50, 3)
    det = FrozenSOS(SOS(perplexity=6.0)).fit(train)
    rows = _rows(train)[:-2]  # (the far row: below)
    np.testing.assert_allclose(det.decision_function(rows), _in_training_batch(det, train, rows), rtol=1e-13)


def test_sos_row_far_from_all_data_scores_as_no_training_row_binds_it() -> None:
    """PyOD's bisection for a far row's own precision underflows (exp(-d beta) = 0 for every neighbour) and it
    scores NaN (0 / 0 for the row's binding to itself); served, the row's factor is 1 - 0: the product over the
    training rows of PyOD's own binding probabilities."""
    train = _data(50, 3)
    det = FrozenSOS(SOS()).fit(train)
    far = np.full((1, 3), 800.0)
    assert np.isnan(_in_training_batch(det, train, far)[0])
    sos = copy.deepcopy(det.detector_)
    binding = sos._a2b(sos._d2a(sos._x2d(np.vstack([train, far]))))
    expected = np.prod(1 - binding[:-1, -1])
    assert 0.99 < expected <= 1
    np.testing.assert_allclose(det.decision_function(far), [expected], rtol=1e-13)


@pytest.mark.parametrize(("params", "integer"), [({}, False), ({}, True), ({"alpha": 0.3, "k": 1.5}, False)])
def test_loci_reference_is_pyod_in_the_training_batch(params: dict[str, Any], integer: bool) -> None:
    train = _data(40, 3)
    train = np.round(2 * train) if integer else train  # equal distances: ties in LOCI's counts
    det = FrozenLOCI(LOCI(**params)).fit(train)
    rows = _rows(train)[[0, 3, 6, 7]]  # a new row, a training row, a far row, an integer row (PyOD's loop: slow)
    np.testing.assert_allclose(det.decision_function(rows), _in_training_batch(det, train, rows), rtol=1e-13)


@pytest.mark.parametrize("kind", ["normal", "integer", "duplicates"])
def test_lmdd_reference_is_pyod_in_the_training_batch_bit_for_bit(kind: str) -> None:
    train = _data(30, 3)
    if kind == "integer":
        train = np.round(2 * train)  # ties between prefixes' deviations
    elif kind == "duplicates":
        train = np.vstack([train[:20], np.repeat(train[:2], 5, axis=0)])
    det = FrozenLMDD(LMDD(n_iter=6, random_state=4)).fit(train)
    rows = _rows(train)
    np.testing.assert_array_equal(det.decision_function(rows), _in_training_batch(det, train, rows))


@pytest.mark.parametrize("dataset", ["integer", "duplicates"])
def test_lmdd_graph_is_pyod_bit_for_bit(dataset: str) -> None:
    """The graph sums as numba does (sequentially): ties between prefixes' deviations on integer or duplicated
    rows fall as in PyOD, and the scores are PyOD's to the bit."""
    f = checks.fitted(f"lmdd-9orders-{dataset}")
    np.testing.assert_array_equal(checks.run(f.sess, f.rows), f.native)


def test_lmdd_seed_fixes_the_orders() -> None:
    """random_state null draws a seed once, at build: the model's orders are fixed (its reference reproducible)."""
    algo = algorithms.get("lmdd")
    a, b = (algo.build(algo.resolve_params({"n_iter": 3}), 0.1) for _ in range(2))
    assert a.detector.random_state != b.detector.random_state
    train = _data(30, 3)
    a.fit(train)
    np.testing.assert_array_equal(a.decision_function(train[:3]), a.decision_function(train[:3]))


@pytest.mark.parametrize("name", ["rod", "sos", "loci"])
def test_a_row_alone_has_no_batch_to_be_scored_in(name: str) -> None:
    """Why frozen: PyOD's own score of a row alone is a constant (ROD sigmoid(0.6745), SOS NaN, LOCI 0), and in a
    batch it depends on the batch."""
    f = checks.fitted(f"{name}-default-normal" if name != "rod" else "rod-4-normal")
    rows = f.rows[:30]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = np.array([copy.deepcopy(f.det.detector_).decision_function(rows[i : i + 1])[0] for i in range(5)])
        in_batch = copy.deepcopy(f.det.detector_).decision_function(rows)[:5]
    assert len(np.unique(alone)) == 1
    assert not np.allclose(in_batch, f.native[:5])


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("sos", {"perplexity": 0}, r"params\.perplexity: must be in \(0\.0, "),
        ("sos", {"eps": -1e-5}, r"params\.eps: must be in \(0\.0, "),
        ("sos", {"metric": "manhattan"}, r"params\.metric: must be 'euclidean': only Euclidean"),
        ("loci", {"alpha": 1.5}, r"params\.alpha: must be in \(0\.0, 1\.0\]"),
        ("loci", {"alpha": 0}, r"params\.alpha: must be in \(0\.0, 1\.0\]"),
        ("loci", {"k": -1}, r"params\.k: must be in \[0\.0, "),
        ("loci", {"k": "3"}, r"params\.k: must be a finite number"),
        ("rod", {"parallel_execution": True}, "unknown hyperparameter 'parallel_execution'"),
        ("lmdd", {"n_iter": 0}, r"params\.n_iter: must be an integer in \[1, 10000\]"),
        ("lmdd", {"dis_measure": "var"}, r"params\.dis_measure: must be 'aad': only the mean absolute deviation"),
        ("lmdd", {"random_state": -1}, r"params\.random_state: must be an integer in \[0, 4294967295\]"),
    ],
)
def test_bad_params_are_refused_by_name(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        algorithms.get(name).resolve_params(params)


@pytest.mark.parametrize(("name", "params"), [("rod", {}), ("sos", {"perplexity": 8.0}), ("loci", {"k": 2}),
                                              ("lmdd", {"n_iter": 3})])
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    x = checks.data.f32(_data(60, 4, seed=4))
    result = checks.train_end_to_end(name, params, x, list("abcd"))
    assert algorithms.get(name).serving == "frozen"
    assert result.manifest["export_check"]["rows"] == 60 + 256  # every training row and the synthetic rows


def _unfitted() -> list[Any]:
    return [pytest.param(FrozenROD(ROD()), "ROD is not fitted", id="rod-unfitted"),
            pytest.param(FrozenSOS(SOS()), "SOS is not fitted", id="sos-unfitted"),
            pytest.param(FrozenLOCI(LOCI()), "LOCI is not fitted", id="loci-unfitted"),
            pytest.param(FrozenLMDD(LMDD()), "LMDD is not fitted", id="lmdd-unfitted")]


@pytest.mark.parametrize(("det", "match"), _unfitted())
def test_unfitted_is_refused(det: Any, match: str) -> None:
    checks.assert_refused(det, 4, match)


@pytest.mark.parametrize("case_id", ["rod-4-normal", "sos-default-normal", "loci-default-normal",
                                     "lmdd-4orders-normal"])
def test_wrong_width_is_refused(case_id: str) -> None:
    f = checks.fitted(case_id)
    checks.assert_refused(f.det, f.train.shape[1] + 1, "n_features=5 but .* fitted on 4 features")


def test_sos_other_metrics_are_refused() -> None:
    checks.assert_refused(FrozenSOS(SOS(metric="cityblock")).fit(_data(30, 3)), 3, "only the Euclidean metric")


def test_loci_alpha_above_one_is_refused() -> None:
    det = FrozenLOCI(LOCI()).fit(_data(25, 2))
    det.detector_.alpha = 2.0  # the algorithm refuses it (test_bad_params...); a detector could still hold it
    checks.assert_refused(det, 2, r"alpha=2\.0: only 0 < alpha <= 1")


def test_lmdd_other_dissimilarities_are_refused() -> None:
    checks.assert_refused(FrozenLMDD(LMDD(n_iter=2, dis_measure="var", random_state=0)).fit(_data(20, 2)), 2,
                          "dis_measure='var': only 'aad'")


def test_lmdd_without_a_seed_is_refused() -> None:
    checks.assert_refused(FrozenLMDD(LMDD(n_iter=2)).fit(_data(20, 2)), 2, "random_state=None: .* a seed is needed")


@pytest.mark.parametrize(("name", "params"), [("sos", {}), ("loci", {"alpha": 0.3, "k": 2})])
def test_training_data_pyod_scores_nan_is_refused(name: str, params: dict[str, Any]) -> None:
    """Duplicated rows: SOS's precision search for a row with more than `perplexity` exact duplicates never
    converges (NaN), LOCI's MDEF of a duplicated row can be 0 / 0. PyOD's own training scores are NaN: refused."""
    algo = algorithms.get(name)
    train = checks.fitted("rod-4-duplicates").train
    det = algo.build(algo.resolve_params(params), 0.1).fit(train)
    assert not np.all(np.isfinite(det.detector_.decision_scores_))
    checks.assert_refused(det, train.shape[1],
                          r"gives [0-9]+ of its 80 training rows non-finite scores \(NaN or inf\): nothing to serve")


def test_rod_three_features_with_a_zero_mad_is_refused() -> None:
    """rod_3D (three features or fewer) divides by the MAD of the costs without nan_to_num. Half the training
    rows at one point P (their cost the median: 12 rows cost less, 13 more): fit's MAD is half the next diff, so
    PyOD's training scores are finite, but within the training batch P's cost diff 0 makes the MAD 0: 0 / 0."""
    rng = np.random.default_rng(1)
    p = np.array([5.0, 0.0, 0.0])
    u = rng.normal(size=(25, 3))
    u[:12, 0], u[12:, 0] = -np.abs(u[:12, 0]) - 1, np.abs(u[12:, 0]) + 1  # angles beyond / within pi/2 of gm
    train = np.vstack([np.repeat(p[None], 25, axis=0), p + u])
    det = FrozenROD(ROD()).fit(train)
    assert np.all(np.isfinite(det.detector_.decision_scores_))
    assert np.isnan(_in_training_batch(det, train, p[None])[0])
    checks.assert_refused(det, 3, "the MAD is 0 and PyOD scores a row of that cost NaN")


def test_rod_degenerate_training_data_is_refused() -> None:
    train = np.vstack([np.zeros((30, 3)), _data(20, 3)])  # most rows at the geometric median: PyOD's MAD is 0
    checks.assert_refused(FrozenROD(ROD()).fit(train), 3, "gives 50 of its 50 training rows non-finite scores")


def test_quadratic_detectors_limit_their_training_rows() -> None:
    assert all(algorithms.get(name).max_training_rows > 0 for name in ("sos", "loci", "lmdd"))
    assert algorithms.get("rod").max_training_rows == 0  # linear in the rows (cubic in the features)


def test_rod_zero_mad_subspaces_follow_pyods_bits() -> None:
    """Most rows repeated (as on ADBench breastw): in some subspaces over half the training costs are the median,
    the MAD within the training batch is 0 for a row of that cost (PyOD: 0 / 0, NaN -> 0.5) and not for any other
    (0.6745 or more): decided by the row's coordinates, bit for bit PyOD's; and batch invariant."""
    rng = np.random.default_rng(5)
    train = np.vstack([np.repeat(np.round(2 * rng.normal(size=(1, 4))), 50, axis=0),
                       np.round(2 * rng.normal(size=(40, 4)))])
    det = FrozenROD(ROD()).fit(train)
    from pynomaly.algorithms.in_batch import RODSubspaces

    sub = RODSubspaces(det.detector_, 4)
    costs = sub.costs(train)
    assert np.any(np.sum(costs == sub.median, axis=0) > len(train) / 2)  # a zero-MAD subspace
    rows = np.vstack([train, np.round(2 * rng.normal(size=(30, 4))), train[:1] + 0.5])
    sess = checks.session(checks.to_onnx(det, 4))
    checks.assert_matches_native(sess, rows, det.decision_function(rows))
    checks.assert_batch_invariant(sess, rows, np.arange(0, len(rows), 7))
    np.testing.assert_allclose(det.decision_function(train[:3]), _in_training_batch(det, train, train[:3]),
                               rtol=1e-13)


def test_sos_rows_tied_at_their_nearest_distance_beyond_the_perplexity_are_refused() -> None:
    """A 4x4x4 integer grid (no row repeated): inner rows have 6 others at distance 1, face rows 5. With more ties
    than the perplexity their precision search never settles (PyOD takes all 5000 steps per scored row: ADBench
    wbc); the refusal says which perplexity serves it, and with that perplexity the graph is PyOD's."""
    grid = np.array(list(itertools.product(range(4), repeat=3)), dtype=np.float64)
    det = FrozenSOS(SOS()).fit(grid)
    assert np.all(np.isfinite(det.detector_.decision_scores_))
    checks.assert_refused(det, 3, r"32 of 64 training rows have more rows at their nearest distance \(up to 6\) "
                                  r"than perplexity=4\.5: .* Set perplexity to at least 6")
    rows = np.vstack([grid[:2] + 0.25, [[1.5, 1.5, 1.5]]])
    # The reference follows those searches past the steps it keeps (sos_paths) to PyOD's 5000.
    np.testing.assert_allclose(det.decision_function(rows[:1]), _in_training_batch(det, grid, rows[:1]), rtol=1e-13)
    det = FrozenSOS(SOS(perplexity=6.0)).fit(grid)
    sess = checks.session(export.to_onnx(det, 3))
    checks.assert_matches_native(sess, rows, _in_training_batch(det, grid, rows))
