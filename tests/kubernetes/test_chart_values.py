"""The pynomaly chart refuses bad values with a message naming the key (the values schema for one value, a
template's `fail` for rules across values); its README is generated from values.yaml; its alerts are real PromQL
over the metrics the server exports."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest

from charts import helm_docs
from pynomaly.observability import metrics

import kube
from chart_value_sets import S3, VALUE_SETS

CHART = "pynomaly"

SCHEMA_CASES = [
    ({"replicaCount": "2"}, "at '/replicaCount': got string, want integer"),
    ({"replicas": 2}, "at '': additional properties 'replicas' not allowed"),
    ({"store": {"pvc": {"sise": "1Gi"}}}, "at '/store/pvc': additional properties 'sise' not allowed"),
    ({"ray": {"app": {"maxReplica": 3}}}, "at '/ray/app': additional properties 'maxReplica' not allowed"),
    ({"engine": "spark"}, "at '/engine': value must be one of 'embedded', 'ray'"),
    ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
    ({"ray": {"worker": {"maxReplicas": -2}}}, "at '/ray/worker/maxReplicas': minimum: got -2, want 0"),
    ({"ports": {"grpc": 70000}}, "at '/ports/grpc': maximum: got 70,000, want 65,535"),
    ({"ports": {"http": 0}}, "at '/ports/http': minimum: got 0, want 1"),
    ({"store": {"type": "nfs"}}, "at '/store/type': value must be one of 'emptyDir', 'pvc', 's3'"),
    ({"store": {"pvc": {"accessModes": ["ReadWriteSometimes"]}}}, "at '/store/pvc/accessModes/0': value must be one"),
    ({"http": {"enabled": "yes"}}, "at '/http/enabled': got string, want boolean"),
    ({"ray": {"head": {"rayStartParams": {"num-cpus": 0}}}},
     "at '/ray/head/rayStartParams/num-cpus': got number, want string"),
    ({"ray": {"app": {"replicaCpus": 0}}}, "at '/ray/app/replicaCpus': exclusiveMinimum: got 0, want 0"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "at '/resources/requests/cpu': 'lots' does not match pattern"),
    ({"metrics": {"prometheusRule": {"scoreDrift": {"window": "1 hour"}}}},
     "at '/metrics/prometheusRule/scoreDrift/window': '1 hour' does not match pattern"),
    ({"otel": {"protocol": "thrift"}}, "at '/otel/protocol': value must be one of 'grpc', 'http/protobuf'"),
    ({"server": {"workers": 0}}, "at '/server/workers': minimum: got 0, want 1"),
    ({"server": {"workers": 2.5}}, "at '/server/workers': got number, want integer"),
    ({"server": {"trainIdleSeconds": -1}}, "at '/server/trainIdleSeconds': minimum: got -1, want 0"),
    ({"server": {"trainIdleSeconds": "1m"}}, "at '/server/trainIdleSeconds': got string, want number"),
]

RULE_CASES = [
    ({"replicaCount": 3}, "replicaCount=3 / autoscaling.enabled=false need store.type=s3 with engine=embedded: a "
     "store.type=emptyDir store is a local directory, safe for one writer process only"),
    ({"replicaCount": 2, "store": {"type": "pvc"}}, "replicaCount=2 / autoscaling.enabled=false need store.type=s3"),
    ({"autoscaling": {"enabled": True}, "store": {"type": "pvc", "pvc": {"accessModes": ["ReadWriteMany"]}}},
     "autoscaling.enabled=true need store.type=s3"),
    ({"store": {"type": "s3", "s3": {"bucket": "models"}}}, "store.s3.existingSecret is required with store.type=s3"),
    ({"store": {"type": "s3", "s3": {"existingSecret": "creds"}}}, "store.s3.bucket is required with store.type=s3"),
    ({"engine": "ray"}, "engine=ray with workers (ray.worker.maxReplicas=4) needs a store every Ray node reads: "
     "store.type=s3, or store.type=pvc with store.pvc.accessModes [ReadWriteMany] (store.type=emptyDir is not "
     "shared)"),
    ({"engine": "ray", "store": {"type": "pvc"}}, "(store.type=pvc is not shared)"),
    ({"tls": {"enabled": True}}, "tls.secretName is required with tls.enabled=true"),
    ({"server": {"graceSeconds": 30}}, "terminationGracePeriodSeconds=30 must exceed server.graceSeconds=30"),
    ({"server": {"graceSeconds": 4}}, "server.graceSeconds=4 must exceed server.shutdownDelaySeconds=5"),
    ({"tls": {"clientAuth": True}}, "tls.clientAuth needs tls.enabled=true"),
    ({"tls": {"enabled": True, "secretName": "t"}, "ports": {"health": 50051}},
     "ports.grpc, ports.http, ports.metrics and ports.health must differ"),
    ({"metrics": {"serviceMonitor": {"enabled": True}}}, "metrics.serviceMonitor and metrics.prometheusRule need "
     "metrics.enabled=true"),
    ({"metrics": {"enabled": True}, "ports": {"metrics": 50051}},
     "ports.grpc, ports.http, ports.metrics and ports.health must differ"),
    ({"engine": "ray", "store": S3, "ray": {"worker": {"minReplicas": 5}}},
     "ray.worker: minReplicas <= replicas <= maxReplicas is required"),
    ({"store": S3, "autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 3}},
     "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
]


@pytest.mark.parametrize(("values", "message"), SCHEMA_CASES, ids=[m.split(":")[0] for _, m in SCHEMA_CASES])
def test_schema_rejects_with_the_key_named(values: dict[str, Any], message: str) -> None:
    error = kube.schema_error(CHART, values)
    assert error is not None and message in error, error
    assert kube.render_error(CHART, values) is not None  # install and upgrade refuse them too


@pytest.mark.parametrize(("values", "message"), RULE_CASES, ids=[m[:40] for _, m in RULE_CASES])
def test_rules_across_values_fail_with_the_reason(values: dict[str, Any], message: str) -> None:
    assert kube.schema_error(CHART, values) is None  # each value is fine alone
    error = kube.render_error(CHART, values)
    assert error is not None and message in error, error


def test_every_value_set_and_the_defaults_pass_the_schema() -> None:
    for values in [{}, *VALUE_SETS.values()]:
        assert kube.schema_error(CHART, values) is None


def test_readme_is_generated_from_values_and_every_value_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    charts = sorted(p.parent for p in kube.CHARTS.glob("*/Chart.yaml"))
    assert kube.CHARTS / CHART in charts
    for chart in charts:
        text, missing = helm_docs.readme(chart)
        assert missing == [], f"{chart.name}: values without a `# --` comment: {missing}"
        assert (chart / "README.md").read_text() == text, f"{chart}/README.md is stale: run `make chart-docs`"
    assert helm_docs.main(["--check", *map(str, charts)]) == 0
    assert "| store.s3.existingSecret | string | `\"\"` |" in (kube.CHARTS / CHART / "README.md").read_text()


def test_helm_docs_check_names_what_is_wrong(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "values.yaml").write_text("# -- documented\na: 1\nb:\n  # -- nested\n  c: x\n  d: {}\n")
    assert helm_docs.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no `# --` comment on b.d" in err and "README.md is stale" in err
    (tmp_path / "values.yaml").write_text("# -- documented\n# over two lines\na: 1\nb:\n  # -- nested\n  c: x\n")
    assert helm_docs.main([str(tmp_path)]) == 0
    assert helm_docs.main(["--check", str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert "| a | int | `1` | documented over two lines |" in readme and "| b.c | string | `\"x\"` | nested |" in readme


def rules(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rule = kube.one(kube.render(CHART, values), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    return {r["alert"]: r for r in group["rules"]}


def selectors(node: Any) -> list[Any]:
    """Every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node]
    found = []
    for attr in ("expr", "lhs", "rhs", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None:
            found += selectors(child)
    for arg in getattr(node, "args", None) or []:
        found += selectors(arg)
    return found


def test_alerts_are_promql_over_the_exported_series() -> None:
    alerts = rules(VALUE_SETS["embedded-observed"])
    assert set(alerts) == {"PynomalyHighErrorRate", "PynomalyScoreDrift"}
    # The names the server exports (pynomaly.observability.metrics); counters gain _total.
    exported = {"grpc_server_handled_total", "pynomaly_detect_rows_total", "pynomaly_detect_rows_flagged_total",
                "pynomaly_model_contamination"}
    source = metrics.__doc__ or ""
    assert all(name.removesuffix("_total") in source for name in exported)
    used = {"PynomalyHighErrorRate": {"grpc_server_handled_total"},
            "PynomalyScoreDrift": exported - {"grpc_server_handled_total"}}
    for name, alert in alerts.items():
        found = selectors(promql_parser.parse(alert["expr"]))
        assert {selector.name for selector in found} == used[name]
        for selector in found:
            labels = {m.name: m.value for m in selector.matchers.matchers}
            assert (labels["namespace"], labels["service"]) == ("anomaly", "demo-pynomaly")

    errors = alerts["PynomalyHighErrorRate"]
    assert (errors["for"], errors["labels"]["severity"]) == ("10m", "critical")
    assert 'grpc_code=~"Internal|Unavailable|Unknown|DataLoss|DeadlineExceeded"' in errors["expr"]
    assert "sum by (namespace, grpc_service)" in errors["expr"] and "[5m]" in errors["expr"]
    assert errors["expr"].rstrip().endswith("> 0.05")

    drift = alerts["PynomalyScoreDrift"]
    assert (drift["for"], drift["labels"]["severity"]) == ("30m", "warning")
    assert "sum by (namespace, model, version) (rate(pynomaly_detect_rows_flagged_total{" in drift["expr"]
    assert "> 3 * max by (namespace, model, version) (pynomaly_model_contamination{" in drift["expr"]
    assert "[1h]" in drift["expr"] and "> 0.1" in drift["expr"]
    assert "{{ $labels.model }}@{{ $labels.version }}" in drift["annotations"]["summary"]


def test_alert_knobs_reach_the_expressions() -> None:
    alerts = rules({"metrics": {"enabled": True, "prometheusRule": {
        "enabled": True, "errorRate": {"threshold": 0.01, "window": "15m"},
        "scoreDrift": {"factor": 5, "window": "6h", "minRowsPerSecond": 2}}}})
    assert "[15m]" in alerts["PynomalyHighErrorRate"]["expr"] and "> 0.01" in alerts["PynomalyHighErrorRate"]["expr"]
    assert "> 5 * max by" in alerts["PynomalyScoreDrift"]["expr"] and "[6h]" in alerts["PynomalyScoreDrift"]["expr"]
    assert alerts["PynomalyScoreDrift"]["expr"].rstrip().endswith("> 2")
    only_errors = rules({"metrics": {"enabled": True, "prometheusRule": {"enabled": True,
                                                                         "scoreDrift": {"enabled": False}}}})
    assert set(only_errors) == {"PynomalyHighErrorRate"}
