"""The web console's browser tests: pytest-playwright driving Debian's Chromium (/usr/bin/chromium; Playwright's own
browser download is never used), an embedded server with its REST API and console on 127.0.0.1 in this process,
axe-core's accessibility checks (WCAG 2.1 A and AA) and full-page screenshots in test-results/console/."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, sync_playwright

from pynomaly import Client
from pynomaly.server.app import Running, ServerConfig, start
from tests.browser.console_pages import MODEL, NAMES, SCORED_ROWS, Files, write_csv

from conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = REPO / "services" / "console" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SHOTS = REPO / "test-results" / "console"

T = TypeVar("T")


def require_chromium() -> None:
    """Skips (fails under PYNOMALY_REQUIRE_BROWSER=1, as .ci/run sets) when Debian's chromium is not installed."""
    if not CHROMIUM.is_file():
        reason = f"Debian's chromium is not installed ({CHROMIUM} is missing): apt-get install chromium"
        if os.environ.get("PYNOMALY_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options (--headed, --slowmo) with Debian's Chromium and flags for a container: no
    sandbox (root), no GPU, and none of the background traffic (QUIC, component updates, sync) a test has no use for."""
    require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


# Playwright's synchronous API leaves its event loop marked as the thread's running loop between calls, for as long as
# it is started: pytest-asyncio's tests (and asyncio.run) after it in the same session would fail with "Cannot run the
# event loop while another loop is running". pytest-playwright starts it once per session; here it lives for this
# package's tests only (`make test` runs them in one session with the async server suites), so every fixture of the
# plugin's that holds it is redefined with package scope, as the plugin defines it otherwise (0.7.2).


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args: dict[str, Any], browser_type: BrowserType) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[[], Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args(pytestconfig: pytest.Config, playwright: Playwright, device: str | None,
                         base_url: str | None, _pw_artifacts_folder: tempfile.TemporaryDirectory[str]
                         ) -> dict[str, Any]:
    args: dict[str, Any] = dict(playwright.devices[device]) if device else {}
    if base_url:
        args["base_url"] = base_url
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


def _violations(results: dict[str, Any], url: str) -> str:
    lines = [f"{len(results['violations'])} accessibility violation(s) (axe-core, {'/'.join(WCAG_TAGS)}) on {url}:"]
    for v in results["violations"]:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"]]
        more = f" (+{len(targets) - 3} more)" if len(targets) > 3 else ""
        lines.append(f"  {v['id']} [{v['impact']}] {v['help']}: {', '.join(targets[:3])}{more}")
    return "\n".join(lines)


@pytest.fixture
def axe() -> Callable[[Page], dict[str, Any]]:
    """check(page): runs axe-core over the page as it is now (WCAG 2.0/2.1 A and AA rules) and asserts there is no
    violation, listing each one's id, impact, help and first elements; returns axe's results."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make setup` (npm ci in services/console)")

    source = AXE.read_text()

    def check(page: Page) -> dict[str, Any]:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            # DevTools' evaluation, not a <script> tag: the page's Content-Security-Policy neither refuses it nor
            # logs a violation in the console (which the console's tests count as errors).
            page.evaluate(source)
        # resultTypes: every node of a violation, one example of the rest (a third faster on the console's pages).
        results: dict[str, Any] = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
            WCAG_TAGS)
        if results["violations"]:
            raise AssertionError(_violations(results, page.url))
        return results

    return check


@pytest.fixture
def shot() -> Callable[[Page, str], Path]:
    """save(page, name): a full-page screenshot in test-results/console/<name>.png; returns its path."""

    def save(page: Page, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return save


@dataclass
class ConsoleServer:
    """The embedded platform serving gRPC on `address` and its HTTP app (REST API and console) at `url`."""

    url: str  # http://127.0.0.1:PORT
    address: str  # gRPC, 127.0.0.1:PORT (pynomaly.Client(address) trains the models a page shows)
    running: Running
    store: Path
    data_root: Path
    output_root: Path
    loop: asyncio.AbstractEventLoop  # the server's, on a thread of its own

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's event loop (its objects belong to it) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def embedded_server(tmp_path_factory: pytest.TempPathFactory, **options: Any) -> Iterator[ConsoleServer]:
    """`pynomaly serve --http-listen` in this process, with a store, data root and output root of its own and any
    other ServerConfig field in `options` (auth_tokens=...): the server runs on an event loop of its own thread, so
    it answers while a test drives the browser with Playwright's synchronous API on the main thread."""
    store, data_root, output_root = (tmp_path_factory.mktemp(name) for name in ("console-store", "console-data",
                                                                                 "console-output"))
    config = ServerConfig(listen="127.0.0.1:0", store=str(store), data_root=data_root, output_root=output_root,
                          http_listen="127.0.0.1:0", **options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="console-server", daemon=True)
    thread.start()
    try:
        running = asyncio.run_coroutine_threadsafe(start(config), loop).result(120)
        assert running.http is not None
        server = ConsoleServer(f"http://{running.http.address}", f"127.0.0.1:{running.port}", running, store,
                               data_root, output_root, loop)
        yield server
        server.call(running.stop(grace=1))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """The embedded server the console's tests share (embedded_server)."""
    with embedded_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="session")
def another_console_server(tmp_path_factory: pytest.TempPathFactory
                           ) -> Callable[..., AbstractContextManager[ConsoleServer]]:
    """another_console_server(**options): a server of its own for a test that needs other settings (auth_tokens=
    a token file), as a context manager; embedded_server's."""
    return functools.partial(embedded_server, tmp_path_factory)


# --- the console's flows (test_console_*.py) ---


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
