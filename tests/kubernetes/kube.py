"""Real Helm and real Kubernetes schemas, without a cluster: the charts' tests render with Helm v4's SDK
(helm-python-sdk: Helm's Go code behind a C ABI, no helm binary) and validate every object of a core kind against
the Kubernetes JSON schemas of KUBE_VERSION (kubernetes-validate, strict: unknown fields are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
# A current Kubernetes release; kubernetes-validate bundles its schemas.
KUBE_VERSION = "1.37.0"
# Kinds whose schema ships with Kubernetes (everything else is a custom resource: RayService, ServiceMonitor, …).
CORE_GROUPS = ("v1", "apps/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
               "apiextensions.k8s.io/v1", "batch/v1")


def render(chart: str, values: dict[str, Any] | None = None, *, name: str = "demo",
           namespace: str = "anomaly") -> list[dict[str, Any]]:
    """The chart's objects as Helm would install them (CRDs from crds/ first), NOTES.txt left out."""
    loaded = helm.Chart.load(CHARTS / chart)
    objects: list[dict[str, Any]] = []
    for crd in loaded.crds:
        objects.extend(d for d in yaml.safe_load_all(crd["data"]) if d)
    for path, text in sorted(loaded.render(values=values, name=name, namespace=namespace, is_install=True).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(d for d in yaml.safe_load_all(text) if d)
    return objects


def notes(chart: str, values: dict[str, Any] | None = None, *, name: str = "demo", namespace: str = "anomaly") -> str:
    """The rendered templates/NOTES.txt."""
    rendered = helm.Chart.load(CHARTS / chart).render(values=values, name=name, namespace=namespace, is_install=True)
    return next(text for path, text in rendered.items() if path.endswith("templates/NOTES.txt"))


def lint(chart: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`helm lint --strict` findings above info (warnings and errors); [] when clean."""
    report = helm.lint(CHARTS / chart, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    return [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]


def schema_error(chart: str, values: dict[str, Any]) -> str | None:
    """The values schema's message for values, or None when they are valid."""
    try:
        helm.Chart.load(CHARTS / chart).validate_schema(values)
    except helm.HelmValuesError as e:
        return str(e)
    return None


def is_core(obj: dict[str, Any]) -> bool:
    return obj["apiVersion"] in CORE_GROUPS


def validate(obj: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless obj is valid (strictly) for KUBE_VERSION."""
    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]
