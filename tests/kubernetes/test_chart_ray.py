"""The pynomaly chart's Ray engine: the RayService's Serve config validates with Ray Serve's own schema and its args
with AppArgs, the fields KubeRay requires are there, the Ray pods validate as Kubernetes pods, and the Service finds
the Gateway on the head pod."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from pynomaly.ray_engine.config import AppArgs

import kube
from chart_value_sets import RAY, VALUE_SETS

CHART = "pynomaly"
SERVE_YAML = kube.ROOT / "services/pynomaly/ray_engine/serve.yaml"
GATEWAY_RESOURCE = "pynomaly-gateway"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kube.render(CHART, VALUE_SETS[name]) for name in RAY}


def cluster(objects: list[dict[str, Any]]) -> dict[str, Any]:
    service = kube.one(objects, "RayService")
    assert service["apiVersion"] == "ray.io/v1"
    return service["spec"]["rayClusterConfig"]


def serve_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    text = kube.one(objects, "RayService")["spec"]["serveConfigV2"]
    assert isinstance(text, str)
    config = yaml.safe_load(text)
    ServeDeploySchema.model_validate(config)
    return config


def app_args(objects: list[dict[str, Any]]) -> AppArgs:
    (app,) = serve_config(objects)["applications"]
    assert set(app["args"]) == set(AppArgs.model_fields)  # every argument is set by the chart
    return AppArgs.model_validate(app["args"])


def ray_resources(params: dict[str, str]) -> dict[str, float]:
    """KubeRay's `resources` start parameter: a quoted JSON object with escaped quotes, `"{\\"X\\": 1}"`."""
    raw = params.get("resources")
    if raw is None:
        return {}
    assert raw.startswith('"') and raw.endswith('"'), raw
    return dict(json.loads(raw[1:-1].replace('\\"', '"')))


def pod(template: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ray", **template["metadata"]},
            "spec": template["spec"]}


def test_serve_config_is_the_repository_application(rendered: dict[str, list[dict[str, Any]]]) -> None:
    repo = yaml.safe_load(SERVE_YAML.read_text())
    config = serve_config(rendered["ray-default"])
    assert set(config) == set(repo)
    assert config["proxy_location"] == repo["proxy_location"] == "Disabled"
    assert set(config["logging_config"]) == set(repo["logging_config"])
    (ours,), (theirs,) = config["applications"], repo["applications"]
    assert {k: v for k, v in ours.items() if k != "args"} == {k: v for k, v in theirs.items() if k != "args"}
    assert set(ours["args"]) == set(theirs["args"])


