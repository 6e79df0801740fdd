"""The web console on a server with --auth-tokens: sign-in with a token (an HttpOnly cookie), each page needing
the scope of the RPC it stands for, the API's messages, sign-out, and a token revoked in the file ending the
console session too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_auth import TOKENS

from pynomaly import Client
from tests.integration.console_client import Console, csv_bytes, error_message, field_error

from conftest import ServerProcess

NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-auth") / "tokens"
    path.write_text("".join(f"{token} {scope if scope != 'all' else 'detect,explain,train,admin'}\n"
                            for scope, token in TOKENS.items()))
    return path


@pytest.fixture(scope="module")
def server(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("store"), "--auth-tokens", str(tokens), "--http-listen",
                        "127.0.0.1:0")
    with Client(srv.address, token=TOKENS["train"]) as client:
        client.train("guarded", np.random.default_rng(0).normal(size=(200, 3)), algorithm="iforest",
                     params={"n_estimators": 10, "random_state": 0}, feature_names=NAMES)
    yield srv
    srv.stop()


def signed_in(server: ServerProcess, scope: str) -> Console:
    console = Console(server.http_address)
    console.get("/login")
    response = console.post("/login?next=/", {"token": TOKENS[scope]})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("pynomaly_token=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    return console


def test_pages_send_a_browser_without_a_token_to_sign_in(server):
    console = Console(server.http_address)
    for path in ("/", "/models/guarded", "/train", "/score", "/jobs"):
        response = console.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login?next=" + path.replace("/",
                                                                                                            "%2F")
    fragment = console.get("/jobs", headers={"HX-Request": "true"})  # htmx follows HX-Redirect
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/login?next=%2Fjobs"
    assert console.get("/login").status_code == 200
    assert console.get("/static/console.js").status_code == 200  # assets are open
    assert console.get("/v2/health/ready").status_code == 200
    assert console.get("/v2/models/guarded").status_code == 401  # the API still wants the header


@pytest.mark.parametrize(("token", "message"), [("", "enter a token"),
                                               ("wrong-token-000000000000000", "invalid token")])
def test_sign_in_refuses_a_bad_token(server, token, message):
    console = Console(server.http_address)
    console.get("/login")
    response = console.post("/login?next=/train", {"token": token})
    assert response.status_code == 401
    assert field_error(response.text, "token") == message
    assert "pynomaly_token" not in response.headers.get("set-cookie", "")


def test_sign_in_goes_back_to_the_page_but_never_off_the_site(server):
    console = Console(server.http_address)
    console.get("/login")
    response = console.post("/login?next=%2Fjobs", {"token": TOKENS["train"]})
    assert response.headers["location"] == "/jobs"
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = console.post("/login?next=" + target, {"token": TOKENS["train"]})
        assert response.headers["location"] == "/"


def test_each_page_needs_the_scope_of_its_rpc(server):
    detect = signed_in(server, "detect")
    assert detect.get("/").status_code == 200 and "guarded" in detect.get("/").text
    assert detect.get("/models/guarded").status_code == 200
    train_page = detect.get("/train")
    assert train_page.status_code == 200  # the form: ListAlgorithms, any token
    refused = detect.post("/train", {"name": "nope", "algorithm": "iforest"},
                          files={"file": ("t.csv", csv_bytes(np.ones((5, 3)), NAMES))})
    assert refused.status_code == 403
    assert error_message(refused.text) == ("the token lacks the scope 'train' that "
                                           "/pynomaly.v1.TrainService/CreateTrainingJob needs")
    jobs = detect.get("/jobs")
    assert jobs.status_code == 403 and error_message(jobs.text) == (
        "the token lacks the scope 'train' that /pynomaly.v1.TrainService/ListTrainingJobs needs")
    deleted = detect.post("/models/guarded/versions/1/delete")
    assert deleted.status_code == 403 and "lacks the scope 'admin'" in error_message(deleted.text)
    scored = detect.post("/score", {"model": "guarded"}, files={"file": ("s.csv", csv_bytes(np.ones((4, 3)), NAMES))})
    assert scored.status_code == 303
    explained = detect.get(scored.headers["location"] + "/rows/0/explain")
    assert explained.status_code == 403 and error_message(explained.text) == (
        "the token lacks the scope 'explain' that /pynomaly.v1.ExplainService/Explain needs")
    with Client(server.address, token=TOKENS["detect"]) as client:
        assert [v.version for v in client.list_model_versions("guarded")] == [1]


def test_full_token_trains_and_signs_out(server):
    console = signed_in(server, "all")
    response = console.post("/train", {"name": "guarded", "algorithm": "hbos"},
                            files={"file": ("t.csv", csv_bytes(np.random.default_rng(1).normal(size=(50, 3)), NAMES))})
    assert response.status_code == 303
    assert console.get(response.headers["location"]).status_code == 200
    out = console.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert console.get("/").status_code == 303


def test_a_token_revoked_in_the_file_ends_its_console_session(server, tokens):
    console = signed_in(server, "explain")
    assert console.get("/").status_code == 200
    text = tokens.read_text()
    try:
        tokens.write_text("".join(line for line in text.splitlines(True) if TOKENS["explain"] not in line))
        import time

        deadline = time.monotonic() + 10
        while console.get("/").status_code == 200:  # the file is read again at most every second
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert console.get("/").headers["location"] == "/login?next=%2F"
    finally:
        tokens.write_text(text)
