"""The web console over HTTP on the real server, both engines: every page, every form, and every bad input with
its exact status and the API's message next to the field, nothing changed by a refused form. The browser suite
(tests/browser) drives the same pages in Chromium."""

from __future__ import annotations

import html
import re
import time

import numpy as np
import pytest
import requests

from tests.integration.console_client import Console, csv_bytes, error_message, field_error

NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def console(server) -> Console:
    return Console(server.http_address)


@pytest.fixture(scope="module")
def trained_here(console, client, blobs):
    """Model 'console-m' trained from the Train page's upload (version 1); returns its card."""
    response = console.post("/train", {"name": "console-m", "algorithm": "iforest", "param.n_estimators": "40",
                                       "param.random_state": "0", "description": "from the console"},
                            files={"file": ("train.csv", csv_bytes(blobs[0], NAMES))})
    assert response.status_code == 303, response.text
    job_id = response.headers["location"].removeprefix("/jobs/")
    job = client.wait(job_id)
    assert job.model_version == 1
    return client.get_model("console-m@1")


def versions(client, name: str) -> list[int]:
    return [v.version for v in client.list_model_versions(name)]


def test_models_page_lists_every_model_and_filters(console, trained_here):
    page = console.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<a href="/models/console-m">console-m</a>' in page.text
    assert "iforest" in page.text
    filtered = console.get("/?q=from+the+CONSOLE")  # description, any case
    assert "console-m" in filtered.text
    none = console.get("/?q=no-such-thing")
    assert "console-m" not in none.text and "No model matches “no-such-thing”" in none.text
    fragment = console.get("/?q=console-m", headers={"HX-Request": "true"})  # htmx: the table alone
    assert fragment.text.lstrip().startswith("<div id=\"models-table\"") and "<html" not in fragment.text


def test_pages_carry_security_headers(console):
    page = console.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    cookie = requests.get(console.base + "/", timeout=30).headers["set-cookie"]  # a new browser: a new session
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_trained_from_the_console_scores_as_over_grpc(client, trained_here, blobs):
    assert trained_here.feature_names == NAMES
    assert trained_here.description == "from the console"
    assert trained_here.params["n_estimators"].number_value == 40
    assert trained_here.params["random_state"].number_value == 0
    native = client.detect("console-m@1", blobs[1]).anomaly_scores
    over_grpc = client.train("console-grpc", blobs[0], algorithm="iforest",
                             params={"n_estimators": 40, "random_state": 0})
    np.testing.assert_array_equal(client.detect(f"console-grpc@{over_grpc.version}", blobs[1]).anomaly_scores, native)


def test_model_card_shows_card_plot_and_table(console, client, trained_here, blobs):
    client.detect("console-m@1", blobs[1])  # served scores: the drift plot's second series
    page = console.get("/models/console-m").text
    assert "Version 1" in page and "a, b, c, d, e" in page
    assert 'data-plot="drift-spec"' in page
    spec = re.search(r'<script type="application/json" id="drift-spec">(.*?)</script>', page, re.S).group(1)
    assert '"served scores"' in spec and '"training scores"' in spec
    assert "ONNX scores match" in page and "max relative error" in page
    served = re.search(r"Served since the server started: (\d+) rows, (\d+) over the threshold", page)
    assert served and int(served.group(1)) >= 50


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/models/no-such-model", 404, "model 'no-such-model' not found"),
    ("/models/console-m?version=x", 400, "version: must be a version number ≥ 1, got 'x'"),
    ("/models/console-m?version=99", 400, "version: model 'console-m' has no version 99; its versions: 1"),
    ("/no/such/page", 404, "no page /no/such/page: the console's pages are Models (/), Train, Score and Jobs; "
                           "the API is under /v2"),
    ("/jobs/job-0000000000000000", 404, "training job 'job-0000000000000000' not found"),
    ("/results/nothing-here", 404, "result 'nothing-here' is not here: results are kept in this browser session's "
                                   "memory, the oldest dropped beyond 32; score the file again"),
])
def test_bad_pages_answer_with_status_and_message(console, trained_here, path, status, message):
    response = console.get(path)
    assert response.status_code == status
    assert error_message(response.text) == message


