"""Ensemble graphs (PyOD LODA, FeatureBagging, SUOD): what test_export_contract does not check (LSCP:
test_export_supervised.py).

FeatureBagging and SUOD need PyOD's optional packages `combo` and `suod`; their tests skip without them.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.loda import LODA

from pynomaly import algorithms, verification
from pynomaly.algorithms.ensemble import member
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, to_onnx

import export_checks as checks
import export_data as data

N_FEATURES = data.ENSEMBLE_FEATURES
HAVE_COMBO = importlib.util.find_spec("combo") is not None
HAVE_SUOD = HAVE_COMBO and importlib.util.find_spec("suod") is not None
needs_combo = pytest.mark.skipif(not HAVE_COMBO, reason="FeatureBagging imports the package `combo` (not installed)")
needs_suod = pytest.mark.skipif(not HAVE_SUOD, reason="SUOD imports the packages `suod` and `combo` (not installed)")
_train, _score_rows = data.ensemble_train, data.ensemble_rows


@pytest.mark.parametrize("case_id", checks.params("ensemble", dataset="normal"))
def test_member_scores_stay_in_float64(case_id: str) -> None:
    """Rows are rounded to float32 only where sklearn's trees round them (forest members and approximators);
    member scores and their combination are float64 throughout."""
    model = checks.fitted(case_id).model
    to_float = [n for n in model.graph.node if n.op_type == "Cast"
                and {a.name: a.i for a in n.attribute}["to"] == onnx.TensorProto.FLOAT]
    assert all(n.output[0].endswith(("p32", "_x32")) for n in to_float), [n.output[0] for n in to_float]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_loda_rows_on_the_lowest_bin_edge() -> None:
    """Float32 data: each projection's lowest edge is a training row's own projection, and that row scores alike."""
    algo, det, _, sess, train, _, _ = checks.fitted("loda-default-float32")
    on_edge = np.unique(np.argmin(train @ det.projections_.T, axis=0))
    rows = train[on_edge]
    np.testing.assert_allclose(checks.run(sess, rows), algo.score(det, rows), rtol=1e-12)
    np.testing.assert_allclose(checks.run(sess, rows), det.decision_function(rows), rtol=1e-6)


@pytest.mark.parametrize("case_id", ["loda-default-normal", "loda-auto-normal"])
def test_loda_ties_at_bin_edges_are_decided_as_exact_arithmetic_does(case_id: str) -> None:
    """A projection on an edge, or a few roundings either side of it, falls in the bin below the edge."""
    from pynomaly.algorithms.ensemble import loda_bins

    det = checks.fitted(case_id).det
    for i in range(det.n_random_cuts):
        edges, _ = loda_bins(det, i)
        limits = np.asarray(det.limits_[i])[: len(edges)]
        for steps in (-4, 0, 4):
            p = limits + steps * np.spacing(np.abs(limits) + np.abs(limits).max())
            assert np.array_equal(np.searchsorted(edges, p, side="left"), np.arange(len(edges)))


def test_loda_reference_is_pyods_score_off_the_edges() -> None:
    _, det, _, _, _, rows, reference = checks.fitted("loda-auto-normal")
    np.testing.assert_allclose(reference, det.decision_function(rows), rtol=1e-12)


@needs_suod
def test_suod_projected_members_score_exactly() -> None:
    """Projection paths not reached through the platform's member lists: a projected member scored by its own
    graph on float64 projected rows (MCD) and one replaced by a forest on float32-rounded ones (OCSVM)."""
    from pyod.models.gmm import GMM
    from pyod.models.hbos import HBOS
    from pyod.models.mcd import MCD
    from pyod.models.ocsvm import OCSVM
    from pyod.models.suod import SUOD

    train = _train("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = SUOD(base_estimators=[MCD(random_state=0), OCSVM(), GMM(n_components=2, random_state=0), HBOS()],
                   rp_clf_list=["MCD", "OCSVM"], approx_clf_list=["OCSVM"], bps_flag=False, n_jobs=1).fit(train)
    assert [jl.shape for jl in det.model_.jl_transformers_][:2] == [(N_FEATURES, 3)] * 2
    assert list(np.ravel(det.model_.approx_flags)) == [0, 1, 0, 0]
    sess = ort.InferenceSession(to_onnx(det, N_FEATURES).SerializeToString(), providers=["CPUExecutionProvider"])
    rows = _score_rows(train)
    assert verification.compare(checks.run(sess, rows), det.decision_function(rows))[1] <= 1e-9


@pytest.mark.parametrize(
    ("name", "params"),
    [
        pytest.param("loda", {"random_state": 0}, id="loda"),
        pytest.param("feature_bagging", {"base_estimator": "hbos", "random_state": 0}, id="feature_bagging",
                     marks=needs_combo),
        pytest.param("suod", {"base_estimators": ["hbos", "ocsvm"]}, id="suod", marks=needs_suod),
    ],
)
def test_train_end_to_end(name: str, params: dict[str, Any]) -> None:
    checks.train_end_to_end(name, params, _train("float32"))


def test_member_specs_are_normalised() -> None:
    assert member("hbos") == {"algorithm": "hbos", "params": {}}
    assert member({"algorithm": "iforest", "params": {"n_estimators": 20.0}}) == {
        "algorithm": "iforest", "params": {"n_estimators": 20}}
    params = algorithms.get("suod").resolve_params({"base_estimators": ["hbos", "mcd"]})
    assert params["base_estimators"] == [{"algorithm": "hbos", "params": {}}, {"algorithm": "mcd", "params": {}}]


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("loda", {"n_bins": 0}, "params.n_bins"),
        ("loda", {"n_random_cuts": 0}, "params.n_random_cuts"),
        ("loda", {"n_bins": "sturges"}, "params.n_bins"),
        ("feature_bagging", {"base_estimator": "ecod"}, "params.base_estimator: 'ecod' cannot be a member"),
        ("feature_bagging", {"base_estimator": "suod"}, "params.base_estimator: 'suod' cannot be a member"),
        ("feature_bagging", {"base_estimator": "sklearn.isolation_forest"}, "params.base_estimator"),
        ("feature_bagging", {"base_estimator": {"algorithm": "hbos", "params": {"n_bins": 1}}},
         r"params.base_estimator: member 'hbos': params.n_bins"),
        ("feature_bagging", {"base_estimator": {"algo": "hbos"}}, "params.base_estimator: a member must be"),
        ("feature_bagging", {"combination": "median"}, "params.combination"),
        ("feature_bagging", {"max_features": 0.0}, "params.max_features"),
        ("feature_bagging", {"n_jobs": 2}, "unknown hyperparameter 'n_jobs'"),
        ("suod", {"base_estimators": "hbos"}, "params.base_estimators: must be a list"),
        ("suod", {"base_estimators": ["hbos", "copod"]}, r"params.base_estimators: \[1\]: 'copod' cannot be"),
        ("suod", {"base_estimators": ["hbos", "auto_encoder"]}, r"\[1\]: 'auto_encoder' cannot be a member"),
        ("suod", {"jl_method": "circulant"}, "params.jl_method"),
        ("suod", {"target_dim_frac": 0.0}, "params.target_dim_frac"),
        ("suod", {"combination": "max"}, "params.combination"),
        ("suod", {"bps_flag": True}, "unknown hyperparameter 'bps_flag'"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        algorithms.get(name).resolve_params(params)


@pytest.mark.parametrize(
    ("factory", "n_features"),
    [
        pytest.param(lambda: LODA(), N_FEATURES, id="unfitted-loda"),
        pytest.param(lambda: LODA(random_state=0).fit(_train("normal")), 5, id="wrong-width-loda"),
    ],
)
def test_bad_input_raises_export_error(factory: Any, n_features: int) -> None:
    checks.assert_refused(factory(), n_features)


@needs_combo
def test_member_without_converter_names_the_member() -> None:
    from pyod.models.feature_bagging import FeatureBagging
    from pyod.models.sod import SOD  # refused: no converter

    det = FeatureBagging(SOD(), n_estimators=2, random_state=0).fit(_train("normal")[:60])
    with pytest.raises(ExportError, match=r"member 0 \(SOD\): no ONNX converter"):
        to_onnx(det, N_FEATURES)


def test_registry() -> None:
    assert {"pyod.models.loda.LODA", "pyod.models.feature_bagging.FeatureBagging",
            "pyod.models.suod.SUOD"} <= set(CONVERTERS)
    for name, available in (("loda", True), ("feature_bagging", HAVE_COMBO), ("suod", HAVE_SUOD)):
        algo = algorithms.get(name)
        assert algo.exportable == available and algo.export_note
        assert available or "not installed" in algo.export_note
