"""`pynomaly serve`'s limit flags (pynomaly.limits; README "Limits"): their parsing and the config fields they set
(the same names in ServerConfig and the Ray engine's AppArgs)."""

from __future__ import annotations

import argparse
import math
from typing import Any

FIELDS = ("max_queued_jobs", "max_versions_per_model", "max_store_mb", "explain_timeout_s", "import_run_timeout_s",
          "keep_jobs", "job_ttl_days", "max_cache_mb")


def _number(kind: type, least: float, what: str) -> Any:
    """An argparse type: a finite `kind`, ≥ `least` for whole numbers, > `least` for the others."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not (math.isfinite(value) and (value >= least if kind is int else value > least)):
            raise argparse.ArgumentTypeError(f"must be {what} {'≥' if kind is int else '>'} {least}, got {text}")
        return value
    return parse


_SECONDS = _number(float, 0, "a number of seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    limit = parser.add_argument_group("Limits", "what one server takes at most (README, \"Limits\")")
    limit.add_argument("--max-queued-jobs", type=_number(int, 1, "a whole number"), default=16, metavar="N",
                       help="training jobs queued or running at once; more: RESOURCE_EXHAUSTED (default 16)")
    limit.add_argument("--max-versions-per-model", type=_number(int, 1, "a whole number"), default=100,
                       metavar="N", help="versions one model keeps; more: RESOURCE_EXHAUSTED (default 100)")
    limit.add_argument("--max-store-mb", type=_number(float, 0, "a number of MiB"), metavar="MIB",
                       help="no new versions once the store's models take this much (default: no bound)")
    limit.add_argument("--explain-timeout-s", type=_SECONDS, default=30.0, metavar="SECONDS",
                       help="Kernel SHAP's time when the call sets no deadline: DEADLINE_EXCEEDED (default 30)")
    limit.add_argument("--import-run-timeout-s", type=_SECONDS, default=10.0, metavar="SECONDS",
                       help="one onnxruntime run of an imported graph is stopped after this (default 10)")
    limit.add_argument("--keep-jobs", type=_number(int, 0, "a whole number"), default=1000, metavar="N",
                       help="finished job records kept, training and batch each (default 1000)")
    limit.add_argument("--job-ttl-days", type=_number(float, 0, "a number of days"), default=30.0, metavar="DAYS",
                       help="finished job records older than this are deleted (default 30)")
    limit.add_argument("--max-cache-mb", type=_number(float, 0, "a number of MiB"), default=512.0, metavar="MIB",
                       help="loaded versions' ONNX bytes kept in memory (per Scorer replica on Ray); a larger "
                            "version still loads, alone (default 512)")


def fields(args: argparse.Namespace) -> dict[str, Any]:
    """The limit flags as ServerConfig / AppArgs fields."""
    return {name: getattr(args, name) for name in FIELDS}
