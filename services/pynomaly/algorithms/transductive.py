"""Detectors whose PyOD scores are relative to the scored batch: ROD, SOS, LOCI and LMDD, served frozen.

PyOD's decision_function of these ignores the training data in part or altogether, so a row's native score
depends on the other rows of the request, and a row alone has no batch to be relative to. The frozen meaning
(pynomaly.algorithms.in_batch): a row scores as PyOD scores it within the training batch,
decision_function(vstack([X_train, row]))[-1]. The detectors keep their training rows for that; the graphs compute
it row by row. A training row scored so is a duplicate of itself in that batch: its score is not its
decision_scores_ from fit (where it was in the batch once).
"""

from __future__ import annotations

from typing import Any

from pynomaly.algorithms._spec import Algorithm, Param, integer, number, pyod_score

_FROZEN = (
    "Frozen: PyOD scores a row relative to the batch it comes in{how}; served, a row scores as PyOD scores it "
    "within the training batch, decision_function(vstack([X_train, row]))[-1], computed by the graph one row at "
    "a time{cost}. "
)
_FINITE = 1e6  # largest value accepted for the perplexity, eps and k: checks need a finite bound


def _build_rod(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.rod import ROD

    from pynomaly.algorithms.in_batch import FrozenROD

    return FrozenROD(ROD(contamination=contamination, parallel_execution=False, **p))


def _build_sos(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.sos import SOS

    from pynomaly.algorithms.in_batch import FrozenSOS

    return FrozenSOS(SOS(contamination=contamination, **p))


def _build_loci(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.loci import LOCI

    from pynomaly.algorithms.in_batch import FrozenLOCI

    return FrozenLOCI(LOCI(contamination=contamination, **p))


def _build_lmdd(p: dict[str, Any], contamination: float) -> Any:
    import numpy as np
    from pyod.models.lmdd import LMDD

    from pynomaly.algorithms.in_batch_lmdd import FrozenLMDD

    seed = p["random_state"]
    if seed is None:  # PyOD would read numpy's global random state at every call: the graph needs one order
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return FrozenLMDD(LMDD(contamination=contamination, n_iter=p["n_iter"], dis_measure=p["dis_measure"],
                           random_state=seed))


def _aad(v: Any) -> Any:
    if v != "aad":
        raise ValueError("must be 'aad': only the mean absolute deviation is exported ('var' and 'iqr' sum and "
                         "sort every prefix in numpy's orders, which decide LMDD's ties)")
    return v


def _euclidean(v: Any) -> Any:
    if v != "euclidean":
        raise ValueError("must be 'euclidean': only Euclidean distance is exported (PyOD's other metrics go "
                         "through scipy's pdist)")
    return v


SOS_MAX_ROWS = 500
LOCI_MAX_ROWS = 300
LMDD_MAX_ROWS = 100

ALGORITHMS = [
    Algorithm(
        name="rod",
        implementation="pyod.models.rod.ROD",
        description="Rotation-based Outlier Detection: per 3-D subspace, a rotation cost about the geometric "
        "median; score = its median absolute deviation (sigmoid-averaged over subspaces above 3 features). "
        "Parameter-free.",
        params=(),
        build=_build_rod,
        score=pyod_score,
        frozen=True,
        export_limit="three features or fewer with at least half the training rows at the median rotation cost "
        "(duplicated rows): PyOD divides by a MAD of 0 without nan_to_num and scores such rows NaN; the model is "
        "refused.",
        slow_reference=True,
        export_note=_FROZEN.format(how=" (the MAD of the batch's rotation costs)", cost="") + (
            "What fit froze is kept (RobustScaler, per subspace the geometric median, cost median and angle "
            "scalers), and per subspace the two or three training cost deviations the median over the training "
            "rows plus the row can take. All C(F, 3) subspaces at once; arccos in float64 via float32 Asin and "
            "Newton steps; exact to float64 rounding (~1e-15). PyOD's fit itself grows as C(F, 3): 150 s for "
            "1000 rows x 30 features."),
    ),
    Algorithm(
        name="sos",
        implementation="pyod.models.sos.SOS",
        description="Stochastic Outlier Selection: affinities with a per-row Gaussian precision fitted to a "
        "perplexity; score = probability that no other row binds to the row.",
        params=(
            Param("perplexity", "float", 4.5, "Effective number of neighbours, > 0.",
                  number(0.0, _FINITE, lo_open=True)),
            Param("metric", "'euclidean'", "euclidean", "Distance; only Euclidean is exported.", _euclidean),
            Param("eps", "float", 1e-5, "Tolerance of the precision search, > 0.", number(0.0, _FINITE, lo_open=True)),
        ),
        build=_build_sos,
        score=pyod_score,
        frozen=True,
        export_limit="data with a row repeated more often than the perplexity (ADBench breastw): PyOD's precision "
        "search for it diverges (beta doubles to inf) and PyOD scores every row NaN; the model is refused. Rows "
        "with more rows tied at their nearest distance than the perplexity (integer-valued data, ADBench wbc): "
        "their search never settles, PyOD takes all 5000 steps per scored row; refused, naming the perplexity "
        "that serves it.",
        slow_reference=True,
        max_training_rows=SOS_MAX_ROWS,
        export_note=_FROZEN.format(how=" (affinities among the batch's rows alone)", cost=": each training row's "
                                   "precision searched again with the row among its neighbours") + (
            "Distances as PyOD's GEMM expansion, PyOD's bisection steps (a training row's sums taken from its "
            "own search while the row does not change its steps, else recomputed), the product of 1 - binding "
            "probabilities; exact to float64 rounding. Where PyOD's search for the row's own precision underflows "
            "(rows far from all data) PyOD scores NaN (0 / 0 for the row binding to itself, 0 by definition): "
            "served, that factor is 1. Quadratic per scored row (500 training rows: ~30 ms a row): training is "
            f"limited to {SOS_MAX_ROWS} rows."),
    ),
    Algorithm(
        name="loci",
        implementation="pyod.models.loci.LOCI",
        description="Local Correlation Integral: multi-granularity deviation factor (MDEF) of a row's "
        "neighbourhood counts over a range of radii; score = MDEF / sigma_MDEF.",
        params=(
            Param("alpha", "float", 0.5, "Counting neighbourhood as a fraction of the sampling radius, in (0, 1].",
                  number(0.0, 1.0, lo_open=True)),
            Param("k", "float", 3, "Stop the radius scan once MDEF exceeds k sigma_MDEF, >= 0.",
                  number(0.0, _FINITE)),
        ),
        build=_build_loci,
        score=pyod_score,
        frozen=True,
        export_limit="duplicated rows can make PyOD's MDEF / sigma_MDEF 0 / 0 for a training row (a NaN score); "
        "the model is refused.",
        slow_reference=True,
        max_training_rows=LOCI_MAX_ROWS,
        export_note=_FROZEN.format(how=" (the batch's own distance matrix)", cost=": PyOD's radius scan for "
                                   "that row") + (
            "Distances as scipy's pdist, the training rows' neighbourhood counts by binary search in their sorted "
            "distances (constants), every critical radius at once and the radius PyOD's loop stops at; counts "
            "exact, scores to float64 rounding. PyOD's fit is cubic in the rows (46 s for 300 rows): training is "
            f"limited to {LOCI_MAX_ROWS} rows."),
    ),
    Algorithm(
        name="lmdd",
        implementation="pyod.models.lmdd.LMDD",
        description="Linear Method for Deviation-based Detection: over seeded random orders of the rows, how much "
        "a row raises the dissimilarity (mean absolute deviation) of the rows before it; score = that smoothing "
        "factor times the cardinality.",
        params=(
            Param("n_iter", "int", 50, "Random orders of the rows, >= 1.", integer(1, 10_000)),
            Param("dis_measure", "'aad'", "aad", "Dissimilarity; only 'aad' (mean absolute deviation) is exported.",
                  _aad),
            Param("random_state", "int | null", None, "Seed of the orders; null draws a fresh one (fixed in the "
                  "model).", integer(0, 2**32 - 1, none_ok=True)),
        ),
        build=_build_lmdd,
        score=pyod_score,
        frozen=True,
        slow_reference=True,
        max_training_rows=LMDD_MAX_ROWS,
        export_note=_FROZEN.format(how=" (random orders of the batch itself)", cost=": PyOD's whole pass over the "
                                   "n + 1 rows, the orders fixed by the seed") + (
            "Every prefix's mean absolute deviation with numba's sequential sums (CumSum), bit for bit PyOD's, so "
            "ties between prefixes fall as in PyOD. Each scored row costs what PyOD's scoring of the whole "
            "training batch costs (n_iter x ~3 (n + 1)^2 x features values; 100 rows x 6 features, 50 orders: ~0.1 "
            f"s a row): training is limited to {LMDD_MAX_ROWS} rows."),
    ),
]
