"""Algorithm specs: hyperparameters with their checks, how to build a detector, how it scores natively.

Every algorithm scores with one convention: higher = more anomalous (PyOD's `decision_function`).
scikit-learn detectors, which score the other way round, are negated here, in their adapter.
Libraries are imported lazily: listing algorithms must not pay for importing PyOD.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pynomaly.errors import InvalidArgument, describe_value

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    description: str
    check: Check


@dataclass(frozen=True)
class Algorithm:
    name: str
    implementation: str
    description: str
    params: tuple[Param, ...]
    build: Callable[[dict[str, Any], float], Any]
    score: Callable[[Any, np.ndarray], np.ndarray]
    exportable: bool = True
    export_note: str = ""
    exact_explanation: bool = False
    # The native reference scores one row at a time (ECOD, COPOD): verify on fewer rows.
    slow_reference: bool = False
    # Data on which the export check is known to fail, so training refuses to serve the model (clear job error).
    export_limit: str = ""
    # The library scores new rows against the batch they come in (ECOD's ECDFs over training + batch): the graph
    # freezes what the training data defines, and a row scores as the library scores it alone (`score` does that).
    frozen: bool = False
    # Learns from labels (XGBOD, DevNet): training needs them (labels / label_column) and fits on (X, y).
    needs_labels: bool = False
    # Fits in time or memory quadratic in the rows (a full distance matrix: COF, LOCI): training refuses more rows
    # than this, saying so, rather than running for hours or out of memory. 0: no limit.
    max_training_rows: int = 0
    # Trains on exactly this many features (MAD: one); training refuses other widths (WRONG_WIDTH). 0: any.
    n_features: int = 0
    # Trains in epochs of torch optimizer steps: (params, training rows) -> (epochs, steps per epoch), which the
    # job reports as its fit's progress (pynomaly.fit_progress). None: the fit reports no progress of its own.
    epochs: Callable[[dict[str, Any], int], tuple[int, int]] | None = None

    @property
    def serving(self) -> str:
        """How a trained model is served: "exact", "frozen" (see `frozen`) or "refused" (export_note says why)."""
        return "refused" if not self.exportable else "frozen" if self.frozen else "exact"

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate `given` against the spec and fill in defaults; raise InvalidArgument naming the parameter."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidArgument(
                f"params: unknown hyperparameter {unknown[0]!r} for algorithm {self.name!r}; "
                f"known: {', '.join(known) or 'none'}", reason="UNKNOWN_PARAMETER", field=f"params.{unknown[0]}"
            )
        resolved = {}
        for p in self.params:
            if p.name not in given:
                resolved[p.name] = p.default
                continue
            try:
                resolved[p.name] = p.check(given[p.name])
            except ValueError as e:
                raise InvalidArgument(f"params.{p.name}: {e}, got {describe_value(given[p.name])}",
                                      reason="INVALID_PARAMETER") from None
        return resolved



def algorithm_spec(v: Any, what: str, lookup: Callable[[str], Algorithm]) -> dict[str, Any]:
    """An ensemble member or AutoML candidate ("member", "candidate") given as an algorithm name or
    {"algorithm": name, "params": {...}}, normalised to {"algorithm": name, "params": {given ones, coerced}}.
    `lookup` returns the algorithm, or raises ValueError saying which ones may be a `what`."""
    if isinstance(v, str):
        v = {"algorithm": v}
    if not isinstance(v, Mapping) or "algorithm" not in v or set(v) - {"algorithm", "params"}:
        raise ValueError(f"a {what} must be an algorithm name or {{'algorithm': name, 'params': {{...}}}}")
    name, given = v["algorithm"], v.get("params") or {}
    if not isinstance(name, str) or not isinstance(given, Mapping):
        raise ValueError(f"a {what}'s 'algorithm' must be a name and its 'params' an object")
    algo = lookup(name)
    try:
        resolved = algo.resolve_params(given)
    except InvalidArgument as e:
        raise ValueError(f"{what} {name!r}: {e}") from None
    return {"algorithm": name, "params": {k: resolved[k] for k in given}}


def as_declared(value: Any, declared: str) -> Any:
    """`value` as a parameter of the `declared` type (Param.type, e.g. "int | null") would be: 100.0 → 100 where an
    integer is meant. google.protobuf.Value carries every number as a double, so clients convert with this."""
    kinds = {k.strip() for k in declared.split("|")}
    if isinstance(value, float) and value.is_integer() and "int" in kinds and "float" not in kinds:
        return int(value)
    if isinstance(value, list) and "list[int]" in kinds:
        return [as_declared(v, "int") for v in value]
    return value


# --- value checks: each returns the coerced value or raises ValueError saying what is valid ---


def integer(lo: int | None = None, hi: int | None = None, *, none_ok: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and none_ok:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer():
            raise ValueError("must be an integer" + (" or null" if none_ok else ""))
        v = int(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"must be an integer in [{lo}, {'∞' if hi is None else hi}]")
        return v

    return check


def number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Check:
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("must be a finite number")
        v = float(v)
        if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
            raise ValueError(f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
        return v

    return check


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def either(*checks: Check, what: str) -> Check:
    def check(v: Any) -> Any:
        for c in checks:
            try:
                return c(v)
            except ValueError:
                pass
        raise ValueError(f"must be {what}")

    return check


def literal(*options: str | None) -> Check:
    def check(v: Any) -> Any:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(json.dumps(o) for o in options)}")
        return v

    return check


def fraction_or_count(v: Any) -> Any:
    """sklearn's count-or-fraction, told apart by value: every number reaches us as a JSON/protobuf double, so
    1 and 1.0 look alike. A value in (0, 1] is a fraction (1 = all rows), an integer ≥ 2 is a count."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a fraction in (0, 1] or an integer count ≥ 2")
    if 0 < v <= 1:
        return float(v)
    return integer(2)(v)


def batch_epochs(epochs: str, drop_last: bool = False) -> Callable[[dict[str, Any], int], tuple[int, int]]:
    """`Algorithm.epochs` of a detector taking one optimizer step per batch of `batch_size` rows, for the number of
    epochs in its parameter `epochs`; `drop_last`: the last partial batch is dropped (a DataLoader's drop_last)."""
    def plan(p: dict[str, Any], rows: int) -> tuple[int, int]:
        return p[epochs], rows // p["batch_size"] if drop_last else math.ceil(rows / p["batch_size"])

    return plan


def pyod_score(det: Any, X: np.ndarray) -> np.ndarray:
    """PyOD's own convention: decision_function, higher = more anomalous."""
    return np.asarray(det.decision_function(X), dtype=np.float64)


def sklearn_score(est: Any, X: np.ndarray) -> np.ndarray:
    """scikit-learn scores inliers high: negate, so higher = more anomalous."""
    return -np.asarray(est.decision_function(X), dtype=np.float64)
