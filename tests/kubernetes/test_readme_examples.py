"""The values files the README's "Deploy on Kubernetes" shows are valid: each lints clean, passes the values schema
and renders to objects that validate against Kubernetes' schemas."""

from __future__ import annotations

import re

import pytest
import yaml

import kube

SECTION = (kube.ROOT / "README.md").read_text().split("## Deploy on Kubernetes", 1)[1].split("\n## ", 1)[0]
EXAMPLES = {m.group(1): yaml.safe_load(m.group(0))
            for m in re.finditer(r"^# (values-[a-z0-9]+\.yaml).*?(?=^```)", SECTION, re.M | re.S)}


def test_the_readme_shows_both_engines():
    assert set(EXAMPLES) == {"values-s3.yaml", "values-ray.yaml"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_readme_values_file_installs(name):
    values = EXAMPLES[name]
    assert kube.schema_error("pynomaly", values) is None
    assert kube.lint("pynomaly", values) == []
    objects = kube.render("pynomaly", values, name="pynomaly", namespace="anomaly")
    for obj in objects:
        if kube.is_core(obj):
            kube.validate(obj)
    kinds = {o["kind"] for o in objects}
    assert ("RayService" in kinds) == (values.get("engine") == "ray"), kinds
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "pynomaly")
    assert 50051 in [p["port"] for p in service["spec"]["ports"]], "the README's port-forward reaches gRPC"
