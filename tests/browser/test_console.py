"""The web console in Chromium, as a person uses it: train from an uploaded file and follow the job to the model
card and its plot, score a file (flagged rows first, sorting and paging in place, an explanation, the CSV), cancel
a running job, sign in; bad input shows the API's message next to its field and changes nothing; one whole flow
with the keyboard alone, the focus ring at every stop; axe-core (WCAG 2.1 A/AA) on every page; a screenshot of
each in test-results/console/. Statuses and exact HTTP behaviour are tests/integration/test_console.py's.

PYNOMALY_SCREENSHOTS=DIR (make console-screenshots) also saves the model card and a scored file's page at 1280×900
as DIR/console-model-card.png and DIR/console-score.png, the README's pictures."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import ElementHandle, Locator, Page, expect

from pynomaly import Client

NAMES = ["a", "b", "c", "d"]
MODEL = "sensors"  # trained once for the module (model); the flows train models of their own through the pages
TOKEN = "console-browser-token-0123456789"
SCORED_ROWS = 120  # three pages of rows (50 a page)
# :focus-visible in services/console/src/console.css
FOCUS_RING = {"outlineStyle": "solid", "outlineWidth": "3px", "outlineColor": "rgb(180, 83, 9)"}


@dataclass
class Files:
    train: Path  # 306 rows × a, b, c, d: 300 normal, 6 far out
    X_train: np.ndarray
    readings: Path  # 120 rows to score: 114 normal, 6 far out
    X_readings: np.ndarray
    three_columns: Path  # readings without d
    notes: Path  # a .txt file
    slow: Path  # 3000 × 8: algorithm "auto" takes seconds on it


def write_csv(path: Path, X: np.ndarray, names: list[str]) -> Path:
    np.savetxt(path, X, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    tmp = tmp_path_factory.mktemp("console-files")
    rng = np.random.default_rng(7)
    X_train = np.vstack([rng.normal(size=(300, 4)), rng.normal(6, 0.5, size=(6, 4))])
    X_readings = np.vstack([rng.normal(size=(SCORED_ROWS - 6, 4)), rng.normal(5, 0.5, size=(6, 4))])
    rng.shuffle(X_readings)
    notes = tmp / "notes.txt"
    notes.write_text("a,b,c,d\n1,2,3,4\n")
    return Files(write_csv(tmp / "train.csv", X_train, NAMES), X_train,
                 write_csv(tmp / "readings.csv", X_readings, NAMES), X_readings,
                 write_csv(tmp / "three.csv", X_readings[:, :3], NAMES[:3]), notes,
                 write_csv(tmp / "slow.csv", rng.normal(size=(3000, 8)), [f"x{i}" for i in range(8)]))


@pytest.fixture(scope="module")
def client(console_server) -> Iterator[Client]:
    with Client(console_server.address) as c:
        yield c


@pytest.fixture(scope="module")
def model(client: Client, files: Files) -> str:
    """MODEL version 1 (iforest), trained over gRPC: the model the scoring, bad-input and page checks use."""
    client.train(MODEL, files.X_train, algorithm="iforest", params={"n_estimators": 50, "random_state": 0},
                 feature_names=NAMES, description="four sensors")
    return MODEL


@pytest.fixture(autouse=True)
def no_browser_errors(page: Page) -> Iterator[None]:
    """Every page a test opens runs without an uncaught script error or a console error (a refused script, a
    Content-Security-Policy violation) and loads every asset and fragment it asks for. A page's own 4xx (an error
    page, a refused form) is what its test expects: Chromium's console line about it is not counted."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught {e.name}: {e.message}"))
    page.on("console", lambda m: errors.append(f"console: {m.text} ({m.location['url']})")
            if m.type == "error" and not m.text.startswith("Failed to load resource: ") else None)
    page.on("response", lambda r: errors.append(f"{r.status} for {r.request.resource_type} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document" else None)
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.resource_type} {r.url}: {r.failure}")
            if r.resource_type != "document" else None)
    yield
    assert errors == []


def versions(client: Client, name: str) -> list[int]:
    return [v.version for v in client.list_model_versions(name)]


def focus_state(page: Page, target: Locator | ElementHandle | None = None) -> dict[str, object]:
    """The focused element's outline (and whether it is `target`)."""
    script = """el => { const a = document.activeElement, s = getComputedStyle(a);
        return {hit: a === el, stale: !!el && !el.isConnected, outlineStyle: s.outlineStyle,
                outlineWidth: s.outlineWidth, outlineColor: s.outlineColor, element: a.outerHTML.slice(0, 120)}; }"""
    return target.evaluate(script) if target is not None else page.evaluate(script, None)


def assert_focus_ring(state: dict[str, object]) -> None:
    ring = {k: state[k] for k in FOCUS_RING}
    assert ring == FOCUS_RING, f"no visible focus ring on {state['element']}: {ring}"


def tab_to(page: Page, target: Locator, limit: int = 80, key: str = "Tab") -> int:
    """Presses Tab (or `key`: Shift+Tab) until `target` has the focus, checking the focus ring on every element
    the focus stops at; returns the number of presses."""
    element = target.element_handle()  # resolved once: the locator's role and name are dearer to compute
    for presses in range(1, limit + 1):
        page.keyboard.press(key)
        state = focus_state(page, element)
        if state["stale"]:  # htmx swapped it (a job page's poll): the new one
            element = target.element_handle()
            state = focus_state(page, element)
        assert_focus_ring(state)
        if state["hit"]:
            return presses
    raise AssertionError(f"{target} not reached with {limit} presses of {key}")


def field_error(page: Page, field: str) -> Locator:
    return page.locator(f'[id="{field}-error"]')


def assert_error_next_to(page: Page, field: str, message: str) -> None:
    """GOV.UK's pattern: the message above the field, tied to it (its accessible description), the field marked
    invalid, and the summary at the top linking to it (following the link focuses the field)."""
    control = page.locator(f'[id="{field}"]')
    expect(field_error(page, field)).to_have_text(f"Error: {message}")
    expect(field_error(page, field)).to_be_visible()
    expect(control).to_have_attribute("aria-invalid", "true")
    expect(control).to_have_accessible_description(re.compile(re.escape(f"Error: {message}")))
    summary = page.get_by_role("alert").filter(has=page.get_by_role("heading", name="There is a problem"))
    link = summary.get_by_role("link", name=message, exact=True)
    expect(link).to_have_attribute("href", f"#{field}")
    link.click()
    expect(control).to_be_focused()


def readme_screenshot(page: Page, name: str, clip_to: Locator | None = None) -> None:
    """With PYNOMALY_SCREENSHOTS=DIR: DIR/name at 1280×900 (the README's pictures); down to `clip_to`'s bottom."""
    folder = os.environ.get("PYNOMALY_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    if clip_to is None:
        page.screenshot(path=Path(folder) / name)
        return
    box = clip_to.bounding_box()
    assert box is not None
    page.screenshot(path=Path(folder) / name, full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": box["y"] + box["height"] + 24})


def rows_shown(page: Page) -> list[int]:
    return [int(t) for t in page.locator("#result-table tbody th[scope=row]").all_inner_texts()]


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
