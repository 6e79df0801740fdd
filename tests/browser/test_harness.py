"""The browser harness itself: Debian's Chromium starts under Playwright, axe-core and screenshots work, and the
console's server answers the browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

PAGE = "data:text/html,<html lang=en><head><title>t</title></head><body><main><h1>ok</h1></main></body></html>"


def test_browser_axe_and_screenshot(page: Page, axe, shot):
    page.goto(PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text("ok")
    results = axe(page)
    assert results["passes"], "axe ran no rule"
    path = shot(page, "harness")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_the_server_answers_the_browser(page: Page, console_server):
    response = page.goto(console_server.url + "/v2/health/ready")
    assert response is not None and response.status == 200, response and response.status
