"""charts/pynomaly-operator with real Helm (lint, render) and Kubernetes' schemas (strict); AnomalyDetector objects
against the CRD's own OpenAPI schema; RBAC exactly what the kopf handlers use; the values schema's refusals."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pynomaly import thresholds
from pynomaly_operator import GROUP, KIND, PLURAL, VERSION
from pynomaly_operator.resources import NAME_PATTERN, Resource, read_spec

import kube

CHART = "pynomaly-operator"
CHART_DIR = kube.CHARTS / CHART
VALUE_SETS = {
    "default": {},
    "namespaced": {"watchNamespaces": ["fraud", "sensors"], "logLevel": "debug",
                   "data": {"existingClaim": "pynomaly-data"}, "imagePullSecrets": [{"name": "ghcr"}],
                   "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}}],
                   "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/ad"}}},
}
RULES = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, kube.render(CHART, VALUE_SETS[request.param])


def test_lint_is_clean():
    for values in VALUE_SETS.values():
        assert kube.lint(CHART, values) == []


def test_every_core_object_validates(rendered):
    _, objects = rendered
    assert {o["kind"] for o in objects} >= {"CustomResourceDefinition", "ServiceAccount", "Deployment"}
    for obj in objects:
        assert kube.is_core(obj), f"{obj['kind']} is not a core kind"
        kube.validate(obj)


def test_the_deployment_runs_kopf_locked_down(rendered):
    name, objects = rendered
    deployment = kube.one(objects, "Deployment")
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (1, "Recreate")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/pynomaly/pynomaly:0.1.0"
    scope = ["--namespace=fraud", "--namespace=sensors", "--debug"] if name == "namespaced" else ["--all-namespaces"]
    assert [container["command"][0], *container["args"]] == [
        "kopf", "run", "--standalone", *scope, "--liveness=http://0.0.0.0:8080/healthz", "-m",
        "pynomaly_operator.handlers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "privileged": False, "capabilities": {"drop": ["ALL"]}}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PYNOMALY_OPERATOR_INTERVAL"] == "30" and env["PYNOMALY_OPERATOR_DATA_ROOT"] == "/data"
    assert pod["serviceAccountName"] == kube.one(objects, "ServiceAccount")["metadata"]["name"]
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == ({"/tmp": False, "/data": True} if name == "namespaced" else {"/tmp": False})


def test_rbac_grants_exactly_what_the_handlers_use(rendered):
    name, objects = rendered
    account = kube.one(objects, "ServiceAccount")["metadata"]
    subject = [{"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}]
    if name == "default":
        assert kube.one(objects, "ClusterRole")["rules"] == RULES
        binding = kube.one(objects, "ClusterRoleBinding")
        assert binding["subjects"] == subject and binding["roleRef"]["kind"] == "ClusterRole"
        assert kube.by_kind(objects, "Role") == []
    else:
        assert kube.by_kind(objects, "ClusterRole") == kube.by_kind(objects, "ClusterRoleBinding") == []
        roles, bindings = kube.by_kind(objects, "Role"), kube.by_kind(objects, "RoleBinding")
        assert sorted(r["metadata"]["namespace"] for r in roles) == ["fraud", "sensors"]
        assert all(r["rules"] == RULES for r in roles)
        assert sorted(b["metadata"]["namespace"] for b in bindings) == ["fraud", "sensors"]
        assert all(b["subjects"] == subject and b["roleRef"]["kind"] == "Role" for b in bindings)


def test_kopf_keeps_out_of_the_rights_it_is_not_given():
    """The RBAC above holds only because the handlers turn off peering (--standalone), cluster scanning, and keep
    kopf's progress in annotations (no status.kopf the CRD schema would prune)."""
    source = (Path(__file__).resolve().parents[2] / "operators" / "pynomaly_operator" / "handlers.py").read_text()
    for line in ("settings.scanning.disabled = True", "kopf.AnnotationsProgressStorage(prefix=GROUP)",
                 "kopf.AnnotationsDiffBaseStorage(prefix=GROUP)"):
        assert line in source


# --- the CRD and AnomalyDetector objects against its schema ---