def test_api_routes_and_api_clients_keep_json_errors(console):
    response = console.get("/v2/no-such-route")
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    api_client = requests.get(console.base + "/v3/models", timeout=30)  # not asking for HTML: the API's body
    assert api_client.status_code == 404 and api_client.json() == {
        "error": "no route /v3/models; the API is under /v2 (the Open Inference Protocol)"}


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(console, client, trained_here, blobs):
    before = versions(client, "console-m")
    for csrf in ("", "0" * 64):
        response = console.post("/train", {"name": "console-m", "algorithm": "iforest"}, csrf=csrf,
                                files={"file": ("train.csv", csv_bytes(blobs[0], NAMES))})
        assert response.status_code == 403
        assert error_message(response.text) == ("the form's CSRF token is missing or out of date: reload the page "
                                                "and submit again")
        assert console.post("/models/console-m/versions/1/delete", csrf=csrf).status_code == 403
    assert versions(client, "console-m") == before


@pytest.mark.parametrize(("data", "file", "field", "status", "message"), [
    ({"name": "bad name"}, None, "name", 400,
     "model_name 'bad name' is invalid: use 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit"),
    ({"param.n_estimators": "abc"}, None, "param.n_estimators", 400,
     'params.n_estimators: must be an integer, got string "abc"'),
    ({"param.n_estimators": "0"}, None, "param.n_estimators", 400,
     "params.n_estimators: must be an integer in [1, 10000], got number 0"),
    ({"algorithm": "no-such-algorithm"}, None, "algorithm", 400, None),  # the message: the next test
    ({"contamination": "lots"}, None, "contamination", 400, "contamination: must be a number in (0, 0.5], got 'lots'"),
    ({"contamination": "0.9"}, None, "contamination", 400, "contamination must be in (0, 0.5], got 0.9"),
    ({}, ("notes.txt", b"a,b\n1,2\n"), "file", 400,
     "file: notes.txt: unsupported file type '.txt'; use one of .csv, .parquet, .npz"),
    ({}, ("words.csv", b"a,b\n1,x\n2,y\n"), "file", 400,
     "file: words.csv: column 'b' is not numeric (1 non-numeric column(s) in all)"),
    ({}, ("one.csv", b"a,b\n1,2\n"), "file", 400, "matrix: training needs at least 2 rows, got 1"),
    ({"label_column": "nope"}, None, "label_column", 400,
     "label_column: train.csv has no column 'nope'; its columns: a, b, c, d, e"),
    ({"algorithm": "xgbod"}, None, "label_column", 400,
     "label_column: algorithm 'xgbod' learns from labels: name the file's column of 0/1 labels (1 = anomaly)"),
    ({}, "none", "file", 400, "file: choose a file to upload (CSV, Parquet or .npz), or pick one on the server"),
])
def test_bad_training_forms_show_the_api_message_next_to_the_field(console, client, trained_here, blobs, data,
                                                                    file, field, status, message):
    before = versions(client, "console-m")
    fields = {"name": "console-m", "algorithm": "iforest"} | data
    files = None if file == "none" else {"file": file or ("train.csv", csv_bytes(blobs[0], NAMES))}
    response = console.post("/train", fields, files=files)
    assert response.status_code == status, response.text[:2000]
    shown = field_error(response.text, field)
    assert shown is not None, f"no message next to {field}"
    if message is not None:
        assert shown == message
    assert 'href="#' + field + '"' in response.text  # the error summary links to the field
    for name, value in fields.items():  # what was typed is kept
        if value and name != "csrf_token":
            assert f'value="{html.escape(value, quote=True)}"' in response.text or name == "algorithm"
    assert versions(client, "console-m") == before


def test_unknown_algorithm_message_lists_the_algorithms(console, blobs):
    unknown = console.post("/train", {"name": "x1", "algorithm": "no-such-algorithm"},
                           files={"file": ("train.csv", csv_bytes(blobs[0], NAMES))})
    assert field_error(unknown.text, "algorithm").startswith(
        "algorithm: unknown algorithm 'no-such-algorithm'; available: abod, ae1svm, alad, anogan, auto,")


