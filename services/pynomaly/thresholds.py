"""Where a model's threshold comes from: the contamination quantile of its training scores (the default), or a
label-free method of pythresh evaluated on those scores, frozen into the manifest as one number.

pythresh labels each training score inlier or outlier; the threshold served is the highest inlier score (Detect's
rule is score > threshold, so exactly the rows it labelled outliers are flagged), or, where a method's labels are
not a cut of the sorted scores, the quantile that flags the same share. The card reports the share of training rows
flagged. METHODS is the subset of pythresh's methods that ran in seconds on 5,250 planted scores and flagged a
minority there (true share 4.8 %: IQR 4.7 %, OCSVM 3.8 %, MIXMOD 4.5 %, ZSCORE 9.0 %); BOOT, WIND and MCST flagged
nearly every row, GAMGMM took minutes, and CLUST and CPD need packages not installed.
"""

from __future__ import annotations

import importlib

import numpy as np

from pynomaly.errors import InvalidArgument

CONTAMINATION = "contamination"
METHODS = {name: f"pythresh.thresholds.{name}.{name.upper()}" for name in (
    "chau", "dsn", "fgd", "filter", "gesd", "hist", "iqr", "karch", "mad", "mixmod", "mtt", "ocsvm", "qmcd", "regr",
    "yj", "zscore")}
# Methods see at most this many training scores (a seeded sample): some are quadratic in their input.
MAX_SCORES = 50_000


def check_method(name: str) -> str:
    """The method's name ("" means contamination); InvalidArgument listing the choices otherwise."""
    if name in ("", CONTAMINATION) or name in METHODS:
        return name or CONTAMINATION
    raise InvalidArgument(f"threshold_method: unknown method {name!r}; choose {CONTAMINATION!r} (the default) or a "
                          f"pythresh method: {', '.join(sorted(METHODS))}", reason="INVALID_PARAMETER",
                          field="threshold_method")


def threshold(method: str, scores: np.ndarray, contamination: float) -> tuple[float, float]:
    """(threshold, share of `scores` above it). ValueError, saying why, when a method fails or flags more than
    half of them."""
    if method == CONTAMINATION:
        value = float(np.percentile(scores, 100 * (1 - contamination)))
        return value, float(np.mean(scores > value))
    module, _, cls = METHODS[method].rpartition(".")
    sample = scores
    if len(scores) > MAX_SCORES:
        sample = np.random.default_rng(0).choice(scores, size=MAX_SCORES, replace=False)
    try:
        outliers = np.asarray(getattr(importlib.import_module(module), cls)().eval(sample)).astype(bool)
    except Exception as e:  # pythresh's methods fail in their own ways on degenerate scores
        raise ValueError(f"threshold method {method!r} failed on the training scores: {type(e).__name__}: {e}") from e
    if outliers.all() or not outliers.any():
        value = float(sample.max()) if not outliers.any() else float(sample.min())
    elif sample[outliers].min() > sample[~outliers].max():
        value = float(sample[~outliers].max())
    else:  # not a cut of the sorted scores: the quantile that flags as many
        value = float(np.percentile(sample, 100 * (1 - outliers.mean())))
    share = float(np.mean(scores > value))
    if share > 0.5:
        raise ValueError(f"threshold method {method!r} flags {share:.1%} of the training rows; anomalies must be a "
                         "minority: choose another method, or a contamination")
    return value, share
