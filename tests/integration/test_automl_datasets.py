"""Algorithm "auto" with its defaults on the 12 ADBench sets: trained through the platform's own path, every row
scored by the served graph, its ROC-AUC at or above the median of the six single default detectors on every set,
and its mean above every single detector's mean. The single detectors' figures are the datasets README's protocol A
(reference_roc_auc.csv: fitted on all rows, PyOD defaults), which `make parity` measures again side by side."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import parity
from benchmarks.automl import PUBLISHED
from pynomaly import algorithms, training, verification

from conftest import DATASETS, load_dataset

pytestmark = pytest.mark.datasets


@pytest.fixture(scope="module")
def singles() -> dict[str, dict[str, float]]:
    """dataset -> single detector -> ROC-AUC (protocol A)."""
    load_dataset(parity.DATASETS[0])  # skips (or fails under PYNOMALY_REQUIRE_DATASETS=1) without the directory
    with open(DATASETS / "reference_roc_auc.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_name = {v: k for k, v in PUBLISHED.items()}
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r["dataset"], {})[by_name[r["detector"]]] = float(r["auc_fit_all_raw"])
    return out


@pytest.fixture(scope="module")
def auto_auc() -> dict[str, float]:
    return {}


@pytest.mark.parametrize("dataset", parity.DATASETS)
def test_auto_is_at_least_the_median_single_detector(dataset, singles, auto_auc):
    X, y = load_dataset(dataset)
    algo = algorithms.get("auto")
    spec = training.TrainSpec("auto", "auto", algo.resolve_params({}), 0.1, [f"f{i}" for i in range(X.shape[1])])
    result = training.train(spec, X)
    served = verification.scores(verification.session(result.onnx_model), X)
    auc = auto_auc[dataset] = float(roc_auc_score(y, served))
    median = float(np.median(list(singles[dataset].values())))
    kept = [c["algorithm"] for c in result.manifest["candidates"] if c["outcome"] == "kept"]
    assert auc >= median, f"{dataset}: auto {auc:.4f} < median single {median:.4f} (members {kept})"


def test_auto_mean_is_above_every_single_detectors_mean(singles, auto_auc):
    if len(auto_auc) != len(parity.DATASETS):
        pytest.fail(f"needs auto's ROC-AUC on all {len(parity.DATASETS)} sets first (got {sorted(auto_auc)}): "
                    "run the whole module")
    mean_auto = float(np.mean(list(auto_auc.values())))
    means = {d: float(np.mean([singles[s][d] for s in parity.DATASETS])) for d in PUBLISHED}
    best = max(means, key=means.__getitem__)
    assert mean_auto > means[best], f"auto's mean {mean_auto:.4f} <= {best}'s {means[best]:.4f}"