def test_upload_over_the_limit_is_refused_before_it_is_read(console, client, trained_here):
    big = b"a,b,c,d,e\n" + b"1,2,3,4,5\n" * (9 * 2**20 // 10)  # 9 MB: the server allows 8 (--max-message-mb)
    response = console.post("/train", {"name": "console-big", "algorithm": "iforest"},
                            files={"file": ("big.csv", big)})
    assert response.status_code == 413
    assert error_message(response.text).startswith("upload: ") and "limit of 8,388,608 bytes" in \
        error_message(response.text)
    assert "console-big" not in [m.name for m in client.list_models()]


def test_training_from_a_file_under_the_data_root(console, client, server, blobs):
    (server.data_root / "console.csv").write_bytes(csv_bytes(blobs[0], NAMES))
    form = console.get("/train").text
    assert '<option value="console.csv"' in form
    response = console.post("/train", {"name": "console-root", "algorithm": "hbos", "data_uri": "console.csv"})
    assert response.status_code == 303
    job = client.wait(response.headers["location"].removeprefix("/jobs/"))
    assert client.get_model(f"console-root@{job.model_version}").feature_names == NAMES
    outside = console.post("/train", {"name": "console-root", "algorithm": "hbos", "data_uri": "../etc/passwd"})
    assert outside.status_code == 403
    assert field_error(outside.text, "data_uri") == "data_uri: '../etc/passwd' is outside the server's data root"


def test_params_fragment_follows_the_algorithm(console):
    fragment = console.get("/train/params?algorithm=knn", headers={"HX-Request": "true"}).text
    assert 'id="param.n_neighbors"' in fragment and "<html" not in fragment
    bad = console.get("/train/params?algorithm=nope")
    assert bad.status_code == 400 and error_message(bad.text).startswith("algorithm: unknown algorithm 'nope'; ")
    page = console.get("/train?algorithm=lof").text  # without JavaScript: the GET form's "show parameters"
    assert 'id="param.n_neighbors"' in page and '<option value="lof" selected>' in page


def test_job_page_shows_progress_and_the_model(console, trained_here):
    jobs = console.get("/jobs").text
    job_id = re.search(r'<a href="/jobs/(job-[0-9a-f]+)">', jobs).group(1)
    page = console.get(f"/jobs/{job_id}").text
    assert 'id="job-state">succeeded<' in page
    assert "✓</span> done: fit the detector" in page and "check the ONNX scores" in page
    status = console.get(f"/jobs/{job_id}", headers={"HX-Request": "true"}).text
    assert status.lstrip().startswith('<div id="job-status"') and "hx-trigger" not in status  # finished: no polling


def test_job_page_shows_the_epoch_of_a_fit_in_epochs(console, client):
    X = np.random.default_rng(8).normal(size=(5000, 4))
    job = client.start_training("console-epochs", X, algorithm="auto_encoder",
                                params={"epoch_num": 100_000, "batch_size": 5000})
    try:
        deadline = time.monotonic() + 120
        while not (m := re.search(r'in progress: fit the detector <span id="fit-progress">\(epoch (\d+) of 100000\)',
                                  page := console.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).text)):
            assert time.monotonic() < deadline, page
            time.sleep(0.5)
        assert 1 <= int(m.group(1)) < 100_000
    finally:
        client.cancel_training(job.id)
    page = console.get(f"/jobs/{job.id}").text
    assert 'id="job-state">cancelled<' in page and "fit-progress" not in page


def test_cancel_a_queued_and_a_running_job(console, client):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 8))
    names = [f"x{i}" for i in range(8)]
    slow = console.post("/train", {"name": "console-slow", "algorithm": "auto"},
                        files={"file": ("slow.csv", csv_bytes(X, names))})
    queued = console.post("/train", {"name": "console-queued", "algorithm": "iforest"},
                          files={"file": ("q.csv", csv_bytes(X[:100], names))})
    slow_id = slow.headers["location"].removeprefix("/jobs/")
    queued_id = queued.headers["location"].removeprefix("/jobs/")
    running = console.get(f"/jobs/{slow_id}").text
    assert 'hx-trigger="every 1s"' in running and "Cancel this job" in running
    for job_id in (queued_id, slow_id):
        response = console.post(f"/jobs/{job_id}/cancel")
        assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job_id}"
    for job_id in (queued_id, slow_id):
        deadline = time.monotonic() + 60
        while 'id="job-state">cancelled<' not in (page := console.get(f"/jobs/{job_id}").text):
            assert time.monotonic() < deadline, page
            time.sleep(0.5)
        assert "Cancel this job" not in page
    names_now = [m.name for m in client.list_models()]
    assert "console-slow" not in names_now and "console-queued" not in names_now


