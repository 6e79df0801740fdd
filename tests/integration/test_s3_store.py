"""Both engines on one model store in S3-compatible object storage (moto's S3 server on 127.0.0.1, configured
through the standard AWS variables as a deployment would be): what one process trains, the other serves."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from pynomaly import Client

from conftest import ServerProcess, moto_s3, require_ray

BUCKET = "pynomaly-it"


@pytest.fixture(scope="module")
def s3_url(tmp_path_factory):
    with moto_s3(BUCKET):
        yield f"s3://{BUCKET}/{uuid.uuid4().hex}"


def test_embedded_and_ray_engines_share_one_s3_store(s3_url):
    require_ray()
    X = np.random.default_rng(11).normal(size=(300, 4))
    embedded = ServerProcess(s3_url)  # type: ignore[arg-type]  # a URL where a directory usually goes
    try:
        with Client(embedded.address, timeout=60) as a:
            first = a.train("shared", X, algorithm="iforest", params={"n_estimators": 30, "random_state": 0})
            a.set_alias("shared", "prod", first.version)
            scores = a.detect("shared:prod", X[:20]).anomaly_scores
            ray = ServerProcess(s3_url, engine="ray")  # type: ignore[arg-type]
            try:
                with Client(ray.address, timeout=60) as b:
                    got = b.detect("shared:prod", X[:20])
                    assert (got.model_name, got.model_version) == ("shared", first.version)
                    np.testing.assert_array_equal(got.anomaly_scores, scores)
                    assert b.explain("shared:prod", X[:2], top_k=2).method == "tree_shap"
                    second = b.train("shared", X[:200], algorithm="hbos")  # a Ray task writes version 2 to S3
                    assert second.version == first.version + 1
                    b.delete_model(f"shared@{first.version}")
                    deadline = time.monotonic() + 10  # the other process sees changes within its cache TTL (1 s)
                    while [v.version for v in a.list_model_versions("shared")] != [second.version]:
                        assert time.monotonic() < deadline, "the embedded server never saw the Ray engine's writes"
                        time.sleep(0.2)
                    np.testing.assert_array_equal(a.detect("shared", X[:5]).anomaly_scores,
                                                  b.detect(f"shared@{second.version}", X[:5]).anomaly_scores)
            finally:
                ray.stop()
    finally:
        embedded.stop()