def crd() -> dict[str, Any]:
    return kube.one(kube.render(CHART), "CustomResourceDefinition")


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as the API server applies it with strict field validation (kubectl's default): unknown fields are
    errors wherever the schema lists properties and does not preserve unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node: dict[str, Any]) -> None:
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for child in [*node.get("properties", {}).values(), *([node["items"]] if "items" in node else [])]:
            walk(child)

    walk(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def validator() -> jsonschema.Draft4Validator:
    """OpenAPI v3.0 schemas keep draft 4's boolean exclusiveMinimum."""
    (version,) = crd()["spec"]["versions"]
    return jsonschema.Draft4Validator(strict(version["schema"]["openAPIV3Schema"]))


def samples() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((CHART_DIR / "examples" / "anomalydetector.yaml").read_text()) if d]


def test_the_crd():
    definition = crd()
    spec = definition["spec"]
    assert definition["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert (spec["group"], spec["scope"], spec["names"]["kind"], spec["names"]["shortNames"]) == (
        GROUP, "Namespaced", KIND, ["ad"])
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"], version["subresources"]) == (
        VERSION, True, True, {"status": {}})
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Algorithm", "Serving", "Candidate", "Phase", "Age"]
    props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["modelName"]["pattern"] == props["alias"]["pattern"] == NAME_PATTERN  # the platform's rule
    # no default: an unset contamination reaches the platform unset (its default, or the labels' anomaly share)
    assert "default" not in props["contamination"]


def test_the_threshold_methods_are_the_platforms():
    """The CRD's enum is what the platform's check_method accepts (besides "", the default's other name)."""
    props = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["thresholdMethod"]["enum"] == [thresholds.CONTAMINATION, *sorted(thresholds.METHODS)]
    for name in props["thresholdMethod"]["enum"]:
        assert thresholds.check_method(name) == name


def test_the_samples_validate_and_the_operator_reads_them():
    objects = samples()
    assert len(objects) >= 2
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) == (f"{GROUP}/{VERSION}", KIND)
        assert list(validator().iter_errors(obj)) == []
        meta = {**obj["metadata"], "uid": "u", "generation": 1}
        read_spec(Resource.from_body({**obj, "metadata": meta}))  # what the API server accepts, the operator reads


def test_a_status_the_operator_writes_validates():
    obj = {**samples()[0], "status": {
        "phase": "GateFailed", "observedGeneration": 2, "jobId": "job-1", "run": 2, "runGeneration": 2,
        "modelVersion": 2, "servingVersion": 1, "threshold": 0.51, "exportError": 3.7e-14, "rocAuc": 0.71,
        "lastTrainedAt": "2026-05-01T12:00:00Z", "nextRunAt": "2026-05-02T03:00:00Z",
        "conditions": [{"type": "QualityGatePassed", "status": "False", "reason": "RocAucTooLow",
                        "message": "…", "lastTransitionTime": "2026-05-01T12:00:00Z"}]}}
    assert list(validator().iter_errors(obj)) == []


BASE = {"algorithm": "iforest", "trainingData": "train.csv", "platform": "pynomaly.anomaly.svc:50051"}


