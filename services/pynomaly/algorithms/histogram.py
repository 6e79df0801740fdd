"""Histogram-based detectors: PyOD's HBOS."""

from __future__ import annotations

from typing import Any

from pynomaly.algorithms._spec import Algorithm, Param, either, integer, literal, number, pyod_score


def _build_hbos(p: dict[str, Any], contamination: float) -> Any:
    from pyod.models.hbos import HBOS

    return HBOS(contamination=contamination, **p)


ALGORITHMS = [
    Algorithm(
        name="hbos",
        implementation="pyod.models.hbos.HBOS",
        description="Histogram-based Outlier Score: sum over features of -log2 of the bin density.",
        params=(
            Param("n_bins", "int | 'auto'", 10, "Bins per feature, ≥ 2, or 'auto' (Birgé-Rozenblac, per feature).",
                  either(literal("auto"), integer(2, 10_000), what="an integer ≥ 2 or 'auto'")),
            Param("alpha", "float", 0.1, "Regulariser added to bin densities, in (0, 1).",
                  number(0.0, 1.0, lo_open=True, hi_open=True)),
            Param("tol", "float", 0.5, "How far outside the bins (in bin widths) a value still takes the edge "
                  "bin's density, in (0, 1).", number(0.0, 1.0, lo_open=True, hi_open=True)),
        ),
        build=_build_hbos,
        score=pyod_score,
        export_note="Per-feature bin search as one TreeEnsemble (float64), PyOD's tolerance rule; exact to float32.",
    ),
]