def test_default_args(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = app_args(rendered["ray-default"])
    assert (args.listen, args.store, args.http_listen, args.metrics_port) == (
        "0.0.0.0:50051", "s3://models/team-a/pynomaly", None, None)
    assert (args.data_root, args.output_root, args.ort_threads, args.max_message_mb) == (None, None, 2, 64.0)
    assert args.store_check_seconds == 10.0
    assert (args.max_queued_jobs, args.max_versions_per_model, args.max_cache_mb, args.explain_timeout_s) == (
        16, 100, 512.0, 30.0)
    assert args.gateway_resources == {GATEWAY_RESOURCE: 0.01}
    assert (args.tls_cert, args.tls_key, args.tls_client_ca, args.health_listen, args.auth_tokens) == (
        None, None, None, None, None)


def test_every_app_arg_comes_from_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = app_args(rendered["ray-autoscaled"])
    assert (args.min_replicas, args.max_replicas, args.target_ongoing_requests, args.max_ongoing_requests) == (
        2, 12, 2.5, 8)
    assert (args.max_queued_requests, args.max_models_per_replica, args.replica_cpus, args.train_cpus) == (
        500, 4, 1.5, 2.0)
    assert (args.batch_actors, args.batch_cpus, args.ort_threads, args.max_message_mb) == (6, 0.25, 3, 128.0)
    assert (args.http_listen, args.metrics_port, args.data_root, args.output_root) == (
        "0.0.0.0:8000", 9090, "/data", None)
    assert args.store == "/var/lib/pynomaly/store"
    assert (args.max_queued_jobs, args.max_versions_per_model, args.max_cache_mb, args.explain_timeout_s) == (
        4, 20, 2048.0, 7.5)
    assert (args.tls_cert, args.tls_key, args.tls_client_ca) == ("/etc/pynomaly/tls/tls.crt",
                                                                "/etc/pynomaly/tls/tls.key", None)
    assert (args.auth_tokens, args.auth_reflection, args.health_listen) == ("/etc/pynomaly/auth/tokens.txt", "open",
                                                                            None)


def test_ray_version_matches_the_pinned_ray(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pinned = re.search(r'"ray\[[^\]]*\]==([0-9.]+)"', (kube.ROOT / "pyproject.toml").read_text())
    assert pinned
    for objects in rendered.values():
        assert cluster(objects)["rayVersion"] == pinned[1]


@pytest.mark.parametrize("name", RAY)
def test_the_gateway_can_only_run_on_the_head(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    spec = cluster(rendered[name])
    head = ray_resources(spec["headGroupSpec"]["rayStartParams"])
    assert head == {GATEWAY_RESOURCE: 1}
    needs = app_args(rendered[name]).gateway_resources
    assert needs and all(0 < amount <= head.get(resource, 0) for resource, amount in needs.items())
    for group in spec.get("workerGroupSpecs", []):
        assert not set(needs) & set(ray_resources(group["rayStartParams"]))
    for params in [spec["headGroupSpec"]["rayStartParams"], *(g["rayStartParams"] for g in
                                                              spec.get("workerGroupSpecs", []))]:
        assert all(isinstance(v, str) for v in params.values())  # KubeRay takes strings only


@pytest.mark.parametrize("name", RAY)
def test_service_selects_the_head_pod_and_its_ports(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    spec = cluster(objects)
    head = spec["headGroupSpec"]["template"]
    service = kube.one(objects, "Service")
    assert service["spec"]["selector"].items() <= head["metadata"]["labels"].items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "ray-head"
    for group in spec.get("workerGroupSpecs", []):
        assert not service["spec"]["selector"].items() <= group["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in head["spec"]["containers"][0]["ports"]}
    args = app_args(objects)
    for port in service["spec"]["ports"]:
        assert ports[port["targetPort"]] == port["port"]
    assert args.listen == f"0.0.0.0:{ports['grpc']}"
    assert args.http_listen == (f"0.0.0.0:{ports['http']}" if "http" in ports else None)
    assert args.metrics_port == ports.get("metrics")


@pytest.mark.parametrize("name", RAY)
def test_kuberay_required_fields(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    spec = cluster(rendered[name])
    image = "ghcr.io/pynomaly/pynomaly:0.1.0"
    head = spec["headGroupSpec"]
    (container,) = head["template"]["spec"]["containers"]
    assert container["name"] == "ray-head" and container["image"] == image
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {"gcs": 6379, "dashboard": 8265, "client": 10001}.items() <= ports.items()
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["securityContext"]["allowPrivilegeEscalation"] is False
    for group in spec.get("workerGroupSpecs", []):
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        (worker,) = group["template"]["spec"]["containers"]
        assert worker["image"] == image
        assert worker["readinessProbe"]["httpGet"] == {"path": "/api/local_raylet_healthz", "port": 52365}


def test_worker_group_sizes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    spec = cluster(rendered["ray-autoscaled"])
    (group,) = spec["workerGroupSpecs"]
    assert (group["groupName"], group["replicas"], group["minReplicas"], group["maxReplicas"]) == ("scorers", 2, 1, 10)
    assert group["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "4", "memory": "8Gi"},
                                                                       "limits": {"memory": "8Gi"}}
    assert (spec["autoscalerOptions"]["upscalingMode"], spec["autoscalerOptions"]["idleTimeoutSeconds"]) == (
        "Aggressive", 120)
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert "workerGroupSpecs" not in cluster(rendered["ray-head-only"])


@pytest.mark.parametrize("name", RAY)
def test_ray_pods_validate_and_are_locked_down(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    spec = cluster(objects)
    templates = [spec["headGroupSpec"]["template"], *(g["template"] for g in spec.get("workerGroupSpecs", []))]
    for template in templates:
        kube.validate(pod(template))
        s = template["spec"]
        assert (s["securityContext"]["runAsNonRoot"], s["securityContext"]["runAsUser"]) == (True, 10001)
        assert s["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (c,) = s["containers"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        volumes = {v["name"]: v for v in s["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"]
        assert mounts["/dev/shm"]["emptyDir"]["medium"] == "Memory"
        assert c["envFrom"] == [{"configMapRef": {"name": kube.one(objects, "ConfigMap")["metadata"]["name"]}}]
        store = VALUE_SETS[name].get("store", {}).get("type", "emptyDir")
        if store == "s3":
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
            assert refs["AWS_ACCESS_KEY_ID"] == {"name": "pynomaly-s3", "key": "AWS_ACCESS_KEY_ID"}
        elif store == "pvc":  # every node mounts the same (ReadWriteMany) claim at the store path
            assert mounts[app_args(objects).store]["persistentVolumeClaim"]["claimName"] == "demo-pynomaly-store"
        else:  # the head alone (no workers): its own directory
            assert len(templates) == 1 and "emptyDir" in mounts[app_args(objects).store]


def test_ray_network_policy_keeps_the_cluster_talking(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["ray-autoscaled"]
    policy = kube.one(objects, "NetworkPolicy")["spec"]
    spec = cluster(objects)
    for template in [spec["headGroupSpec"]["template"], *(g["template"] for g in spec["workerGroupSpecs"])]:
        assert policy["podSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    apps, peers, operator = policy["ingress"]
    assert {p["port"] for p in apps["ports"]} == {50051, 8000, 9090} and "from" not in apps
    assert peers == {"from": [{"podSelector": {"matchLabels": policy["podSelector"]["matchLabels"]}}]}
    assert {p["port"] for p in operator["ports"]} == {8265, 52365}
    assert operator["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kuberay-operator"}


def test_notes_for_ray() -> None:
    text = kube.notes(CHART, VALUE_SETS["ray-default"])
    assert "kubectl -n anomaly get rayservice demo-pynomaly -w" in text
    assert "kubectl -n anomaly port-forward svc/demo-pynomaly 50051:50051" in text