@pytest.mark.parametrize("spec, path, message", [
    ({k: v for k, v in BASE.items() if k != "algorithm"}, "$.spec", "'algorithm' is a required property"),
    ({k: v for k, v in BASE.items() if k != "platform"}, "$.spec", "'platform' is a required property"),
    ({**BASE, "contamination": 0}, "$.spec.contamination", "0 is less than or equal to the minimum of 0"),
    ({**BASE, "contamination": 0.6}, "$.spec.contamination", "0.6 is greater than the maximum of 0.5"),
    ({**BASE, "algorithm": "IForest!"}, "$.spec.algorithm", "'IForest!' does not match '^[a-z][a-z0-9_.]*$'"),
    ({**BASE, "platform": "http://pynomaly:50051"}, "$.spec.platform", "'http://pynomaly:50051' does not match"),
    ({**BASE, "modelName": "-fraud"}, "$.spec.modelName", "'-fraud' does not match"),
    ({**BASE, "modelName": "f" * 65}, "$.spec.modelName", f"'{'f' * 65}' does not match"),
    ({**BASE, "schedule": "daily"}, "$.spec.schedule", "'daily' does not match"),
    ({**BASE, "params": [1]}, "$.spec.params", "[1] is not of type 'object'"),
    ({**BASE, "deletionPolicy": "Orphan"}, "$.spec.deletionPolicy", "'Orphan' is not one of ['Retain', 'Delete']"),
    ({**BASE, "thresholdMethod": "otsu"}, "$.spec.thresholdMethod", "'otsu' is not one of ['contamination', 'chau', "),
    ({**BASE, "thresholdMethod": ""}, "$.spec.thresholdMethod", "'' is not one of ['contamination', 'chau', "),
    ({**BASE, "labelColumn": ""}, "$.spec.labelColumn", "'' should be non-empty"),
    ({**BASE, "labelColumn": 1}, "$.spec.labelColumn", "1 is not of type 'string'"),
    ({**BASE, "qualityGate": {"minRocAuc": 1.5, "holdoutData": "h.csv", "labelColumn": "y"}},
     "$.spec.qualityGate.minRocAuc", "1.5 is greater than the maximum of 1"),
    ({**BASE, "qualityGate": {"maxExportError": -1}}, "$.spec.qualityGate.maxExportError",
     "-1 is less than the minimum of 0"),
    ({**BASE, "qualityGate": {"minRocAuc": 0.9, "holdoutData": "h.json", "labelColumn": "y"}},
     "$.spec.qualityGate.holdoutData", "'h.json' does not match"),
    ({**BASE, "algoritm": "iforest"}, "$.spec", "Additional properties are not allowed ('algoritm' was unexpected)"),
])
def test_bad_anomaly_detectors_are_refused(spec, path, message):
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": "x"}, "spec": spec}
    errors = list(validator().iter_errors(obj))
    assert len(errors) == 1, [e.message for e in errors]
    assert (errors[0].json_path, errors[0].message[:len(message)]) == (path, message)


def test_what_the_schema_leaves_to_cel_the_operator_checks_too():
    """The rules with x-kubernetes-validations (CEL, evaluated by the API server, not here) are the ones the
    operator's read_spec enforces again (tested in tests/operator/test_reconcile.py)."""
    props = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["alias"]["x-kubernetes-validations"][0]["rule"] == "self != 'latest' && !self.matches('^[0-9]+$')"
    assert props["qualityGate"]["x-kubernetes-validations"][0]["rule"] == (
        "!has(self.minRocAuc) || (has(self.holdoutData) && has(self.labelColumn))")


# --- values ---


@pytest.mark.parametrize("values, message", [
    ({"interval": "30s"}, "at '/interval': got string, want number"),
    ({"interval": 0}, "at '/interval': minimum: got 0, want 1"),
    ({"logLevel": "loud"}, "at '/logLevel': value must be one of 'quiet', 'info', 'verbose', 'debug'"),
    ({"watchNamespaces": ["Fraud_NS"]}, "at '/watchNamespaces/0': 'Fraud_NS' does not match pattern"),
    ({"watchNamespaces": "fraud"}, "at '/watchNamespaces': got string, want array"),
    ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"data": {"root": "data"}}, "at '/data/root': 'data' does not match pattern '^/'"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"serviceAccount": {"create": "yes"}}, "at '/serviceAccount/create': got string, want boolean"),
])
def test_the_values_schema_refuses(values, message):
    error = kube.schema_error(CHART, values)
    assert error is not None and message in error, error


def test_every_value_is_documented():
    """helm-docs' `# --` comment above every key, except a map whose own keys carry theirs; keys inside a
    documented value (resources' requests) belong to it."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented, inside = [], None
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        if inside is not None and indent > inside:
            continue
        inside = None
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --"):
            j -= 1
        documented = j >= 0 and lines[j].strip().startswith("# --")
        following = next((ln for ln in lines[i + 1:] if ln.strip() and not ln.strip().startswith("#")), "")
        is_parent = line.rstrip().endswith(":") and len(following) - len(following.lstrip()) > indent
        if documented:
            inside = indent
        elif not is_parent:
            undocumented.append(m.group(2))
    assert undocumented == []
