"""The pynomaly chart, embedded engine and what both engines share: real Helm renders it, every core object
validates against Kubernetes 1.37's schemas, and the server's arguments parse with the real `pynomaly` CLI parser."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from pynomaly.cli import build_parser

import kube
from chart_value_sets import EMBEDDED, S3, VALUE_SETS

CHART = "pynomaly"
TLS_DIR = "/etc/pynomaly/tls"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kube.render(CHART, values) for name, values in VALUE_SETS.items()}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = kube.one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def serve_args(objects: list[dict[str, Any]]) -> Any:
    c = container(objects)
    assert c["command"] == ["pynomaly"]
    return build_parser().parse_args(c["args"])


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_is_clean(name: str) -> None:
    assert kube.lint(CHART, VALUE_SETS[name]) == []


@pytest.mark.parametrize("name", VALUE_SETS)
def test_core_objects_validate(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    core = [o for o in rendered[name] if kube.is_core(o)]
    assert {"ConfigMap", "Service", "ServiceAccount"} <= {o["kind"] for o in core}
    for obj in core:
        kube.validate(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "pynomaly"


def test_one_kind_per_template_file() -> None:
    kinds: dict[str, set[str]] = {}
    for values in VALUE_SETS.values():
        for path, objects in kube.render_files(CHART, values).items():
            kinds.setdefault(path, set()).update(o["kind"] for o in objects)
    assert all(len(k) <= 1 for k in kinds.values()), kinds
    every = set().union(*kinds.values())
    assert every == {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PersistentVolumeClaim",
                     "PodDisruptionBudget", "PrometheusRule", "RayService", "Service", "ServiceAccount",
                     "ServiceMonitor"}


def test_default_server_arguments_parse_with_the_cli(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = serve_args(rendered["embedded-default"])
    assert (args.command, args.engine, args.listen, args.store) == ("serve", "embedded", "0.0.0.0:50051",
                                                                  "/var/lib/pynomaly/store")
    assert (args.train_workers, args.threads, args.max_message_mb, args.log_level) == (1, 2, 64.0, "info")
    assert args.store_check_seconds == 10.0
    assert (args.train_idle_s, args.workers) == (60.0, 1)
    assert (args.max_queued_jobs, args.max_versions_per_model, args.max_cache_mb, args.explain_timeout_s) == (
        16, 100, 512.0, 30.0)
    assert args.grace_s == 25.0 < kube.one(rendered["embedded-default"], "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    assert (args.http_listen, args.metrics_port, args.data_root, args.output_root) == (None, None, None, None)
    assert (args.tls_cert, args.tls_key, args.tls_client_ca, args.health_listen, args.auth_tokens) == (
        None, None, None, None, None)


def test_observed_server_arguments(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = serve_args(rendered["embedded-observed"])
    assert (args.http_listen, args.metrics_port) == ("0.0.0.0:8000", 9090)
    assert (args.data_root, args.output_root, args.log_level, args.threads) == ("/data", "/outputs", "debug", 4)
    assert (args.train_idle_s, args.workers) == (300.0, 4)


def test_tls_and_tokens_server_arguments(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = serve_args(rendered["embedded-observed"])
    assert (args.tls_cert, args.tls_key, args.tls_client_ca) == (f"{TLS_DIR}/tls.crt", f"{TLS_DIR}/tls.key",
                                                                f"{TLS_DIR}/ca.crt")
    assert (args.auth_tokens, args.auth_reflection) == ("/etc/pynomaly/auth/tokens", "token")
    # The kubelet's gRPC probes cannot speak TLS: they ask the plaintext health-only port (by number: the kubelet
    # reaches the pod directly; the Service does not carry it).
    assert args.health_listen == "0.0.0.0:50052"
    c = container(rendered["embedded-observed"])
    assert c["readinessProbe"]["grpc"] == {"port": 50052, "service": ""}
    assert c["livenessProbe"]["grpc"] == {"port": 50052, "service": "liveness"}
    assert c["startupProbe"]["grpc"] == {"port": 50052, "service": "liveness"}
    assert 50052 not in [p["port"] for p in kube.one(rendered["embedded-observed"], "Service")["spec"]["ports"]]
    pod = kube.one(rendered["embedded-observed"], "Deployment")["spec"]["template"]["spec"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/pynomaly/auth")
    assert mount["readOnly"] is True
    assert next(v for v in pod["volumes"] if v["name"] == mount["name"])["secret"]["secretName"] == "pynomaly-tokens"
    # Without TLS, no health-only port: the probes ask the API port.
    args = serve_args(rendered["embedded-pvc"])
    assert args.health_listen is None
    assert container(rendered["embedded-pvc"])["readinessProbe"]["grpc"]["port"] == 50051


def test_probes_ask_grpc_health_for_the_right_services(rendered: dict[str, list[dict[str, Any]]]) -> None:
    c = container(rendered["embedded-default"])
    assert c["readinessProbe"]["grpc"] == {"port": 50051, "service": ""}
    assert c["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
    assert c["startupProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 150


def test_security_context(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name in EMBEDDED:
        pod = kube.one(rendered[name], "Deployment")["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["fsGroup"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        c = container(rendered[name])
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        # The read-only root leaves /tmp to an emptyDir.
        tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])


@pytest.mark.parametrize("name", EMBEDDED)
def test_service_ports_and_selector_reach_the_container(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    service, deployment = kube.one(objects, "Service"), kube.one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    service_ports = {p["name"]: (p["port"], p["targetPort"], p["appProtocol"]) for p in service["spec"]["ports"]}
    assert set(service_ports) == set(container_ports)
    for port_name, (port, target, protocol) in service_ports.items():
        assert (target, port) == (port_name, container_ports[port_name])
        assert protocol == ("grpc" if port_name == "grpc" else "http")
    args = serve_args(objects)
    assert args.listen.endswith(f":{container_ports['grpc']}")
    assert (args.http_listen or "").endswith(f":{container_ports.get('http')}") == ("http" in container_ports)
    assert (args.metrics_port == container_ports.get("metrics")) and (args.metrics_port is None) == (
        "metrics" not in container_ports)


def test_local_store_volume_and_single_writer_rollout(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-pvc"]
    claim = kube.one(objects, "PersistentVolumeClaim")
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                             "resources": {"requests": {"storage": "20Gi"}}}
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployment = kube.one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container(objects)["volumeMounts"] if m["mountPath"] == serve_args(objects).store)
    assert volumes[mount["name"]]["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}

    existing = rendered["embedded-existing-claim"]
    assert kube.by_kind(existing, "PersistentVolumeClaim") == []
    volumes = kube.one(existing, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "store", "persistentVolumeClaim": {"claimName": "models"}} in volumes


def test_s3_store_credentials_come_from_the_secret_reference(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-s3-hpa-pdb"]
    assert serve_args(objects).store == "s3://models/team-a/pynomaly"
    c = container(objects)
    env = {e["name"]: e for e in c["env"]}
    for var, key in (("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
                     ("AWS_SESSION_TOKEN", "token")):
        assert env[var] == {"name": var, "valueFrom": {"secretKeyRef": {"name": "pynomaly-s3", "key": key}}}
    assert all("value" not in e for e in c["env"])  # nothing secret inline
    config = kube.one(objects, "ConfigMap")
    assert c["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert config["data"]["AWS_ENDPOINT_URL_S3"] == "http://minio.minio:9000"
    assert config["data"]["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp"}  # no local store
    assert kube.by_kind(objects, "PersistentVolumeClaim") == []


def test_hpa_and_pdb(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-s3-hpa-pdb"]
    deployment = kube.one(objects, "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    assert "strategy" not in deployment["spec"]  # S3 takes several writers: a rolling update
    hpa = kube.one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in hpa["metrics"]] == [
        ("cpu", 70), ("memory", 80)]
    pdb = kube.one(objects, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == "25%"
    assert pdb["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_tls_otel_and_extras(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-observed"]
    pod = kube.one(objects, "Deployment")["spec"]["template"]
    c = container(objects)
    tls = next(m for m in c["volumeMounts"] if m["mountPath"] == TLS_DIR)
    assert tls["readOnly"] is True
    assert next(v for v in pod["spec"]["volumes"] if v["name"] == tls["name"])["secret"]["secretName"] == "pynomaly-tls"
    config = kube.one(objects, "ConfigMap")["data"]
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert (config["OTEL_SERVICE_NAME"], config["OTEL_EXPORTER_OTLP_PROTOCOL"]) == ("demo-pynomaly", "grpc")
    env = {e["name"]: e for e in c["env"]}
    assert env["OTEL_RESOURCE_ATTRIBUTES"]["value"] == "k8s.namespace.name=anomaly,k8s.pod.name=$(POD_NAME),team=a"
    names = [e["name"] for e in c["env"]]
    assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")  # $(POD_NAME) expands
    assert env["PYTHONFAULTHANDLER"]["value"] == "1"
    assert {"/data", "/outputs"} <= {m["mountPath"] for m in c["volumeMounts"]}
    assert pod["metadata"]["annotations"]["example.com/team"] == "a"
    assert pod["metadata"]["annotations"]["checksum/config"]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"][0]["key"] == "dedicated"
    # No collector configured: no tracing variables at all (the server's tracing stays off).
    assert not any(k.startswith("OTEL_") for k in kube.one(kube.render(CHART), "ConfigMap")["data"])


def test_network_policy_admits_the_configured_peers_to_the_ports(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-observed"]
    policy = kube.one(objects, "NetworkPolicy")["spec"]
    pod_labels = kube.one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert {p["port"] for p in rule["ports"]} == {p["containerPort"] for p in container(objects)["ports"]}
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]


def test_service_monitor(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["embedded-observed"]
    monitor = kube.one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = kube.one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["anomaly"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "30s")


def test_notes_tell_how_to_reach_the_service() -> None:
    text = kube.notes(CHART, VALUE_SETS["embedded-observed"])
    for line in ("kubectl -n anomaly port-forward svc/demo-pynomaly 50051:50051",
                 "kubectl -n anomaly port-forward svc/demo-pynomaly 8000:8000",
                 "grpcurl -cacert ca.crt -cert client.crt -key client.key localhost:50051 grpc.health.v1.Health/Check",
                 "curl http://localhost:8000/v2/health/ready", f"mounted at {TLS_DIR}", "PYNOMALY_TOKEN"):
        assert line in text
    # The CLI lines are real commands of the real parser, aimed at the port-forward.
    cli = [shlex.split(line)[1:] for line in text.splitlines() if line.strip().startswith("pynomaly ")]
    assert len(cli) == 2
    for argv in cli:
        args = build_parser().parse_args(argv)
        assert (args.server, args.tls_ca, args.tls_cert, args.tls_key) == ("localhost:50051", "ca.crt", "client.crt",
                                                                           "client.key")
    assert "grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check" in kube.notes(CHART)
    assert "store.type=emptyDir" in kube.notes(CHART)
    assert "store.type=emptyDir" not in kube.notes(CHART, {"store": S3})
