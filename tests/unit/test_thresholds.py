"""Threshold methods: the contamination quantile by default, or a pythresh method on the training scores, frozen as
one number whose flagged share is reported; unknown names and methods that flag most rows are refused."""

from __future__ import annotations

import numpy as np
import pytest

from pynomaly import algorithms, thresholds, training
from pynomaly.errors import InvalidArgument

RNG = np.random.default_rng(153)
SCORES = np.r_[RNG.normal(size=2000), RNG.normal(6, 1, size=100)]  # 4.8 % planted far above the rest


@pytest.mark.parametrize("method", sorted(thresholds.METHODS))
def test_each_method_gives_one_number_that_flags_its_own_outliers(method):
    import importlib

    value, share = thresholds.threshold(method, SCORES, 0.1)
    assert share == np.mean(SCORES > value) and 0 <= share <= 0.5
    module, _, cls = thresholds.METHODS[method].rpartition(".")
    outliers = np.asarray(getattr(importlib.import_module(module), cls)().eval(SCORES)).astype(bool)
    if outliers.any() and SCORES[outliers].min() > SCORES[~outliers].max():  # a cut: exactly its rows
        np.testing.assert_array_equal(SCORES > value, outliers)
    else:
        assert share == pytest.approx(outliers.mean(), abs=1 / len(SCORES))


def test_the_default_is_the_contamination_quantile():
    value, share = thresholds.threshold("contamination", SCORES, 0.05)
    assert value == np.percentile(SCORES, 95) and share == pytest.approx(0.05, abs=1e-3)


def test_iqr_is_pythreshs_own_cut():
    value, share = thresholds.threshold("iqr", SCORES, 0.1)
    from pythresh.thresholds.iqr import IQR

    outliers = IQR().eval(SCORES).astype(bool)
    assert value == SCORES[~outliers].max() and share == outliers.mean()


def test_a_method_that_flags_most_rows_is_refused(monkeypatch):
    # pythresh's BOOT, left out of METHODS for this: it flags nearly every row of SCORES.
    monkeypatch.setitem(thresholds.METHODS, "boot", "pythresh.thresholds.boot.BOOT")
    with pytest.raises(ValueError) as e:
        thresholds.threshold("boot", SCORES, 0.1)
    assert str(e.value).startswith("threshold method 'boot' flags ")
    assert str(e.value).endswith("of the training rows; anomalies must be a minority: choose another method, "
                                 "or a contamination")


def test_unknown_method_lists_the_choices():
    assert thresholds.check_method("") == "contamination" and thresholds.check_method("iqr") == "iqr"
    with pytest.raises(InvalidArgument) as e:
        thresholds.check_method("otsu")
    assert str(e.value) == ("threshold_method: unknown method 'otsu'; choose 'contamination' (the default) or a "
                            "pythresh method: " + ", ".join(sorted(thresholds.METHODS)))


def test_training_freezes_the_methods_threshold_and_reports_its_share():
    X = np.vstack([RNG.normal(size=(400, 3)), RNG.uniform(5, 7, size=(12, 3))])
    algo = algorithms.get("hbos")
    spec = training.TrainSpec("m", "hbos", algo.resolve_params({}), 0.1, ["a", "b", "c"], threshold_method="iqr")
    result = training.train(spec, X)
    assert result.manifest["threshold_method"] == "iqr"
    from pynomaly import verification

    scores = verification.scores(verification.session(result.onnx_model), X)
    assert result.manifest["flagged_share"] == np.mean(scores > result.manifest["threshold"]) < 0.1
    assert (scores[-12:] > result.manifest["threshold"]).all()


def test_a_method_that_fails_on_the_scores_says_so():
    with pytest.raises(ValueError) as e:
        thresholds.threshold("zscore", np.r_[np.zeros(10), np.ones(990)], 0.1)
    assert str(e.value).startswith("threshold method 'zscore' failed on the training scores: ValueError: ")
