"""kopf registrations, nothing else: every event of an AnomalyDetector (created, resumed after an operator restart,
spec changed, the periodic tick, deleted) runs the same `platform.step` and writes the status patch it returns.

    kopf run --standalone --all-namespaces -m pynomaly_operator.handlers

Settings (environment): PYNOMALY_OPERATOR_INTERVAL, seconds between ticks (default 30: how soon a finished job or a
due schedule is noticed); PYNOMALY_OPERATOR_DATA_ROOT, where holdout paths are read (the platform's data volume);
PYNOMALY_OPERATOR_TIMEOUT, seconds per platform call (default 30). kopf keeps its progress in annotations under
pynomaly.io/ (status stays the CRD's) and the finalizer pynomaly.io/finalizer; cluster scanning is off, so it needs
no rights on namespaces or CRDs (the chart's RBAC grants only what these handlers use).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import grpc
import kopf

from pynomaly_operator import GROUP, PLURAL, VERSION
from pynomaly_operator.platform import Platform, step
from pynomaly_operator.resources import Resource

INTERVAL = float(os.environ.get("PYNOMALY_OPERATOR_INTERVAL", "30"))
PLATFORM = Platform(timeout=float(os.environ.get("PYNOMALY_OPERATOR_TIMEOUT", "30")))
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.scanning.disabled = True


@kopf.on.cleanup()
def close(**_: Any) -> None:
    PLATFORM.close()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(_step(body))


@kopf.timer(GROUP, VERSION, PLURAL, interval=INTERVAL, initial_delay=INTERVAL)
def tick(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(_step(body))


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(body: kopf.Body, **_: Any) -> None:
    _step(body)


def _step(body: Mapping[str, Any]) -> dict[str, Any]:
    """One reconciliation at a time per resource (a tick may come while a change is handled); a platform that
    cannot answer now is retried by kopf."""
    resource = Resource.from_body(body)
    with _locks_guard:
        lock = _locks.setdefault(resource.uid, threading.Lock())
    with lock:
        try:
            return step(PLATFORM, resource, datetime.now(UTC))
        except grpc.RpcError as e:
            code = e.code().name if callable(getattr(e, "code", None)) else "UNKNOWN"
            details = e.details() if callable(getattr(e, "details", None)) else str(e)
            raise kopf.TemporaryError(f"platform {resource.spec.get('platform')}: {code}: {details}",
                                      delay=INTERVAL) from e
