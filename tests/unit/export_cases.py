"""The table of export cases: every (algorithm configuration x data set) the export tests fit, family by family,
each family with its own data builders (`FAMILIES`).

A new family can live in its own module, `cases_<family>.py` beside this one, defining NAME, FAMILY (a Family),
TABLE (data sets, {config name: Config}, (algorithm, data set) pairs left out) and optionally CONTRIBUTIONS (its
algorithms whose graphs output per-feature terms): it is picked up here, as if written in the tables below.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from pynomaly import algorithms

import export_data as data


@dataclass(frozen=True)
class Family:
    """A family's data builders: a new family of detectors adds one, a new detector in a family reuses it."""

    train: Callable[[Case], np.ndarray]  # case -> training rows
    rows: Callable[[np.ndarray, Case, Any], np.ndarray]  # (training rows, case, fitted detector) -> rows to score
    picked: Callable[[int], np.ndarray]  # which of n rows to score alone too


FAMILIES: dict[str, Family] = {
    "forest": Family(lambda c: data.forest_train(c.dataset), lambda t, c, d: data.forest_rows(t, c.dataset, d),
                     data.forest_picked),
    "ecdf": Family(lambda c: data.ecdf_train(c.dataset), lambda t, c, d: data.ecdf_rows(t),
                   data.sparse(11, range(100, 103))),
    "linear": Family(lambda c: data.pca_train(c.config.features, c.dataset), lambda t, c, d: data.pca_rows(t, d),
                     data.sparse(9, range(140, 147))),
    "neighbors": Family(lambda c: data.neighbors_train(c.dataset), lambda t, c, d: data.neighbors_rows(t),
                        data.sparse(9, range(120, 132))),
    "cluster": Family(lambda c: data.cluster_train(c.dataset), lambda t, c, d: data.cluster_rows(t),
                      data.sparse(7, range(100, 110))),
    "covariance": Family(lambda c: data.covariance_train(c.dataset), lambda t, c, d: data.centred_rows(t),
                         data.sparse(7, range(100, 112))),
    "svm": Family(lambda c: data.svm_train(c.dataset), lambda t, c, d: data.centred_rows(t, 80),
                  data.sparse(7, range(100, 112))),
    "ensemble": Family(lambda c: data.ensemble_train(c.dataset), lambda t, c, d: data.ensemble_rows(t),
                       data.sparse(11, range(60, 70))),
    "deep": Family(lambda c: data.deep_train(c.dataset), lambda t, c, d: data.deep_rows(t),
                   lambda n: np.r_[np.linspace(0, n - 1, 40).astype(int), n - 2, n - 1]),
}

# Graphs that also output per-feature terms summing to the score.
CONTRIBUTIONS = frozenset({"hbos", "ecod", "copod", "pca", "auto_encoder", "vae"})


@dataclass(frozen=True)
class Config:
    algorithm: str
    params: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()  # when not the family's
    factory: Callable[[], Any] | None = None  # when the registry's build is not the configuration
    features: int | None = None  # when the family's data takes a width
    requires: tuple[str, ...] = ()  # optional packages


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    config: Config
    dataset: str

    @property
    def id(self) -> str:
        return f"{self.name}-{self.dataset}"

    @property
    def algorithm(self) -> str:
        return self.config.algorithm

    @property
    def available(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.config.requires)

    def param(self) -> Any:
        """The case as a pytest parameter (its id), skipped without its optional packages."""
        missing = [p for p in self.config.requires if importlib.util.find_spec(p) is None]
        reason = f"{self.algorithm} imports {', '.join(missing)} (not installed)"
        return pytest.param(self.id, id=self.id, marks=[pytest.mark.skipif(bool(missing), reason=reason)])

    def detector(self) -> Any:
        """The unfitted detector."""
        if self.config.factory is not None:
            return self.config.factory()
        algo = algorithms.get(self.algorithm)
        return algo.build(algo.resolve_params(self.config.params), 0.1)


_SUOD_MEMBERS = ["hbos", {"algorithm": "iforest", "params": {"n_estimators": 30}}, "ocsvm", "mcd",
                 {"algorithm": "gmm", "params": {"n_components": 2}}]
_LODA_DATASETS = ("normal", "float32", "integer", "grid")
_COMBO, _SUOD = ("combo",), ("combo", "suod")
_VAE_BN = {"epoch_num": 2, "batch_norm": True, "hidden_activation_name": "softplus",
           "output_activation_name": "sigmoid", "latent_dim": 3, "decoder_neuron_list": [], "logvar_clip": None}
