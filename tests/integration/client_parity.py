"""What every foreign-language client test checks (tests/node, tests/go): the client's Detect and Explain results,
printed as JSON, equal the Python SDK's for the same model and rows, and the SDK sees the same refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pynomaly import Client, DetectResult
from pynomaly.client_errors import InvalidArgumentError, NotFoundError


def assert_like_the_sdk(result: dict[str, Any], address: str, name: str, version: int,
                        score: np.ndarray) -> tuple[DetectResult, Any, Any]:
    """(the SDK's Detect result, its wrong-width refusal, its unknown-model refusal) for the client's own checks."""
    model = f"{name}@{version}"
    with Client(address) as client:
        expected = client.detect(model, score)
        explained = client.explain(model, score)
        with pytest.raises(InvalidArgumentError) as wrong_width:
            client.detect(model, score[:, :-1])
        with pytest.raises(NotFoundError) as unknown:
            client.detect(f"{name}-missing", score)

    detect = result["detect"]
    assert (detect["model_name"], detect["model_version"]) == (name, version)
    np.testing.assert_array_equal(np.array(detect["anomaly_scores"], dtype=np.float32), expected.anomaly_scores)
    np.testing.assert_array_equal(detect["is_anomaly"], expected.is_anomaly)
    assert detect["threshold"] == expected.threshold
    assert expected.is_anomaly[-10:].all()  # the planted outliers

    ex = result["explain"]
    assert ex["method"] == "EXPLAIN_METHOD_TREE_SHAP"
    assert ex["feature_names"] == [f"f{i}" for i in range(score.shape[1])]
    contributions = np.array(ex["contributions"]).reshape(score.shape)
    np.testing.assert_allclose(contributions, explained.contributions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.array(ex["base_values"]) + contributions.sum(axis=1), ex["anomaly_scores"],
                               rtol=1e-6, atol=1e-9)
    return expected, wrong_width.value, unknown.value
