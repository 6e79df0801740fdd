"""MAD, KPCA, QMCD and CD graphs, and RGraph's refusal: what test_export_contract does not check."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from pyod.models.kpca import KPCA
from pyod.models.mad import MAD
from pyod.models.qmcd import QMCD
from pyod.models.rgraph import RGraph
from scipy.stats import spearmanr

from pynomaly import algorithms, training
from pynomaly.algorithms._cooks import CD
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, supports, to_onnx

import export_checks as checks

NAMES = ("mad", "kpca", "qmcd", "cd")


def _normal(rows: int, features: int, seed: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, features))


def _fit(name: str, x: np.ndarray, **params: Any) -> Any:
    algo = algorithms.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return algo.build(algo.resolve_params(params), 0.1).fit(x)


@pytest.mark.parametrize("case_id", checks.params("statistical", dataset="normal"))
def test_blocks_of_rows_score_alike_in_any_order(case_id: str) -> None:
    """Rows run in Loop blocks: the same rows in another order and batch size score the same."""
    _, _, _, sess, _, rows, _ = checks.fitted(case_id)
    order = np.random.default_rng(5).permutation(len(rows))[:71]
    checks.assert_same_scores(checks.run(sess, rows[order]), checks.run(sess, rows)[order])


@pytest.mark.parametrize("case_id", checks.params("statistical", dataset="normal"))
def test_huge_rows_stay_finite(case_id: str) -> None:
    f = checks.fitted(case_id)
    checks.assert_huge_rows_finite(f.sess, [3e38, -3e38, 1e6, -1e6], f.train.shape[1])


@pytest.mark.parametrize(
    ("name", "params", "x"),
    [
        ("mad", {}, _normal(300, 1)),
        ("qmcd", {}, _normal(300, 4)),
        ("kpca", {}, _normal(300, 4)),
        ("kpca", {"kernel": "poly", "degree": 2, "n_components": 5}, _normal(300, 4)),
        ("cd", {}, _normal(120, 4)),  # verified one row at a time, each within all the training rows
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any], x: np.ndarray) -> None:
    checks.train_end_to_end(name, params, x)


# --- MAD ---


def test_mad_trains_on_one_feature_only() -> None:
    assert algorithms.get("mad").n_features == 1 and "one feature" in algorithms.get("mad").description
    spec = training.TrainSpec(model_name="m", algorithm="mad", params={}, contamination=0.1,
                              feature_names=["a", "b", "c"])
    with pytest.raises(training.TrainingFailed, match="MAD algorithm is just for univariate data. Got Data with 3"):
        training.train(spec, _normal(50, 3))


def test_mad_of_zero_is_refused_saying_why() -> None:
    x = np.r_[np.full(30, 2.0), _normal(20, 1)[:, 0]][:, None]  # over half the values equal the median
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyOD's division by its MAD of 0
        det = MAD().fit(x)
        assert det.median_diff_ == 0 and det.decision_function(np.array([[3.0]]))[0] > 1e308  # inf as 1.8e308
    checks.assert_refused(det, 1, "median absolute deviation is 0 .*every other value inf")


def test_mad_threshold_is_not_a_served_parameter() -> None:
    with pytest.raises(InvalidArgument, match="unknown hyperparameter 'threshold' for algorithm 'mad'"):
        algorithms.get("mad").resolve_params({"threshold": 3.0})


# --- QMCD ---


def test_qmcd_scores_both_unflipped_and_flipped_fits() -> None:
    """PyOD flips the discrepancy when the training scores are left-skewed or light-tailed (most data: the dense
    rows score high): both ways export. A few duplicated rows in spread data make a right tail: not flipped."""
    rng = np.random.default_rng(1)
    flipped = QMCD().fit(rng.normal(size=(150, 3)))
    plain = QMCD().fit(np.vstack([np.random.default_rng(9).uniform(size=(140, 3)), np.full((10, 3), 0.5)]))
    assert flipped._is_flipped and not plain._is_flipped
    rows = np.vstack([rng.normal(size=(30, 3)), rng.uniform(-5, 5, size=(30, 3))])
    for det in (flipped, plain):
        sess = checks.session(to_onnx(det, 3))
        checks.assert_matches_native(sess, rows, det.decision_function(rows))


def test_qmcd_constant_column() -> None:
    x = _normal(100, 3)
    x[:, 1] = 7.0  # MinMaxScaler: range 0 -> scale 1
    det = QMCD().fit(x)
    rows = np.vstack([_normal(20, 3, seed=6), x[:10]])
    rows[:5, 1] = 7.0
    checks.assert_matches_native(checks.session(to_onnx(det, 3)), rows, det.decision_function(rows))


# --- KPCA ---


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_components": None}, "rounding noise .*n_components=null keeps one per training row"),
        ({"kernel": "linear", "n_components": 6}, "rounding noise .* rank ≤ features"),
        ({"kernel": "cosine", "n_components": None}, "rounding noise"),
    ],
)
def test_kpca_noise_scores_are_refused_saying_what_to_change(params: dict[str, Any], match: str) -> None:
    """All components (PyOD's default) or more than the kernel's rank: each training row is reconstructed exactly
    and PyOD's training scores are rounding noise (ROC-AUC ~0.5 on ADBench): no threshold can come from them."""
    x = _normal(120, 4)
    det = KPCA(**params).fit(x)
    assert np.max(np.abs(det.decision_scores_)) < 1e-9
    checks.assert_refused(det, 4, match)


def test_kpca_with_pyods_default_fails_the_job_saying_what_to_change() -> None:
    spec = training.TrainSpec(model_name="m", algorithm="kpca", params=algorithms.get("kpca").resolve_params(
        {"n_components": None}), contamination=0.1, feature_names=list("abcd"))
    with pytest.raises(training.TrainingFailed, match="export to ONNX failed: cannot export KPCA: PyOD's training "
                       "scores are rounding noise .* keep fewer components"):
        training.train(spec, _normal(80, 4))


def test_kpca_scores_ordered_by_rounding_are_refused() -> None:
    """On a grid, symmetric rows score alike in exact arithmetic and apart by rounding: the order of most training
    scores is rounding noise (as on ADBench pima with the default gamma), so the fit is refused."""
    grid = np.arange(6.0)
    x = 4.0 * np.stack(np.meshgrid(grid, grid, grid), -1).reshape(-1, 3)
    det = KPCA(n_components=10).fit(x)
    gaps = np.diff(np.sort(det.decision_scores_))
    assert np.sum((gaps > 0) & (gaps < 1e-13)) > 50
    checks.assert_refused(det, 3, r"\d+% of PyOD's training scores differ from another row's by less than 1e-12 of "
                          "the terms")


def test_kpca_rounding_level_eigenvalues_are_refused() -> None:
    det = _fit("kpca", _normal(120, 3), kernel="linear", n_components=3)
    det.kpca.eigenvalues_ = det.kpca.eigenvalues_ * np.array([1.0, 1.0, 1e-20])
    checks.assert_refused(det, 3, "rounding-level eigenvalues .* at most 2")


def test_kpca_poly_overflow_is_served_as_the_float64_maximum() -> None:
    """A poly kernel of a huge row with itself overflows float64: PyOD scores it NaN (inf - inf), the graph the
    largest float64."""
    det = _fit("kpca", _normal(100, 3), kernel="poly", degree=5, n_components=4)
    huge = np.full((1, 3), 3e38)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(det.decision_function(huge)[0])
    sess = checks.session(to_onnx(det, 3))
    assert checks.run(sess, huge)[0] == np.finfo(np.float64).max


def test_kpca_defaults_are_pyods_but_for_n_components() -> None:
    given = algorithms.get("kpca").resolve_params({})
    assert given.pop("n_components") == 10 and KPCA().n_components is None
    pyod = KPCA().get_params()
    assert all(given[k] == pyod[k] for k in given), {k: (given[k], pyod[k]) for k in given}


# --- CD (frozen) ---


def test_cd_native_scores_depend_on_the_batch() -> None:
    """Why CD is frozen: PyOD scores a row alone as NaN, and a row's score depends on the batch it is in."""
    det = _fit("cd", _normal(200, 4))
    rows = _normal(30, 4, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(det.decision_function(rows[:1])[0])
        assert abs(det.decision_function(rows)[0] - det.decision_function(rows[:10])[0]) > 1e-3


def test_cd_reference_is_pyod_on_the_training_rows_plus_the_row() -> None:
    """The frozen reference: PyOD's own decision_function of vstack([X_train, row]), last score, the detector
    unchanged. A training row so scored counts twice (its leverage is shared with its copy): its score stays in
    the order of PyOD's training scores, a little lower."""
    _, det, _, sess, train, _, _ = checks.fitted("cd-normal")
    before = det.decision_scores_.copy()
    native = algorithms.get("cd").score(det, train[:60])
    assert native[3] == det.decision_function(np.vstack([train, train[3:4]]))[-1]
    np.testing.assert_array_equal(det.decision_scores_, before)
    assert spearmanr(native, before[:60]).statistic > 0.95
    assert np.mean(native < before[:60]) > 0.9
    checks.assert_matches_native(sess, train[:60], native)


def test_cd_is_pyods_class_keeping_its_training_rows() -> None:
    from pyod.models.cd import CD as PyODCD

    x = _normal(50, 3)
    det = CD().fit(x)
    assert isinstance(det, PyODCD) and np.array_equal(det.X_train_, x)
    np.testing.assert_array_equal(det.decision_scores_, PyODCD().fit(x).decision_scores_)
    assert supports(CD) and not supports(PyODCD)


def test_cd_constant_column_scores_like_pyod() -> None:
    """A constant training column regresses exactly (residuals 0): PyOD's distances are NaN for it, and left out."""
    x = _normal(150, 4)
    x[:, 2] = 0.5
    det = CD().fit(x)
    rows = np.vstack([_normal(20, 4, seed=8), x[:10]])
    sess = checks.session(to_onnx(det, 4))
    checks.assert_matches_native(sess, rows, algorithms.get("cd").score(det, rows))


# --- RGraph (refused) ---


def test_rgraph_is_refused_because_its_scores_depend_on_the_block() -> None:
    algo = algorithms.get("rgraph")
    assert not algo.exportable and algo.serving == "refused"
    assert "blocksize_test_data" in algo.export_note and "lasso" in algo.export_note
    x = _normal(40, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = RGraph(n_nonzero=5, support_size=20, verbose=False).fit(x)
        rows = _normal(6, 3, seed=9)
        alone = np.array([det.decision_function(rows[i : i + 1])[0] for i in range(len(rows))])
        in_block = det.decision_function(rows)
    assert np.max(np.abs(alone - in_block)) > 1e-3 * np.max(np.abs(alone))
    assert "pyod.models.rgraph.RGraph" not in CONVERTERS


# --- parameters and refusals ---


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("kpca", {"kernel": "precomputed"}, r"params.kernel: must be one of rbf, poly, sigmoid, linear, cosine: "
                                            r"'precomputed' takes a kernel matrix"),
        ("kpca", {"kernel": "laplacian"}, r"params.kernel: must be one of \"rbf\", \"poly\""),
        ("kpca", {"degree": 2.5}, r"params.degree: must be an integer ≥ 1 \(a fractional degree makes"),
        ("kpca", {"degree": 0}, r"params.degree: must be an integer ≥ 1"),
        ("kpca", {"gamma": 0}, r"params.gamma: must be in \(0.0, inf\]"),
        ("kpca", {"n_components": 0}, r"params.n_components: must be an integer in \[1, ∞\]"),
        ("kpca", {"subset_size": "half"}, r"params.subset_size: must be a fraction in \(0, 1\] or an integer count "
                                          r"≥ 2"),
        ("kpca", {"subset_size": -1}, r"params.subset_size: must be an integer in \[2, ∞\], got number -1"),
        ("kpca", {"eigen_solver": "lobpcg"}, r"params.eigen_solver: must be one of \"auto\", \"dense\""),
        ("kpca", {"tol": -1}, r"params.tol: must be in \[0.0, inf\]"),
        ("kpca", {"n_jobs": 2}, "unknown hyperparameter 'n_jobs' for algorithm 'kpca'"),
        ("kpca", {"kernel_params": {}}, "unknown hyperparameter 'kernel_params'"),
        ("rgraph", {"algorithm": "omp"}, r"params.algorithm: must be one of \"lasso_lars\", \"lasso_cd\""),
        ("rgraph", {"tau": 1.5}, r"params.tau: must be in \[0.0, 1.0\]"),
        ("rgraph", {"verbose": True}, "unknown hyperparameter 'verbose'"),
        ("qmcd", {"contamination": 0.1}, "unknown hyperparameter 'contamination' for algorithm 'qmcd'; known: none"),
        ("cd", {"model": "ridge"}, "unknown hyperparameter 'model' for algorithm 'cd'; known: none"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        algorithms.get(name).resolve_params(params)


@pytest.mark.parametrize(
    ("factory", "n_features", "match"),
    [
        pytest.param(MAD, 1, "MAD", id="mad-unfitted"),
        pytest.param(lambda: MAD().fit(_normal(30, 1)), 2, "n_features=2 but MAD was fitted on 1", id="mad-width"),
        pytest.param(QMCD, 3, "QMCD", id="qmcd-unfitted"),
        pytest.param(lambda: QMCD().fit(_normal(30, 3)), 4, "n_features=4 but QMCD", id="qmcd-width"),
        pytest.param(KPCA, 3, "KPCA", id="kpca-unfitted"),
        pytest.param(lambda: KPCA(n_components=3).fit(_normal(30, 3)), 2, "n_features=2 but KPCA", id="kpca-width"),
        pytest.param(CD, 3, "CD", id="cd-unfitted"),
        pytest.param(lambda: CD().fit(_normal(30, 3)), 4, "n_features=4 but CD", id="cd-width"),
        pytest.param(lambda: CD().fit(_normal(3, 3)), 3, "more training rows than features, got 3 rows of 3",
                     id="cd-few-rows"),
    ],
)
def test_bad_input_raises_export_error(factory: Any, n_features: int, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checks.assert_refused(factory(), n_features, match)


def test_registry() -> None:
    checks.assert_registered({"pyod.models.mad.MAD", "pyod.models.qmcd.QMCD", "pyod.models.kpca.KPCA",
                              "pynomaly.algorithms._cooks.CD"}, (MAD, QMCD, KPCA, CD), NAMES)
    assert algorithms.get("cd").serving == "frozen" and algorithms.get("cd").slow_reference
    assert {algorithms.get(n).serving for n in ("mad", "kpca", "qmcd")} == {"exact"}
    assert algorithms.get("kpca").max_training_rows and algorithms.get("qmcd").max_training_rows