_SVDD_AE = {"epochs": 3, "random_state": 0, "use_ae": True, "preprocessing": False, "hidden_neurons": [5, 3],
            "hidden_activation": "leaky_relu", "output_activation": "tanh", "optimizer": "sgd"}

# family -> (data sets, {config name: config}, (algorithm, data set) pairs left out)
TABLE: dict[str, tuple[tuple[str, ...], dict[str, Config], set[tuple[str, str]]]] = {
    "forest": (("normal", "integer"), {
        "iforest-default": Config("iforest", {"random_state": 0}),
        "iforest-50x64": Config("iforest", {"n_estimators": 50, "max_samples": 64, "random_state": 0}),
        "iforest-maxfeat0.5": Config("iforest", {"max_features": 0.5, "random_state": 0}),
        "iforest-bootstrap": Config("iforest", {"bootstrap": True, "random_state": 0}),
        "iforest-maxsamples0.5": Config("iforest", {"max_samples": 0.5, "random_state": 0}),
        # sklearn's own defaults (contamination "auto"), not the registry's build.
        "skl-isoforest-default": Config("sklearn.isolation_forest", factory=lambda: IsolationForest(random_state=0)),
        "skl-isoforest-maxfeat0.6": Config("sklearn.isolation_forest",
                                           factory=lambda: IsolationForest(max_features=0.6, random_state=0)),
        "hbos-default": Config("hbos"),
        "hbos-5bins": Config("hbos", {"n_bins": 5}),
        "hbos-30bins-alpha0.5-tol0.2": Config("hbos", {"n_bins": 30, "alpha": 0.5, "tol": 0.2}),
        "hbos-auto": Config("hbos", {"n_bins": "auto"}),
    }, set()),
    # normal: float64 values (no float32 equals a training value); float32: float32-exact values (rows can tie);
    # integer: few distinct values (ties everywhere); symmetric: small-integer symmetric columns, where the
    # skewness over training + row is exactly 0 for some rows (ECOD then adds both tails); constant: constant
    # columns and a balanced binary one; skewed: exponential far from the origin.
    "ecdf": (("normal", "float32", "integer", "symmetric", "constant", "skewed"), {
        "ecod": Config("ecod"),
        "copod": Config("copod"),
    }, set()),
    # 4 features x 4 components use the direct (z - c)^2 distances, 10 the MatMul form.
    "linear": (("normal", "float32", "integer", "shifted"), {
        "pca-default-4": Config("pca", features=4),
        "pca-default-10": Config("pca", features=10),
        "pca-unstandardized-10": Config("pca", {"standardization": False}, features=10),
        "pca-unweighted-selected3-10": Config("pca", {"weighted": False, "n_selected_components": 3}, features=10),
        "pca-ncomp5-selected2-10": Config("pca", {"n_components": 5, "n_selected_components": 2}, features=10),
        "pca-ncomp0.8-10": Config("pca", {"n_components": 0.8}, features=10),
        "pca-mle-10": Config("pca", {"n_components": "mle"}, features=10),
        "pca-randomized-ncomp6-10": Config("pca", {"svd_solver": "randomized", "n_components": 6, "random_state": 0},
                                           features=10),
        "pca-arpack-ncomp4-10": Config("pca", {"svd_solver": "arpack", "n_components": 4, "random_state": 0},
                                       features=10),
        "pca-one-feature": Config("pca", features=1),
    }, set()),
    # normal: float64 N(0, 1), 6 features; float32: the same rounded to float32, as rows arrive through the API
    # (INNE's centres then reappear exactly among scored rows); wide: 20 features (where sklearn's "auto" would
    # search by brute force); duplicates: float32 rows repeated more often than n_neighbors; integer: values on a
    # grid, so that many rows sit exactly on INNE's sphere boundaries (LOF is left out: tied neighbours are picked
    # in different orders).
    "neighbors": (("normal", "float32", "wide", "duplicates", "integer"), {
        "knn-largest": Config("knn"),
        "knn-mean-k1": Config("knn", {"method": "mean", "n_neighbors": 1}),
        "knn-median-k6": Config("knn", {"method": "median", "n_neighbors": 6}),
        "knn-median-k7": Config("knn", {"method": "median", "n_neighbors": 7, "metric": "euclidean"}),
        "knn-k100": Config("knn", {"n_neighbors": 100}),  # too few rows per k for group minima: one TopK
        "lof-default": Config("lof"),
        "lof-k5": Config("lof", {"n_neighbors": 5}),
        "skl-lof-default": Config("sklearn.local_outlier_factor"),
        "skl-lof-k35": Config("sklearn.local_outlier_factor", {"n_neighbors": 35}),
        "kde-default": Config("kde"),
        "kde-0.3": Config("kde", {"bandwidth": 0.3}),
        "kde-scott": Config("kde", {"bandwidth": "scott"}),
        "inne-default": Config("inne", {"random_state": 0}),
        "inne-30x16": Config("inne", {"n_estimators": 30, "max_samples": 16, "random_state": 1}),
    }, {("kde", "duplicates"), ("inne", "wide"), ("lof", "integer"), ("sklearn.local_outlier_factor", "integer")}),
    "cluster": (("blobs", "float32", "wide"), {
        "cblof-default": Config("cblof", {"random_state": 0}),
        "cblof-weights": Config("cblof", {"random_state": 0, "use_weights": True}),
        "cblof-k4-alpha0.8-beta2": Config("cblof", {"n_clusters": 4, "alpha": 0.8, "beta": 2, "random_state": 1}),
        "cblof-k12-weights": Config("cblof", {"n_clusters": 12, "use_weights": True, "random_state": 2}),
    }, set()),
    # normal: float64 N(0, 1); float32: the same rounded to float32 (as rows arrive through the API); integer: few
    # distinct values (ties, a near-degenerate covariance); shifted: far from the origin (cancellation in x - μ).
    "covariance": (("normal", "float32", "integer", "shifted"), {
        "mcd-default": Config("mcd", {"random_state": 0}),
        "mcd-centered-sf0.8": Config("mcd", {"assume_centered": True, "support_fraction": 0.8, "random_state": 0}),
        "ee-default": Config("sklearn.elliptic_envelope", {"random_state": 0}),
        "ee-sf0.7": Config("sklearn.elliptic_envelope", {"support_fraction": 0.7, "random_state": 1}),
        "gmm-default": Config("gmm", {"random_state": 0}),
        "gmm-3-full": Config("gmm", {"n_components": 3, "random_state": 0}),
        "gmm-3-tied": Config("gmm", {"n_components": 3, "covariance_type": "tied", "random_state": 0}),
        "gmm-3-diag": Config("gmm", {"n_components": 3, "covariance_type": "diag", "random_state": 0}),
        "gmm-4-spherical": Config("gmm", {"n_components": 4, "covariance_type": "spherical", "random_state": 0}),
    }, set()),
    # normal: float64 N(0, 1); float32: rounded to float32 as the API delivers rows (support vectors then reappear
    # exactly among scored rows); integer: few distinct values; shifted: far from the origin (the RBF graph centres
    # rows before its |x|² - 2 x·sv + |sv|² expansion).
    "svm": (("normal", "float32", "integer", "shifted"), {
        "ocsvm-default": Config("ocsvm"),
        "ocsvm-nu0.1-gamma2": Config("ocsvm", {"nu": 0.1, "gamma": 2.0}),
        "ocsvm-poly": Config("ocsvm", {"kernel": "poly"}),
        "ocsvm-poly4-coef1": Config("ocsvm", {"kernel": "poly", "degree": 4, "coef0": 1.0, "gamma": 0.3}),
        "ocsvm-poly0": Config("ocsvm", {"kernel": "poly", "degree": 0}),
        "ocsvm-sigmoid": Config("ocsvm", {"kernel": "sigmoid", "gamma": 0.1, "coef0": 0.5}),
        "ocsvm-linear": Config("ocsvm", {"kernel": "linear"}),
        "skl-ocsvm-default": Config("sklearn.one_class_svm"),
        "skl-ocsvm-poly5": Config("sklearn.one_class_svm", {"kernel": "poly", "degree": 5, "coef0": 0.5}),
        "sgd-default": Config("sklearn.sgd_one_class_svm", {"random_state": 0}),
        "sgd-avg-nointercept": Config("sklearn.sgd_one_class_svm",
                                      {"average": True, "fit_intercept": False, "random_state": 0}),
        "sgd-invscaling": Config("sklearn.sgd_one_class_svm",
                                 {"learning_rate": "invscaling", "eta0": 0.1, "nu": 0.2, "random_state": 1}),
    }, set()),
    # normal: float64 N(0, 1); float32: rounded to float32, as the API delivers rows (a training row then projects
    # exactly onto LODA's lowest bin edge); LODA also on integer: few distinct values, and grid: values in
    # {-1, -0.5, 0, 0.5, 1}, each row with its negation (projections on interior bin edges).
    "ensemble": (("normal", "float32"), {
        "loda-default": Config("loda", {"random_state": 0}, _LODA_DATASETS),
        "loda-auto": Config("loda", {"n_bins": "auto", "random_state": 1}, _LODA_DATASETS),
        "loda-1bin-5cuts": Config("loda", {"n_bins": 1, "n_random_cuts": 5, "random_state": 0}, _LODA_DATASETS),
        "loda-3bins-300cuts": Config("loda", {"n_bins": 3, "n_random_cuts": 300, "random_state": 2}, _LODA_DATASETS),
        "fb-hbos": Config("feature_bagging", {"base_estimator": "hbos", "random_state": 0}, requires=_COMBO),
        "fb-iforest-max": Config("feature_bagging", {
            "base_estimator": {"algorithm": "iforest", "params": {"n_estimators": 20}}, "combination": "max",
            "max_features": 0.6, "random_state": 0}, requires=_COMBO),
        "fb-mcd-bootstrap": Config("feature_bagging", {"base_estimator": "mcd", "bootstrap_features": True,
                                                       "n_estimators": 4, "random_state": 1}, requires=_COMBO),
        "fb-ocsvm": Config("feature_bagging", {"base_estimator": {"algorithm": "ocsvm", "params": {"nu": 0.2}},
                                               "n_estimators": 3, "random_state": 2}, requires=_COMBO),
        "fb-lof-default": Config("feature_bagging", {"n_estimators": 3, "random_state": 0}, requires=_COMBO),
        "suod-members": Config("suod", {"base_estimators": _SUOD_MEMBERS}, requires=_SUOD),
        "suod-members-max-no-approx": Config("suod", {"base_estimators": _SUOD_MEMBERS, "combination": "maximization",
                                                      "approx_flag_global": False}, requires=_SUOD),
        "suod-default": Config("suod", requires=_SUOD),
        "suod-default-no-approx-discrete": Config("suod", {"approx_flag_global": False, "jl_method": "discrete"},
                                                  requires=_SUOD),
        "auto-default": Config("auto"),  # AutoML: its defaults; ECDFs, a subspace, densities, neighbours
        "auto-mixed": Config("auto", {"candidates": ["hbos", "ecod", "pca", "lof", "gmm", "sklearn.isolation_forest"],
                                      "random_state": 3}),
    }, set()),
    # Fits are a few epochs on a few hundred seeded rows: parity does not need a trained network, only a fitted one.
    "deep": (("normal",), {
        "ae-default": Config("auto_encoder", {"epoch_num": 2}),
        "ae-raw-tanh-nobn": Config("auto_encoder", {"epoch_num": 2, "preprocessing": False, "batch_norm": False,
                                                    "hidden_activation_name": "tanh", "hidden_neuron_list": [8, 4, 2],
                                                    "dropout_rate": 0.0}),
        "ae-elu": Config("auto_encoder", {"epoch_num": 2, "hidden_activation_name": "elu"}, ("constant",)),
        "vae-default": Config("vae", {"epoch_num": 2}),
        "vae-bn-softplus-nodecoder": Config("vae", _VAE_BN),
        "svdd-default": Config("deep_svdd", {"epochs": 3, "random_state": 0}),
        "svdd-use-ae-raw-leaky": Config("deep_svdd", _SVDD_AE),
        "svdd-pyod": Config("deep_svdd", factory=data.pyod_deep_svdd),
    }, set()),
}


def _family_modules() -> None:
    """Add the families of cases_<family>.py modules (see the module docstring)."""
    global CONTRIBUTIONS
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        module = importlib.import_module(path.stem)
        assert module.NAME not in FAMILIES, f"family {module.NAME!r} defined twice"
        FAMILIES[module.NAME] = module.FAMILY
        TABLE[module.NAME] = module.TABLE
        CONTRIBUTIONS = CONTRIBUTIONS | frozenset(getattr(module, "CONTRIBUTIONS", ()))


_family_modules()

CASE_LIST = [
    case
    for family, (datasets, configs, skip) in TABLE.items()
    for name, config in configs.items()
    for case in (Case(family, name, config, d) for d in config.datasets or datasets)
    if (case.algorithm, case.dataset) not in skip
]
CASES: dict[str, Case] = {case.id: case for case in CASE_LIST}


def params(family: str | None = None, *, dataset: str | None = None, names: tuple[str, ...] = ()) -> list[Any]:
    """The cases (of one family, on one data set, of these algorithms) as pytest parameters."""
    return [case.param() for case in CASES.values()
            if family in (None, case.family) and dataset in (None, case.dataset)
            and (not names or case.algorithm in names)]