def test_score_a_file_flagged_first_with_download_and_explanation(console, client, trained_here, blobs):
    page = console.get("/score?model=console-m").text
    assert 'value="console-m"' in page
    response = console.post("/score", {"model": "console-m@1"}, files={"file": ("new.csv", csv_bytes(blobs[1],
                                                                                                      NAMES))})
    assert response.status_code == 303
    result = response.headers["location"]
    detected = client.detect("console-m@1", blobs[1])
    page = console.get(result).text
    flagged = int(detected.is_anomaly.sum())
    assert f'<strong id="flagged-count">{flagged}</strong>' in page
    scores = detected.anomaly_scores
    rows = [int(r) for r in re.findall(r'<th scope="row">(\d+)</th>', page)]
    assert rows[:flagged] == sorted(np.flatnonzero(detected.is_anomaly), key=lambda i: -scores[i])
    assert rows == list(np.argsort(-scores, kind="stable"))  # all 50 on one page, highest first
    assert 'data-plot="hist-spec"' in page
    ascending = console.get(result + "?sort=score&order=asc").text
    assert int(re.search(r'<th scope="row">(\d+)</th>', ascending).group(1)) == int(np.argmin(scores))
    by_feature = console.get(result + "?sort=f2&order=desc", headers={"HX-Request": "true",
                                                                    "HX-Target": "result-table"}).text
    assert by_feature.lstrip().startswith('<div id="result-table">')
    assert int(re.search(r'<th scope="row">(\d+)</th>', by_feature).group(1)) == int(np.argmax(blobs[1][:, 2]))
    csv = console.get(result + "/download")
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="new-scores.csv"' in csv.headers["content-disposition"]
    table = np.loadtxt(csv.text.splitlines()[1:], delimiter=",")
    assert csv.text.splitlines()[0] == "row,score,is_anomaly,a,b,c,d,e"
    np.testing.assert_array_equal(table[:, 1], scores)  # full precision: the same doubles
    np.testing.assert_array_equal(table[:, 2].astype(bool), detected.is_anomaly)
    np.testing.assert_array_equal(table[:, 3:], blobs[1])
    top = rows[0]
    explanation = console.get(f"{result}/rows/{top}/explain", headers={"HX-Request": "true"}).text
    assert f"Why row {top} scores" in explanation and "(flagged)" in explanation
    expected = client.explain("console-m@1", blobs[1][top: top + 1])
    shown = dict(re.findall(r'<tr><th scope="row">([a-e])</th><td>[^<]*</td><td>([+-][0-9.e+-]+)</td></tr>',
                            explanation))
    assert list(shown) == sorted(NAMES, key=lambda f: -abs(expected.contributions[0][NAMES.index(f)]))
    for feature, text in shown.items():  # as printed, 4 significant digits
        assert text == f"{expected.contributions[0][NAMES.index(feature)]:+.4g}"
    assert f"{expected.base_values[0]:.6g} (the score with no feature" in explanation
    assert f"Method</dt><dd>{expected.method}<" in explanation
    assert 'data-plot="explain-spec-' in explanation


def test_bad_scoring_input(console, client, trained_here, blobs):
    wrong = console.post("/score", {"model": "console-m"}, files={"file": ("w.csv", csv_bytes(blobs[1][:, :3],
                                                                                              NAMES[:3]))})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "file") == "rows: expected 5 columns (the model's feature count), got 3"
    unknown = console.post("/score", {"model": "nope"}, files={"file": ("n.csv", csv_bytes(blobs[1], NAMES))})
    assert unknown.status_code == 404 and field_error(unknown.text, "model") == "model 'nope' not found"
    threshold = console.post("/score", {"model": "console-m", "threshold": "inf"},
                             files={"file": ("n.csv", csv_bytes(blobs[1], NAMES))})
    assert field_error(threshold.text, "threshold") == "threshold: must be a finite number, got 'inf'"
    missing = console.post("/score", {"model": "console-m"})
    assert field_error(missing.text, "file") == "file: choose a file to score (CSV, Parquet or .npz)"


def test_results_and_rows_are_checked(console, trained_here, blobs):
    result = console.post("/score", {"model": "console-m"}, files={"file": ("n.csv", csv_bytes(blobs[1], NAMES))}
                          ).headers["location"]
    for query, message in [("?page=9", "page: must be in [1, 1], got 9"),
                           ("?page=x", "page: must be a whole number, got 'x'"),
                           ("?sort=zz", "sort: 'zz' is not a column of this result; sort on score, row or f0..f4"),
                           ("?order=up", "order: must be asc or desc, got 'up'")]:
        response = console.get(result + query)
        assert response.status_code == 400 and error_message(response.text) == message
    row = console.get(result + "/rows/50/explain")
    assert row.status_code == 400 and error_message(row.text) == "row: must be in [0, 49], got 50"
    stranger = Console(console.base.removeprefix("http://"))  # another browser session
    assert stranger.get(result).status_code == 404


