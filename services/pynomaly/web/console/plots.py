"""Vega-Lite specifications of the console's plots (drawn in the browser by vega-embed), and the numbers behind
them, which the pages also show as tables: every plot has its text alternative."""

from __future__ import annotations

from typing import Any

import numpy as np

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
WIDTH = 560
THRESHOLD_COLOUR = "#b91c1c"


def _base(description: str, height: int = 220) -> dict[str, Any]:
    return {"$schema": SCHEMA, "description": description, "width": WIDTH, "height": height,
            "config": {"font": "system-ui, sans-serif", "axis": {"labelFontSize": 12, "titleFontSize": 12}}}


def _threshold_rule(threshold: float) -> dict[str, Any]:
    return {"data": {"values": [{"threshold": threshold}]}, "mark": {"type": "rule", "strokeDash": [6, 3],
            "strokeWidth": 2, "color": THRESHOLD_COLOUR},
            "encoding": {"x": {"field": "threshold", "type": "quantitative"},
                         "tooltip": [{"field": "threshold", "type": "quantitative", "format": ".4g"}]}}


def score_histogram(edges: np.ndarray, counts: np.ndarray, threshold: float, flagged: int) -> dict[str, Any]:
    """The scores of a scored file, binned, with the threshold as a dashed rule."""
    rows = int(counts.sum())
    values = [{"from": float(a), "to": float(b), "rows": int(c), "side": "over the threshold" if a >= threshold
               else "at or under the threshold"} for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    spec = _base(f"Histogram of {rows} anomaly scores in {len(counts)} bins; {flagged} rows over the threshold "
                 f"{threshold:.4g} (dashed line).")
    spec["layer"] = [
        {"data": {"values": values}, "mark": {"type": "rect", "stroke": "white", "strokeWidth": 0.5},
         "encoding": {
             "x": {"field": "from", "type": "quantitative", "title": "anomaly score (higher: more anomalous)"},
             "x2": {"field": "to"},
             "y": {"field": "rows", "type": "quantitative", "title": "rows"},
             "color": {"field": "side", "type": "nominal", "title": None,
                       "scale": {"domain": ["at or under the threshold", "over the threshold"],
                                 "range": ["#1d4ed8", THRESHOLD_COLOUR]},
                       "legend": {"orient": "top"}},
             "tooltip": [{"field": "from", "format": ".4g"}, {"field": "to", "format": ".4g"}, {"field": "rows"}]}},
        _threshold_rule(threshold),
    ]
    return spec


def _training_cdf(training: dict[str, Any], x: float) -> float:
    """The training scores' distribution function at x, from their min, quantiles and max (piecewise linear)."""
    xs = [training["min"], *training["quantiles"], training["max"]]
    ps = [0.0, *training["quantile_levels"], 1.0]
    return float(np.interp(x, xs, ps, left=0.0, right=1.0))


def drift_buckets(manifest: dict[str, Any], served: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The training-score distribution and the served one over the same buckets (the served-score histogram's:
    the training quantiles, min, max and threshold). Each bucket: from, to, the training share and, once scores
    were served, the served share."""
    training = manifest.get("training_scores") or {}
    if not training.get("quantiles"):
        return []
    threshold = float(manifest["threshold"])
    bounds = served["bounds"] if served else sorted({training["min"], *training["quantiles"], training["max"],
                                                      threshold})
    counts = served["counts"] if served else None
    total = sum(counts) if counts else 0
    span = (training["max"] - training["min"]) or 1.0
    # Below the lowest bound and above the highest: a tenth of the range wide, on the plot only.
    edges = [bounds[0] - 0.1 * span, *bounds, bounds[-1] + 0.1 * span]
    buckets = []
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1]
        share = _training_cdf(training, high) - (_training_cdf(training, low) if i else 0.0)
        if i == len(edges) - 2:
            share = 1.0 - _training_cdf(training, low)
        bucket = {"from": low, "to": high, "training": max(share, 0.0),
                  "label": (f"≤ {high:.4g}" if i == 0 else f"> {low:.4g}" if i == len(edges) - 2
                            else f"{low:.4g} – {high:.4g}")}
        if counts is not None and total:
            bucket["served"] = counts[i] / total
        buckets.append(bucket)
    return buckets


def drift(buckets: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Training against served score density over the same buckets, with the threshold."""
    values = []
    for b in buckets:
        width = b["to"] - b["from"] or 1.0
        for series in ("training", "served"):
            if series in b:
                values.append({"from": b["from"], "to": b["to"], "series": f"{series} scores",
                               "density": b[series] / width, "share": b[series]})
    spec = _base("Distribution of the training scores and, where scores were served, of the served scores over "
                 f"the same buckets; the threshold {threshold:.4g} is the dashed line. The table below lists the "
                 "shares.")
    encoding = {
        "x": {"field": "from", "type": "quantitative", "title": "anomaly score"},
        "x2": {"field": "to"},
        "y": {"field": "density", "type": "quantitative", "title": "share per unit of score", "stack": None},
        "color": {"field": "series", "type": "nominal", "title": None,
                  "scale": {"domain": ["training scores", "served scores"], "range": ["#374151", "#1d4ed8"]},
                  "legend": {"orient": "top"}},
        "tooltip": [{"field": "series"}, {"field": "from", "format": ".4g"}, {"field": "to", "format": ".4g"},
                    {"field": "share", "format": ".1%"}]}
    served = [v for v in values if v["series"] == "served scores"]
    spec["layer"] = [
        # served: filled bars (once scores were served); training: outlines over them, both seen where they agree
        *([{"data": {"values": served}, "mark": {"type": "rect", "opacity": 0.6}, "encoding": encoding}]
          if served else []),
        {"data": {"values": [v for v in values if v["series"] == "training scores"]},
         "mark": {"type": "rect", "fillOpacity": 0, "strokeWidth": 2, "stroke": "#374151"}, "encoding": encoding},
        _threshold_rule(threshold),
    ]
    return spec


def contributions(names: list[str], values: list[float], contribution: list[float], score: float,
                  base: float, method: str) -> dict[str, Any]:
    """One row's per-feature contributions: a bar each, largest magnitude first."""
    ranked = sorted(zip(names, values, contribution, strict=True), key=lambda f: -abs(f[2]))
    rows = [{"feature": n, "value": v, "contribution": c, "effect": "raises the score" if c > 0 else "lowers the score"}
            for n, v, c in ranked]
    spec = _base(f"Per-feature contributions ({method}) to the score {score:.4g} from the base value {base:.4g}: "
                 + "; ".join(f"{r['feature']} {r['contribution']:+.3g}" for r in rows[:5]) + ".",
                 height=max(60, 22 * len(rows)))
    spec["data"] = {"values": rows}
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "y": {"field": "feature", "type": "nominal", "sort": None, "title": None},
        "x": {"field": "contribution", "type": "quantitative", "title": "contribution to the score"},
        "color": {"field": "effect", "type": "nominal", "title": None,
                  "scale": {"domain": ["raises the score", "lowers the score"], "range": [THRESHOLD_COLOUR,
                                                                                          "#1d4ed8"]},
                  "legend": {"orient": "top"}},
        "tooltip": [{"field": "feature"}, {"field": "value", "format": ".6g"},
                    {"field": "contribution", "format": "+.4g"}]}
    return spec
