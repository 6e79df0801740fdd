"""The web console's pure parts: the route → scope table, sign-in targets, the drift buckets behind the model card's
plot, and the result store's paging, sorting and CSV (tests/integration/test_console.py has the pages)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from starlette.routing import Mount, Route

from pynomaly import auth
from pynomaly.errors import InvalidArgument, NotFound
from pynomaly.web.console import access, plots, routes
from pynomaly.web.console.pages import local_target
from pynomaly.web.console.results import Result, Results


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_console_route_needs_a_scope_from_the_one_table():
    checked = 0
    for route in routes():
        if isinstance(route, Mount):  # the assets: open
            assert access.method_of("GET", route.path + "/console.css") is None
            continue
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method == "HEAD":
                continue
            need = access.method_of(method, _concrete(route.path))
            if route.path in ("/login", "/logout"):
                assert need is None
            else:
                assert need in auth.METHOD_SCOPES, (method, route.path, need)
                checked += 1
    assert checked >= 19


@pytest.mark.parametrize(("method", "path", "rpc"), [
    ("GET", "/", "/pynomaly.v1.ModelService/ListModels"),
    ("GET", "/models/m", "/pynomaly.v1.ModelService/ListModelVersions"),
    ("POST", "/models/m/aliases", "/pynomaly.v1.ModelService/SetModelAlias"),
    ("POST", "/models/m/aliases/prod/delete", "/pynomaly.v1.ModelService/DeleteModelAlias"),
    ("POST", "/models/m/versions/2/delete", "/pynomaly.v1.ModelService/DeleteModelVersion"),
    ("GET", "/train", "/pynomaly.v1.TrainService/ListAlgorithms"),
    ("POST", "/train", "/pynomaly.v1.TrainService/CreateTrainingJob"),
    ("GET", "/jobs/job-1", "/pynomaly.v1.TrainService/ListTrainingJobs"),
    ("POST", "/jobs/job-1/cancel", "/pynomaly.v1.TrainService/CancelTrainingJob"),
    ("POST", "/jobs/batch/b/cancel", "/pynomaly.v1.DetectService/CancelBatchDetectJob"),
    ("POST", "/score", "/pynomaly.v1.DetectService/Detect"),
    ("POST", "/score/batch", "/pynomaly.v1.DetectService/CreateBatchDetectJob"),
    ("GET", "/results/r/download", "/pynomaly.v1.DetectService/Detect"),
    ("GET", "/results/r/rows/3/explain", "/pynomaly.v1.ExplainService/Explain"),
    ("GET", "/anything/else", "/pynomaly.v1.ModelService/ListModels"),
])
def test_routes_map_onto_the_rpc_whose_scope_they_need(method, path, rpc):
    assert access.method_of(method, path) == rpc


@pytest.mark.parametrize(("target", "expected"), [
    ("/models/m?version=2", "/models/m?version=2"), ("/", "/"), ("https://evil.example/x", "/"),
    ("//evil.example/x", "/"), ("javascript:alert(1)", "/"), ("models", "/"), ("", "/"),
])
def test_sign_in_returns_only_to_a_page_of_this_site(target, expected):
    assert local_target(target) == expected


def test_csrf_tokens_belong_to_one_session():
    sid, new = access.session_id(_request({}))
    assert new and len(sid) == 32
    assert access.session_id(_request({access.SESSION_COOKIE: sid})) == (sid, False)
    assert access.session_id(_request({access.SESSION_COOKIE: "not-a-session-id"}))[0] != "not-a-session-id"
    other, _ = access.session_id(_request({}))
    assert access.csrf_token(sid) != access.csrf_token(other)
    access.check_csrf(_request({access.SESSION_COOKIE: sid}), access.csrf_token(sid))
    with pytest.raises(Exception, match="CSRF token is missing or out of date"):
        access.check_csrf(_request({access.SESSION_COOKIE: sid}), access.csrf_token(other))
    with pytest.raises(Exception, match="CSRF token is missing or out of date"):
        access.check_csrf(_request({}), access.csrf_token(sid))


def _request(cookies: dict[str, str]):
    from starlette.requests import Request

    header = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"cookie", header)] if cookies
                    else [], "query_string": b""})


MANIFEST = {"threshold": 0.8, "training_scores": {"min": 0.0, "max": 1.0, "mean": 0.5,
                                                  "quantile_levels": [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99],
                                                  "quantiles": [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]}}


def test_drift_buckets_share_the_training_distribution_and_the_served_counts():
    buckets = plots.drift_buckets(MANIFEST, None)
    assert sum(b["training"] for b in buckets) == pytest.approx(1.0)
    assert all("served" not in b for b in buckets)
    # uniform training scores on [0, 1]: each bucket's share is its width
    inner = buckets[1:-1]
    assert [round(b["training"], 6) for b in inner] == [round(b["to"] - b["from"], 6) for b in inner]
    bounds = sorted({0.0, 1.0, 0.8, *MANIFEST["training_scores"]["quantiles"]})
    counts = [0] * (len(bounds) + 1)
    counts[-1] = 30  # above the training maximum
    counts[len(bounds) // 2] = 70
    served = plots.drift_buckets(MANIFEST, {"bounds": bounds, "counts": counts, "rows": 100, "flagged": 30})
    assert [b.get("served") for b in served][-1] == 0.3 and sum(b["served"] for b in served) == pytest.approx(1)
    assert served[-1]["label"] == "> 1" and served[0]["label"] == "≤ 0"
    spec = plots.drift(served, 0.8)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "rect", "rule"]
    assert spec["layer"][2]["data"]["values"] == [{"threshold": 0.8}]
    assert plots.drift_buckets({"threshold": 1.0}, None) == []  # an imported model: no training summary


def _result(n: int = 120, owner: str = "me") -> Result:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    scores = rng.normal(size=n)
    return Result(owner=owner, name="m", version=1, file_name="f.csv", feature_names=["a", "b,c", "d"], X=X,
                  scores=scores, flagged=scores > 1.0, threshold=1.0)


def test_result_pages_sort_and_check_their_arguments():
    r = _result()
    first, pages = r.page(1)
    assert pages == 3 and len(first) == 50
    assert list(first) == list(np.argsort(-r.scores, kind="stable")[:50])
    assert list(r.page(3)[0]) == list(np.argsort(-r.scores, kind="stable")[100:])
    assert list(r.page(1, "row", False)[0]) == list(range(50))
    assert list(r.page(1, "f2", True)[0]) == list(np.argsort(-r.X[:, 2], kind="stable")[:50])
    with pytest.raises(InvalidArgument, match=r"page: must be in \[1, 3\], got 4"):
        r.page(4)
    with pytest.raises(InvalidArgument, match="sort: 'f3' is not a column of this result"):
        r.page(1, "f3")


def test_result_csv_holds_every_row_in_full_precision():
    r = _result(25_001)
    text = b"".join(r.csv()).decode()
    assert text.splitlines()[0] == 'row,score,is_anomaly,a,"b,c",d'
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
    assert table.shape == (25_001, 6)
    np.testing.assert_array_equal(table[:, 0], np.arange(25_001))
    np.testing.assert_array_equal(table[:, 1], r.scores)
    np.testing.assert_array_equal(table[:, 2].astype(bool), r.flagged)
    np.testing.assert_array_equal(table[:, 3:], r.X)


def test_results_are_per_session_and_bounded():
    store = Results(max_results=2)
    a, b, c = (store.add(_result(owner="me")) for _ in range(3))
    assert store.get(c.id, "me") is c and store.get(b.id, "me") is b
    with pytest.raises(NotFound, match="the oldest dropped beyond 2"):
        store.get(a.id, "me")
    with pytest.raises(NotFound):
        store.get(c.id, "someone else")
    small = Results(max_bytes=1)  # one result is always kept, however big
    only = small.add(_result())
    assert small.get(only.id, "me") is only


def test_the_histogram_has_the_threshold_as_a_bin_edge():
    r = _result(1000)
    edges, counts = r.histogram()
    assert len(counts) == 40 and counts.sum() == 1000
    assert r.threshold in edges  # no bin holds flagged rows and others
    over = edges[:-1] >= r.threshold
    assert counts[over].sum() == int(r.flagged.sum())
