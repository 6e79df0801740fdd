"""Parity of the ensemble graphs (PyOD LODA, FeatureBagging, SUOD) with the native detectors; LSCP is not exported.

FeatureBagging and SUOD need PyOD's optional packages `combo` and `suod`; their tests skip without them.
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pyod.models.loda import LODA

from pynomaly import algorithms, training, verification
from pynomaly.algorithms.ensemble import member
from pynomaly.errors import InvalidArgument
from pynomaly.export import CONVERTERS, ExportError, supports, to_onnx

import export_checks as checks

N_FEATURES = 6
HAVE_COMBO = importlib.util.find_spec("combo") is not None
HAVE_SUOD = HAVE_COMBO and importlib.util.find_spec("suod") is not None
needs_combo = pytest.mark.skipif(not HAVE_COMBO, reason="FeatureBagging imports the package `combo` (not installed)")
needs_suod = pytest.mark.skipif(not HAVE_SUOD, reason="SUOD imports the packages `suod` and `combo` (not installed)")

_MEMBERS = ["hbos", {"algorithm": "iforest", "params": {"n_estimators": 30}}, "ocsvm", "mcd",
            {"algorithm": "gmm", "params": {"n_components": 2}}]

# id -> (algorithm name, params, marks)
CONFIGS: dict[str, tuple[str, dict[str, Any], list[Any]]] = {
    "loda-default": ("loda", {"random_state": 0}, []),
    "loda-auto": ("loda", {"n_bins": "auto", "random_state": 1}, []),
    "loda-1bin-5cuts": ("loda", {"n_bins": 1, "n_random_cuts": 5, "random_state": 0}, []),
    "loda-3bins-300cuts": ("loda", {"n_bins": 3, "n_random_cuts": 300, "random_state": 2}, []),
    "fb-hbos": ("feature_bagging", {"base_estimator": "hbos", "random_state": 0}, [needs_combo]),
    "fb-iforest-max": ("feature_bagging", {"base_estimator": {"algorithm": "iforest", "params": {"n_estimators": 20}},
                                           "combination": "max", "max_features": 0.6, "random_state": 0},
                       [needs_combo]),
    "fb-mcd-bootstrap": ("feature_bagging", {"base_estimator": "mcd", "bootstrap_features": True, "n_estimators": 4,
                                             "random_state": 1}, [needs_combo]),
    "fb-ocsvm": ("feature_bagging", {"base_estimator": {"algorithm": "ocsvm", "params": {"nu": 0.2}},
                                         "n_estimators": 3, "random_state": 2}, [needs_combo]),
    "fb-lof-default": ("feature_bagging", {"n_estimators": 3, "random_state": 0}, [needs_combo]),
    "suod-members": ("suod", {"base_estimators": _MEMBERS}, [needs_suod]),
    "suod-members-max-no-approx": ("suod", {"base_estimators": _MEMBERS, "combination": "maximization",
                                            "approx_flag_global": False}, [needs_suod]),
    "suod-default": ("suod", {}, [needs_suod]),
    "suod-default-no-approx-discrete": ("suod", {"approx_flag_global": False, "jl_method": "discrete"}, [needs_suod]),
}
# normal: float64 N(0, 1); float32: rounded to float32, as the API delivers rows (a training row then projects
# exactly onto LODA's lowest bin edge); LODA also on integer: few distinct values, and grid: values in
# {-1, -0.5, 0, 0.5, 1}, each row with its negation (projections on interior bin edges).
DATASETS = ["normal", "float32"]
CASES = [
    pytest.param(c, d, id=f"{c}-{d}", marks=CONFIGS[c][2])
    for c in CONFIGS
    for d in DATASETS + (["integer", "grid"] if c.startswith("loda") else [])
]


def _train(dataset: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, N_FEATURES))
    if dataset == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dataset == "integer":
        return np.round(2 * x)
    if dataset == "grid":
        grid = np.clip(np.round(2 * x[:120]) / 2, -1, 1)
        return np.vstack([grid, -grid])
    return x


def _score_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    fresh = rng.normal(size=(60, N_FEATURES))
    far = np.vstack([rng.uniform(-1e3, 1e3, size=(8, N_FEATURES)), np.full((1, N_FEATURES), 1e3),
                     np.full((1, N_FEATURES), -1e3)])
    lo, hi = train.min(axis=0), train.max(axis=0)
    beyond = rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, size=(40, N_FEATURES))
    return np.vstack([fresh, far, beyond, train]).astype(np.float32)


def _fit(name: str, params: dict[str, Any], train: np.ndarray) -> tuple[Any, Any]:
    algo = algorithms.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # suod warns about members it has no cost code for
        return algo, algo.build(algo.resolve_params(params), 0.1).fit(train)


@cache
def _case(config: str, dataset: str) -> tuple[Any, Any, onnx.ModelProto, ort.InferenceSession, np.ndarray, np.ndarray]:
    name, params, _ = CONFIGS[config]
    train = _train(dataset)
    algo, det = _fit(name, params, train)
    model = to_onnx(det, N_FEATURES)
    sess = checks.session(model)
    x32 = _score_rows(train)
    return algo, det, model, sess, x32, algo.score(det, x32.astype(np.float64))


_run = checks.run


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_onnx_matches_native(config: str, dataset: str) -> None:
    _, _, _, sess, x32, native = _case(config, dataset)
    got = _run(sess, x32)
    assert got.shape == (len(x32),) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    assert verification.compare(got, native)[1] <= 1e-5


@pytest.mark.parametrize(("config", "dataset"), CASES)
def test_row_alone_equals_row_in_batch(config: str, dataset: str) -> None:
    _, _, _, sess, x32, _ = _case(config, dataset)
    batch = _run(sess, x32)
    picked = np.r_[np.arange(0, len(x32), 11), np.arange(60, 70)]  # sparse, plus every far row
    alone = np.array([_run(sess, x32[i : i + 1])[0] for i in picked])
    np.testing.assert_array_equal(alone, batch[picked])


@pytest.mark.parametrize("config", [pytest.param(c, marks=m) for c, (_, _, m) in CONFIGS.items()])
def test_graph_contract(config: str) -> None:
    _, _, model, sess, _, _ = _case(config, "normal")
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", N_FEATURES]
    assert out.name == "anomaly_score" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N"]
    assert _run(sess, np.zeros((0, N_FEATURES), np.float32)).shape == (0,)
    # Member scores stay in float64: the only cast to float is the output's.
    to_float = [n for n in model.graph.node if n.op_type == "Cast"
                and {a.name: a.i for a in n.attribute}["to"] == onnx.TensorProto.FLOAT]
    assert [n.output[0] for n in to_float if not n.output[0].endswith("p32")] == ["anomaly_score"]


def test_loda_rows_on_the_lowest_bin_edge() -> None:
    """Float32 data: each projection's lowest edge is a training row's own projection, and that row scores alike."""
    algo, det, _, sess, _, _ = _case("loda-default", "float32")
    train = _train("float32")
    on_edge = np.unique(np.argmin(train @ det.projections_.T, axis=0))
    x32 = train[on_edge].astype(np.float32)
    np.testing.assert_allclose(_run(sess, x32), algo.score(det, x32.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(_run(sess, x32), det.decision_function(x32.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("config", ["loda-default", "loda-auto"])
def test_loda_ties_at_bin_edges_are_decided_as_exact_arithmetic_does(config: str) -> None:
    """A projection on an edge, or a few roundings either side of it, falls in the bin below the edge."""
    from pynomaly.algorithms.ensemble import loda_bins

    _, det, _, _, _, _ = _case(config, "normal")
    for i in range(det.n_random_cuts):
        edges, _ = loda_bins(det, i)
        limits = np.asarray(det.limits_[i])[: len(edges)]
        for steps in (-4, 0, 4):
            p = limits + steps * np.spacing(np.abs(limits) + np.abs(limits).max())
            assert np.array_equal(np.searchsorted(edges, p, side="left"), np.arange(len(edges)))


def test_loda_reference_is_pyods_score_off_the_edges() -> None:
    algo, det, _, _, x32, reference = _case("loda-auto", "normal")
    np.testing.assert_allclose(reference, det.decision_function(x32.astype(np.float64)), rtol=1e-12)


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
    x32 = _score_rows(train)
    assert verification.compare(_run(sess, x32), det.decision_function(x32.astype(np.float64)))[1] <= 1e-5


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
    x = _train("float32")
    algo = algorithms.get(name)
    spec = training.TrainSpec(model_name="m", algorithm=name, params=algo.resolve_params(params),
                              contamination=0.05, feature_names=[f"f{i}" for i in range(N_FEATURES)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = training.train(spec, x)
    assert result.manifest["export_check"]["max_rel_error"] <= 1e-5
    sess = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"X": x[:3].astype(np.float32)})[0].shape == (3,)


def test_lscp_is_listed_but_not_exportable() -> None:
    from pyod.models.lscp import LSCP

    algo = algorithms.get("lscp")
    assert not algo.exportable and "call to call" in algo.export_note
    assert not supports(LSCP)
    # The reason, shown: the same rows score differently on a second call.
    train = _train("normal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = algo.build(algo.resolve_params({"detector_list": ["hbos", "iforest", "mcd"], "random_state": 0}),
                         0.1).fit(train)
        rows = _score_rows(train)[:40].astype(np.float64)
        first, second = algo.score(det, rows), algo.score(det, rows)
    assert not np.allclose(first, second)
    with pytest.raises(ExportError, match="LSCP"):
        to_onnx(det, N_FEATURES)


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
        ("lscp", {"detector_list": ["hbos"]}, "params.detector_list: must be a list of at least 2"),
        ("lscp", {"local_region_size": 1}, "params.local_region_size"),
        ("lscp", {"local_max_features": 0.2}, "params.local_max_features"),
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
    with pytest.raises(ExportError, match="LODA"):
        to_onnx(factory(), n_features)


@needs_combo
def test_member_without_converter_names_the_member() -> None:
    from pyod.models.abod import ABOD
    from pyod.models.feature_bagging import FeatureBagging

    det = FeatureBagging(ABOD(), n_estimators=2, random_state=0).fit(_train("normal")[:60])
    with pytest.raises(ExportError, match=r"member 0 \(ABOD\): no ONNX converter"):
        to_onnx(det, N_FEATURES)


def test_registry() -> None:
    assert {"pyod.models.loda.LODA", "pyod.models.feature_bagging.FeatureBagging",
            "pyod.models.suod.SUOD"} <= set(CONVERTERS)
    assert "pyod.models.lscp.LSCP" not in CONVERTERS
    for name, available in (("loda", True), ("feature_bagging", HAVE_COMBO), ("suod", HAVE_SUOD)):
        algo = algorithms.get(name)
        assert algo.exportable == available and algo.export_note
        assert available or "not installed" in algo.export_note
