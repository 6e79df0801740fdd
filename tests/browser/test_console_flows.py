"""The web console in Chromium, as a person uses it: sign in; train from an uploaded file and follow the job to
the model card and its plot; score a file (flagged rows first, sorting and paging in place, an explanation, the
CSV); cancel a running job. axe-core (WCAG 2.1 A/AA) on every page and a screenshot of each in test-results/console/
(test_console_input.py: bad input, the keyboard alone, the other pages). Statuses and exact HTTP behaviour are
tests/integration/test_console.py's.

PYNOMALY_SCREENSHOTS=DIR (make console-screenshots) also saves the model card and a scored file's page at 1280×900
as DIR/console-model-card.png and DIR/console-score.png, the README's pictures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.browser.console_pages import (
    NAMES,
    SCORED_ROWS,
    TOKEN,
    assert_error_next_to,
    assert_focus_ring,
    focus_state,
    readme_screenshot,
    rows_shown,
    tab_to,
    versions,
)


def test_sign_in_then_an_empty_console(page: Page, axe, shot, another_console_server,
                                       tmp_path_factory: pytest.TempPathFactory):
    """A server with --auth-tokens: the sign-in page, a refused token next to its field, then the console's
    first page with no model yet."""
    tokens = tmp_path_factory.mktemp("console-auth") / "tokens"
    tokens.write_text(f"{TOKEN} detect,explain,train,admin\n")
    with another_console_server(auth_tokens=str(tokens)) as server:
        page.goto(server.url + "/")
        expect(page).to_have_url(server.url + "/login?next=%2F")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        axe(page)
        shot(page, "login")
        page.get_by_label("Token").fill("not-a-token")
        page.get_by_role("button", name="Sign in").click()
        assert_error_next_to(page, "token", "invalid token")
        axe(page)
        shot(page, "login-error")
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_label("Token").press("Enter")
        expect(page).to_have_url(server.url + "/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Models")
        expect(page.locator("#models-table")).to_have_text("No models yet. Train one from a CSV or Parquet file.")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        axe(page)
        shot(page, "models-empty")


def test_train_from_an_upload_and_open_the_model_card(page: Page, axe, shot, console_server, client, files):
    page.goto(console_server.url + "/train")
    axe(page)
    shot(page, "train")
    page.get_by_label("Model name").fill("uploaded")
    page.get_by_label("Upload a file").set_input_files(files.train)
    page.get_by_label("Description (optional)").fill("trained in the browser")
    page.get_by_role("textbox", name=re.compile(r"^n_estimators ")).fill("60")
    page.get_by_role("textbox", name=re.compile(r"^random_state ")).fill("0")
    page.get_by_role("button", name="Start training").click()

    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/jobs/job-[0-9a-f]+$"))
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=60_000)  # htmx polls the job page
    expect(page.locator("#job-status")).not_to_have_attribute("hx-trigger", re.compile("."))  # polling stopped
    expect(page.locator("ol.stages li")).to_have_text(["✓ done: fit the detector", "✓ done: export to ONNX",
                                                       "✓ done: check the ONNX scores against the library's"])
    axe(page)
    shot(page, "job-succeeded")

    page.get_by_role("link", name="Open the model card of version 1").click()
    expect(page).to_have_url(console_server.url + "/models/uploaded?version=1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Model uploaded")
    card = client.get_model("uploaded@1")
    assert card.params["n_estimators"].number_value == 60 and card.description == "trained in the browser"
    expect(page.get_by_role("row", name="n_estimators")).to_have_text("n_estimators60")
    expect(page.get_by_text("No rows of this version were scored since the server started")).to_be_visible()
    plot = page.locator('[data-plot="drift-spec"]')
    expect(plot.locator("svg")).to_be_visible()  # vega-embed drew it
    expect(plot.locator("svg")).to_have_attribute("aria-hidden", "true")  # the container carries the alternative
    figure = plot.locator("xpath=..")  # role=img with the text alternative; the drawing inside it
    expect(figure).to_have_accessible_name(re.compile(r"^Distribution of the training scores .* The table below "
                                                      r"lists the shares\.$"))
    # The text alternative: the same distributions as a table, behind a disclosure.
    table = page.locator("details").filter(has_text="The distributions as a table").locator("table")
    expect(table).to_be_hidden()
    page.get_by_text("The distributions as a table").click()
    expect(table).to_be_visible()
    shares = [float(t.removesuffix(" %")) for t in table.locator("tbody td:nth-child(2)").all_inner_texts()]
    assert len(shares) >= 3 and abs(sum(shares) - 100) < 0.5, shares
    axe(page)
    shot(page, "model-card")

    # Aliases, then deleting the version through its confirmation page.
    page.get_by_label("Alias", exact=True).fill("production")
    page.get_by_role("button", name="Set alias").click()
    expect(page.get_by_role("button", name="Remove alias production")).to_be_visible()
    assert client.get_model("uploaded:production").version == 1
    page.get_by_role("link", name="Delete version 1…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete uploaded version 1")
    axe(page)
    shot(page, "delete")
    page.get_by_role("link", name="No, keep it").click()
    expect(page).to_have_url(console_server.url + "/models/uploaded?version=1")
    assert versions(client, "uploaded") == [1]
    page.get_by_role("link", name="Delete version 1…").click()
    page.get_by_role("button", name="Yes, delete version 1").click()
    expect(page).to_have_url(console_server.url + "/")
    expect(page.get_by_role("link", name="uploaded", exact=True)).to_have_count(0)
    assert "uploaded" not in [m.name for m in client.list_models()]


def test_score_a_file_sort_page_explain_and_download(page: Page, axe, shot, console_server, client, model, files):
    detected = client.detect(f"{model}@1", files.X_readings)
    scores, flagged = detected.anomaly_scores, int(detected.is_anomaly.sum())
    assert 0 < flagged < 50
    page.goto(f"{console_server.url}/models/{model}")
    served = page.get_by_role("region", name="Scores: training and served").locator("p").first
    earlier = re.match(r"Served since the server started: (\d+) rows, (\d+) over", served.inner_text())
    rows_before, over_before = map(int, earlier.groups()) if earlier else (0, 0)  # or "No rows ... were scored"
    page.get_by_role("link", name="Score a file with this version").click()
    expect(page).to_have_url(f"{console_server.url}/score?model={model}%401")
    expect(page.get_by_role("region", name="Score a file in the browser").get_by_label("Model")).to_have_value(
        f"{model}@1")
    axe(page)
    shot(page, "score")
    page.get_by_label("File", exact=True).set_input_files(files.readings)
    page.get_by_role("button", name="Score", exact=True).click()

    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/results/[\w-]+$"))
    result_url = page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Scores of readings.csv")
    expect(page.locator("#flagged-count")).to_have_text(str(flagged))
    histogram = page.locator('[data-plot="hist-spec"]')
    expect(histogram.locator("svg")).to_be_visible()
    expect(histogram.locator("xpath=..")).to_have_accessible_name(
        f"Histogram of {SCORED_ROWS} anomaly scores in 40 bins; {flagged} rows over the threshold "
        f"{detected.threshold:.4g} (dashed line).")
    bins = page.locator("details").filter(has_text="The histogram as a table").locator("tbody tr td:nth-child(3)")
    assert sum(int(c) for c in bins.all_text_contents()) == SCORED_ROWS
    # Flagged first: the highest scores, "yes" on the flagged rows and "no" after them.
    order = np.argsort(-scores, kind="stable")
    expect(page.locator("#result-table caption")).to_have_text("Page 1 of 3, sorted by score (highest first)")
    expect(page.locator("#result-table thead th")).to_have_text([  # over the cells: row, score, flagged, features
        "row, sort descending", "score, sort ascending", "Flagged", "a, sort descending", "b, sort descending",
        "c, sort descending", "d, sort descending", "Explanation"])
    assert rows_shown(page) == order[:50].tolist()
    assert page.locator("#result-table tbody td:nth-child(3)").all_inner_texts() == ["yes"] * flagged + ["no"] * (
        50 - flagged)
    axe(page)
    shot(page, "result")
    readme_screenshot(page, "console-score.png")

    # Sorting and paging swap the table in place (htmx) and put the view in the address bar.
    page.get_by_role("link", name=re.compile(r"^c\s*, sort descending$")).click()
    expect(page).to_have_url(result_url + "?sort=f2&order=desc")
    expect(page.locator("#result-table caption")).to_have_text("Page 1 of 3, sorted by c (highest first)")
    expect(page.locator("th[aria-sort]")).to_have_text("c, sort ascending")  # its link reverses the order
    by_c = np.argsort(-files.X_readings[:, 2], kind="stable")
    assert rows_shown(page) == by_c[:50].tolist()
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(result_url + "?sort=f2&order=desc&page=2")
    expect(page.locator("#result-table caption")).to_have_text("Page 2 of 3, sorted by c (highest first)")
    assert rows_shown(page) == by_c[50:100].tolist()
    expect(page.get_by_role("link", name="Previous page")).to_be_visible()

    # An explanation swaps in below the table and takes the focus.
    row = int(by_c[50])
    page.get_by_role("link", name=f"Explain row {row}", exact=True).click()
    heading = page.locator("#explanation h2")
    # The server's first explanation loads its explainer: seconds on a busy machine.
    expect(heading).to_have_text(re.compile(rf"^Why row {row} scores {scores[row]:.6g}"), timeout=30_000)
    expect(heading).to_be_focused()
    expect(page.locator(f'#explanation [data-plot="explain-spec-{row}"] svg')).to_be_visible()
    expected = client.explain(f"{model}@1", files.X_readings[row: row + 1])
    contributions = expected.contributions[0]
    table = page.locator("#explanation table tbody tr")
    expect(table.locator("th")).to_have_text(sorted(NAMES, key=lambda f: -abs(contributions[NAMES.index(f)])))
    shown = dict(zip(table.locator("th").all_inner_texts(), table.locator("td:nth-child(3)").all_inner_texts(),
                     strict=True))
    assert shown == {f: f"{contributions[i]:+.4g}" for i, f in enumerate(NAMES)}
    expect(page.locator("#explanation dl")).to_contain_text(f"Base value{expected.base_values[0]:.6g} (the score")
    axe(page)
    shot(page, "result-explanation")

    # The whole result as CSV.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download every row's score (CSV)").click()
    assert download.value.suggested_filename == "readings-scores.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "row,score,is_anomaly,a,b,c,d" and len(lines) == SCORED_ROWS + 1
    table_csv = np.loadtxt(lines[1:], delimiter=",")
    np.testing.assert_array_equal(table_csv[:, 0], np.arange(SCORED_ROWS))
    np.testing.assert_array_equal(table_csv[:, 1], scores)

    # Without JavaScript the link opens the explanation as a page of its own.
    page.goto(console_server.url + page.get_by_role("link", name=f"Explain row {row}", exact=True).get_attribute(
        "href"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Row {row} of readings.csv")
    expect(page.locator(f'[data-plot="explain-spec-{row}"] svg')).to_be_visible()
    axe(page)
    shot(page, "explanation")
    page.get_by_role("link", name="Back to the scores of readings.csv").click()

    # Back on the card, the rows scored here are counted among the served ones, drawn beside the training scores.
    page.get_by_role("link", name=f"{model} version 1").click()
    expect(served).to_have_text(re.compile(rf"^Served since the server started: {rows_before + SCORED_ROWS} rows, "
                                           rf"{over_before + flagged} over the threshold"))
    expect(page.locator('[data-plot="drift-spec"] svg')).to_be_visible()
    readme_screenshot(page, "console-model-card.png", clip_to=page.get_by_role("link", name="Score a file with "
                                                                                             "this version"))


def test_cancel_a_running_job_with_the_keyboard(page: Page, axe, shot, console_server, client, files):
    """Algorithm auto on 3000 rows × 8 runs for seconds: the job page polls it (htmx) and its Cancel button keeps
    the focus through each poll's swap, so a keyboard user can press it."""
    page.goto(console_server.url + "/train")
    page.get_by_label("Model name").fill("slow")
    page.get_by_label("Upload a file").set_input_files(files.slow)
    page.get_by_label("Algorithm").select_option("auto")
    expect(page.locator("#params legend")).to_have_text("Parameters of auto")  # htmx swapped the parameters in
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/jobs/job-[0-9a-f]+$"))
    expect(page.locator("#job-state")).to_have_text(re.compile(r"^(queued|running)$"))
    expect(page.locator("#job-status")).to_have_attribute("hx-trigger", "every 1s")
    axe(page)
    shot(page, "job-running")
    cancel = page.get_by_role("button", name="Cancel this job")
    tab_to(page, cancel)
    page.evaluate("() => new Promise(done => document.addEventListener('htmx:afterSettle', done, {once: true}))")
    assert_focus_ring(focus_state(page, cancel))  # the status was swapped: the new button has the focus
    assert focus_state(page, cancel)["hit"]
    page.keyboard.press("Enter")
    expect(page.locator("#job-state")).to_have_text("cancelled")
    expect(page.locator("#job-message")).to_have_text("cancelled by a client")
    expect(cancel).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Open the model card"))).to_have_count(0)
    assert "slow" not in [m.name for m in client.list_models()]
    axe(page)
    shot(page, "job-cancelled")
