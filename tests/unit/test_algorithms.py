import pytest

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument


def test_defaults_fill_in():
    params = algorithms.get("iforest").resolve_params({"n_estimators": 200.0})
    assert params == {"n_estimators": 200, "max_samples": "auto", "max_features": 1.0, "bootstrap": False,
                      "random_state": None}
    assert isinstance(params["n_estimators"], int)


@pytest.mark.parametrize(
    "algorithm, given, expected",
    [
        ("iforest", {"max_samples": 0.5}, 0.5),
        ("iforest", {"max_samples": 128.0}, 128),
        ("iforest", {"max_samples": 1}, 1.0),  # 1 is "all rows", not one row per tree
        ("iforest", {"max_samples": "auto"}, "auto"),
        ("hbos", {"n_bins": "auto"}, "auto"),
        ("hbos", {"n_bins": 20}, 20),
    ],
)
def test_accepted_values(algorithm, given, expected):
    (name,) = given
    assert algorithms.get(algorithm).resolve_params(given)[name] == expected


@pytest.mark.parametrize(
    "algorithm, given, message",
    [
        ("iforest", {"n_trees": 10}, "params: unknown hyperparameter 'n_trees' for algorithm 'iforest'"),
        ("iforest", {"n_estimators": 0}, r"params.n_estimators: must be an integer in \[1, 10000\]"),
        ("iforest", {"n_estimators": 2.5}, "params.n_estimators: must be an integer"),
        ("iforest", {"n_estimators": "many"}, "params.n_estimators: must be an integer"),
        ("iforest", {"n_estimators": True}, "params.n_estimators: must be an integer"),
        ("iforest", {"max_samples": -1}, "params.max_samples: must be 'auto', an integer"),
        ("iforest", {"max_features": 0.0}, "params.max_features: must be an integer ≥ 1 or a fraction"),
        ("iforest", {"bootstrap": "yes"}, "params.bootstrap: must be true or false"),
        ("iforest", {"random_state": -3}, "params.random_state"),
        ("hbos", {"n_bins": 1}, "params.n_bins: must be an integer ≥ 2 or 'auto'"),
        ("hbos", {"alpha": 1.0}, r"params.alpha: must be in \(0.0, 1.0\)"),
        ("hbos", {"tol": float("nan")}, "params.tol: must be a finite number"),
        ("sklearn.isolation_forest", {"contamination": 0.1}, "unknown hyperparameter 'contamination'"),
    ],
)
def test_rejected_values_name_the_parameter(algorithm, given, message):
    with pytest.raises(InvalidArgument, match=message):
        algorithms.get(algorithm).resolve_params(given)


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(InvalidArgument, match=r"unknown algorithm 'forest'; available: .*hbos, .*iforest"):
        algorithms.get("forest")


def test_every_default_passes_its_own_check():
    for algo in algorithms.ALGORITHMS.values():
        for p in algo.params:
            assert p.check(p.default) == p.default, (algo.name, p.name)


def test_the_detector_catalogue_is_current():
    """docs/detectors.md is what `make detectors-doc` writes from the registry today."""
    from pathlib import Path

    from pynomaly.algorithms import catalog

    path = Path(__file__).resolve().parents[2] / "docs" / "detectors.md"
    assert path.read_text() == catalog.markdown(), "run `make detectors-doc`"


# Not tabular detectors: graphs (pyg_*), time series (ts_*), audio, text/image embeddings; and base classes.
_NOT_TABULAR = ("pyg_", "ts_", "_", "base", "audio_ae", "embedding", "combination", "thresholds", "sklearn_base",
                "gaal_base")


def _pyod_tabular_detectors() -> set[str]:
    import importlib
    import inspect
    import pkgutil
    import warnings

    import pyod.models
    from pyod.models.base import BaseDetector

    found = set()
    for info in pkgutil.iter_modules(pyod.models.__path__):
        if info.name.startswith(_NOT_TABULAR):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(f"pyod.models.{info.name}")
        found |= {f"{c.__module__}.{c.__qualname__}" for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, BaseDetector) and c.__module__ == module.__name__}
    return found


def test_every_pyod_tabular_detector_is_listed_with_its_status():
    """ListAlgorithms lists all of PyOD's tabular detectors: each served (exactly or frozen) or refused saying why;
    at least 35 served."""
    pyod = _pyod_tabular_detectors()
    listed = {a.implementation: a for a in algorithms.ALGORITHMS.values()}
    assert len(pyod) >= 44 and pyod - set(listed) == set()
    served = {cls for cls in pyod if listed[cls].serving in ("exact", "frozen")}
    assert len(served) >= 35, sorted(pyod - served)
    for cls in pyod - served:
        assert listed[cls].serving == "refused" and len(listed[cls].export_note) > 40, cls


def test_the_readme_detector_table_lists_every_algorithm_with_its_status():
    """README's Detectors table names each algorithm once (but `auto`, which has its own section): frozen ones
    marked *f*, refused ones in the "not served" row, and the count of served PyOD detectors it states is true."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Detectors\n"):text.index("### Choosing for you")]
    rows = {m[0]: m[1] for m in re.findall(r"^\| ([^|]+) \| ([^|]+) \|", section, re.M)[1:]}
    named = [(family, name, marked == " *f*") for family, cell in rows.items()
             for name, marked in re.findall(r"`([a-z0-9_.]+)`( \*f\*)?", cell)]
    assert sorted(n for _, n, _ in named) == sorted(set(algorithms.ALGORITHMS) - {"auto"})
    for family, name, frozen in named:
        serving = algorithms.get(name).serving
        assert (family == "not served") == (serving == "refused") and frozen == (serving == "frozen"), name
    pyod = _pyod_tabular_detectors()
    served = sum(a.implementation in pyod and a.serving != "refused" for a in algorithms.ALGORITHMS.values())
    assert f"All {len(pyod)} of PyOD's tabular detectors are listed, and {served} are served" in section
