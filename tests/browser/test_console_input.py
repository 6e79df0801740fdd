"""The web console in Chromium: bad input shows the API's message next to its field and changes nothing; one whole
flow with the keyboard alone, the focus ring at every stop; the Models, Jobs, batch job and error pages, with
axe-core (WCAG 2.1 A/AA) on each (test_console_flows.py: the main flows)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console_pages import (
    SCORED_ROWS,
    assert_error_next_to,
    assert_focus_ring,
    focus_state,
    rows_shown,
    tab_to,
    versions,
)


@pytest.mark.parametrize("case", ["wrong file type", "bad parameter", "wrong columns"])
def test_bad_input_shows_the_api_message_next_to_the_field(page: Page, axe, shot, console_server, client, model,
                                                           files, case):
    before = versions(client, model)
    if case == "wrong columns":
        served = page.get_by_role("region", name="Scores: training and served").locator("p").first
        page.goto(f"{console_server.url}/models/{model}")
        served_before = served.inner_text()  # "No rows ... scored" or "Served since the server started: N rows, ..."
        page.goto(f"{console_server.url}/score?model={model}")
        page.get_by_label("File", exact=True).set_input_files(files.three_columns)
        page.get_by_role("button", name="Score", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Score a file")
        assert_error_next_to(page, "file", "rows: expected 4 columns (the model's feature count), got 3")
        expect(page.get_by_role("region", name="Score a file in the browser").get_by_label("Model")).to_have_value(
            model)  # what was typed is kept
        axe(page)
        shot(page, "score-errors")
        page.goto(f"{console_server.url}/models/{model}")
        expect(served).to_have_text(served_before)  # no row was scored
    else:
        page.goto(console_server.url + "/train")
        page.get_by_label("Model name").fill(model)  # accepted, this would be its version 2
        n_estimators = page.get_by_role("textbox", name=re.compile(r"^n_estimators "))
        if case == "wrong file type":
            page.get_by_label("Upload a file").set_input_files(files.notes)
            field, message = "file", "file: notes.txt: unsupported file type '.txt'; use one of .csv, .parquet, .npz"
        else:
            page.get_by_label("Upload a file").set_input_files(files.train)
            n_estimators.fill("abc")
            field, message = "param.n_estimators", 'params.n_estimators: must be an integer, got string "abc"'
        page.get_by_role("button", name="Start training").click()
        expect(page).to_have_url(console_server.url + "/train")
        expect(page.get_by_role("heading", level=1)).to_have_text("Train a model")
        assert_error_next_to(page, field, message)
        expect(page.get_by_label("Model name")).to_have_value(model)  # what was typed is kept
        expect(n_estimators).to_have_value("100" if case == "wrong file type" else "abc")
        expect(page.get_by_text("Choose the file again after an error.")).to_be_visible()
        axe(page)
        shot(page, "train-errors-" + field)
    assert versions(client, model) == before


def test_keyboard_alone_train_score_and_explain(page: Page, console_server, client, files):
    """A whole flow without the mouse: Tab, Enter, Space, typing; the focus ring on every stop on the way."""
    # Playwright turns the interception of file choosers on without waiting for it (a listener's subscription):
    # on now, not when expect_file_chooser starts listening just before a key press opens one.
    page.on("filechooser", lambda chooser: None)
    page.goto(console_server.url + "/")
    page.keyboard.press("Tab")  # the skip link is the first stop, shown when it has the focus
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    assert_focus_ring(focus_state(page))
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["height"] > 0
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")  # past the navigation: the first control of the page
    expect(page.get_by_label("Search the models")).to_be_focused()

    page.goto(console_server.url + "/")
    assert tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Train")) == 4
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_server.url + "/train")
    tab_to(page, page.get_by_label("Model name"))
    page.keyboard.type("keyboard")
    tab_to(page, page.get_by_label("Upload a file"))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(files.train)
    tab_to(page, page.get_by_label("Algorithm"))
    page.keyboard.type("hbos")  # the select's type-ahead; htmx swaps hbos's parameters in
    expect(page.locator("#params legend")).to_have_text("Parameters of hbos")
    tab_to(page, page.get_by_role("textbox", name=re.compile(r"^n_bins ")))
    page.keyboard.press("Control+A")
    page.keyboard.type("12")
    page.keyboard.press("Enter")  # submits the form: training, not "Show this algorithm's parameters"
    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/jobs/job-[0-9a-f]+$"))
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=60_000)
    card = client.get_model("keyboard@1")
    assert card.algorithm == "hbos" and card.params["n_bins"].number_value == 12

    tab_to(page, page.get_by_role("link", name="Open the model card of version 1"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_server.url + "/models/keyboard?version=1")
    tab_to(page, page.get_by_text("The distributions as a table"))
    page.keyboard.press("Enter")
    expect(page.locator("details").filter(has_text="The distributions as a table").locator("table")).to_be_visible()
    tab_to(page, page.get_by_role("link", name="Score a file with this version"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_server.url + "/score?model=keyboard%401")
    tab_to(page, page.get_by_label("File", exact=True))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(files.readings)
    tab_to(page, page.get_by_role("button", name="Score", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/results/[\w-]+$"))

    # Sorting and paging swap the table: the focus stays on the link pressed, in the new table.
    tab_to(page, page.get_by_role("link", name=re.compile(r"^score\s*, sort ascending$")))
    page.keyboard.press("Enter")
    expect(page.locator("#result-table caption")).to_have_text("Page 1 of 3, sorted by score (lowest first)")
    expect(page.get_by_role("link", name=re.compile(r"^score\s*, sort descending$"))).to_be_focused()
    assert_focus_ring(focus_state(page))
    tab_to(page, page.get_by_role("link", name="Next page"))
    page.keyboard.press("Enter")
    expect(page.locator("#result-table caption")).to_have_text("Page 2 of 3, sorted by score (lowest first)")
    expect(page.get_by_role("link", name="Next page")).to_be_focused()
    assert_focus_ring(focus_state(page))
    last = rows_shown(page)[-1]
    assert tab_to(page, page.get_by_role("link", name=f"Explain row {last}", exact=True), key="Shift+Tab") == 2
    page.keyboard.press("Enter")
    heading = page.locator("#explanation h2")
    expect(heading).to_have_text(re.compile(rf"^Why row {last} scores "), timeout=30_000)
    expect(heading).to_be_focused()
    expect(page.locator(f'#explanation [data-plot="explain-spec-{last}"] svg')).to_be_visible()


def test_models_jobs_batch_and_error_pages(page: Page, axe, shot, console_server, client, model, files):
    """The pages the flows above do not cover: Models with models (and its search), Jobs, a batch job, an error."""
    page.goto(console_server.url + "/")
    expect(page.get_by_role("link", name=model, exact=True)).to_be_visible()
    axe(page)
    shot(page, "models")
    page.get_by_label("Search the models").fill("FOUR sensors")  # by description, any case; htmx swaps the table
    expect(page).to_have_url(console_server.url + "/?q=FOUR%20sensors")
    expect(page.locator("#models-table tbody th")).to_have_text([model])

    (console_server.data_root / "readings.csv").write_bytes(files.readings.read_bytes())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Score").click()
    batch = page.get_by_role("region", name="Score a large file on the server (batch job)")
    batch.get_by_label("Model").fill("no-such-model")
    batch.get_by_label("Input file under the server's data root").select_option("readings.csv")
    batch.get_by_label("Output", exact=True).fill("readings-scores.parquet")
    batch.get_by_role("button", name="Start the batch job").click()
    assert_error_next_to(page, "batch-model", "model 'no-such-model' not found")
    batch.get_by_label("Model").fill(model)
    batch.get_by_role("button", name="Start the batch job").click()
    expect(page).to_have_url(re.compile(re.escape(console_server.url) + r"/jobs/batch/[\w-]+$"))
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=30_000)
    expect(page.get_by_role("definition").filter(has_text=" of ")).to_have_text(
        re.compile(rf"^{SCORED_ROWS} of {SCORED_ROWS}"))
    assert (console_server.output_root / "readings-scores.parquet").is_file()
    axe(page)
    shot(page, "batch-job")

    page.get_by_role("link", name="All jobs").click()
    expect(page.get_by_role("heading", name="Training jobs")).to_be_visible()
    expect(page.get_by_role("heading", name="Batch scoring jobs")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="readings.csv").locator("td").nth(2)).to_have_text("succeeded")
    axe(page)
    shot(page, "jobs")

    page.goto(console_server.url + "/models/no-such-model")
    expect(page.get_by_role("heading", level=1)).to_have_text("Error 404")
    expect(page.get_by_role("alert")).to_have_text("Error 404: model 'no-such-model' not found")
    axe(page)
    shot(page, "error")
