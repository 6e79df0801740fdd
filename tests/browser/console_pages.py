"""What the console's browser tests share: their data files, the focus checks of keyboard use, GOV.UK's
error pattern, and the README's screenshots (tests/browser/test_console_*.py; fixtures in conftest.py)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