def test_aliases_and_deleting_a_version(console, client, trained_here, blobs):
    client.train("console-m", blobs[0], algorithm="iforest", params={"n_estimators": 10, "random_state": 1})
    assert console.post("/models/console-m/aliases", {"alias": "production", "version": "1"}).status_code == 303
    assert client.get_model("console-m:production").version == 1
    moved = console.post("/models/console-m/aliases", {"alias": "production", "version": "2"})
    assert moved.status_code == 303 and client.get_model("console-m:production").version == 2
    for data, field, message in [
        ({"alias": "latest", "version": "1"}, "alias",
         "alias 'latest' is reserved: a plain model name already means the latest version"),
        ({"alias": "123", "version": "1"}, "alias", "alias '123' is invalid: an alias cannot be all digits"),
        ({"alias": "staging", "version": "zero"}, "version", "version: must be a version number ≥ 1, got 'zero'"),
    ]:
        response = console.post("/models/console-m/aliases", data)
        assert response.status_code == 400 and field_error(response.text, field) == message
    assert client.get_model("console-m:production").version == 2
    confirm = console.get("/models/console-m/versions/2/delete").text
    assert "Yes, delete version 2" in confirm and "No, keep it" in confirm
    assert versions(client, "console-m") == [2, 1]  # asking does not delete
    assert console.post("/models/console-m/aliases/production/delete").status_code == 303
    deleted = console.post("/models/console-m/versions/2/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/models/console-m"
    assert versions(client, "console-m") == [1]
    gone = console.post("/models/console-m/versions/7/delete")
    assert gone.status_code == 404 and error_message(gone.text) == "model 'console-m' has no version 7"


def test_no_user_string_is_rendered_unescaped(console, client, blobs):
    client.train("console-xss", blobs[0][:50], algorithm="hbos", description='<script>alert("x")</script>',
                 feature_names=["<b>a</b>", "b", "c", "d", "e"])
    assert "console-xss" in console.get("/?q=script").text  # found by its description
    page = console.get("/models/console-xss").text
    assert "<script>alert" not in page and "<b>a</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "&lt;b&gt;a&lt;/b&gt;, b, c" in page
    search = console.get("/?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").text
    assert "<img src=x" not in search and "&lt;img src=x onerror=alert(1)&gt;" in search


def test_batch_job_from_the_score_page(console, client, server, trained_here, blobs):
    (server.data_root / "console-batch.csv").write_bytes(csv_bytes(blobs[1], NAMES))
    form = console.get("/score").text
    assert '<option value="console-batch.csv"' in form and "Start the batch job" in form
    response = console.post("/score/batch", {"model": "console-m@1", "input_uri": "console-batch.csv",
                                             "output_uri": "console-batch-scores.csv"})
    assert response.status_code == 303 and response.headers["location"].startswith("/jobs/batch/batch-")
    job_id = response.headers["location"].removeprefix("/jobs/batch/")
    deadline = time.monotonic() + 60
    while 'id="job-state">succeeded<' not in (page := console.get(f"/jobs/batch/{job_id}").text):
        assert time.monotonic() < deadline and 'id="job-state">failed<' not in page, page
        time.sleep(0.2)
    expected = client.detect("console-m@1", blobs[1])
    assert f"50 of 50, {int(expected.is_anomaly.sum())} anomalous" in page
    scores = np.loadtxt(server.output_root / "console-batch-scores.csv", delimiter=",", skiprows=1, usecols=0)
    np.testing.assert_array_equal(scores, expected.anomaly_scores)
    assert f'<a href="/jobs/batch/{job_id}">' in console.get("/jobs").text
    again = console.post("/score/batch", {"model": "console-m@1", "input_uri": "console-batch.csv",
                                          "output_uri": "console-batch-scores.csv"})  # exists, no overwrite
    assert again.status_code == 409
    assert field_error(again.text, "output_uri").startswith("output_uri: ")
    outside = console.post("/score/batch", {"model": "console-m@1", "input_uri": "console-batch.csv",
                                            "output_uri": "../escape.csv"})
    assert outside.status_code == 403 and field_error(outside.text, "output_uri").startswith("output_uri: ")
    unknown = console.post("/score/batch", {"model": "nope", "input_uri": "console-batch.csv",
                                            "output_uri": "x.csv"})
    assert unknown.status_code == 404 and field_error(unknown.text, "batch-model") == "model 'nope' not found"
    assert not (server.output_root / "x.csv").exists() and not (server.output_root.parent / "escape.csv").exists()
