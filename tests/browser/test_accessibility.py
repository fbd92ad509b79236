"""The console's accessibility, checked in a real browser: axe-core on every page (sign-in, usage, models, keys,
batches, playground) at desktop and at phone width, failing on any serious or critical violation or a page wider than
the screen; and the keyboard reaching the skip link, the navigation, sign-out and each page's main controls.

axe-core is pinned in package.json and injected into the page by Playwright (the console's Content-Security-Policy
allows no such script, so the checking tab alone bypasses it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.conftest import Server
from tests.browser.tabs import DESKTOP, PHONE, Tab, go, open_tab, sign_in, step
from tests.conftest import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ("Usage", "Models", "Keys", "Batches", "Playground")
# What blocks a user (axe's "serious" and "critical"); "moderate" and "minor" are advice.
BLOCKING = ("serious", "critical")
# WCAG 2.1 A and AA, and axe's best practices (landmarks, one h1, headings in order).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
RUN = f"() => axe.run(document, {{resultTypes: ['violations'], runOnly: {TAGS}}})"


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `npm ci` (make setup does)")
    with open_tab(bypass_csp=True) as opened:
        yield opened


def violations(page: Page, where: str) -> list[str]:
    """The serious and critical violations on the page as it is, each naming where, the rule and an element."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    page.wait_for_load_state("networkidle")
    found: list[dict[str, Any]] = page.evaluate(RUN)["violations"]
    return [
        f"{where}: {v['id']} ({v['impact']}, {len(v['nodes'])} element(s), e.g. {v['nodes'][0]['target']}): {v['help']}"
        for v in found
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_no_page_has_a_serious_accessibility_violation(tab: Tab, console_server: Server, width: str) -> None:
    page = tab.page
    size: ViewportSize = DESKTOP if width == "desktop" else PHONE
    page.set_viewport_size(size)
    found: list[str] = []
    with step(page, f"Sign-in page at {width} width: axe"):
        page.goto(f"{console_server.base}/console/")
        if page.get_by_role("button", name="Sign out").count():
            page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key"), "sign-in: the form").to_be_visible()
        found += violations(page, f"sign-in ({width})")
    sign_in(page, console_server.base, console_server.key)
    for title in PAGES:
        with step(page, f"{title} page at {width} width: axe"):
            go(page, title)
            found += violations(page, f"{title} ({width})")
            wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if wide > 0:
                found.append(f"{title} ({width}): the page is {wide} px wider than the screen (sideways scroll)")
            if title == "Models":  # a model's versions, alias history and the forms that move them
                page.get_by_role("button", name="Details of all-minilm-l6-v2").click()
                expect(page.get_by_role("heading", name="Alias history"), "models: the details").to_be_visible()
                found += violations(page, f"Models, a model's details ({width})")
    page.set_viewport_size(DESKTOP)
    assert not found, "serious or critical accessibility violations:\n" + "\n".join(found)


def focused(page: Page) -> str:
    """The focused element, as a user hears it: its role or tag, and its accessible name or label."""
    described: str = page.evaluate(
        """() => {
          const e = document.activeElement;
          const label = e.labels && e.labels.length ? e.labels[0].textContent : '';
          const name = e.getAttribute('aria-label') || label || e.textContent || '';
          return `${e.tagName.toLowerCase()} ${name.replace(/\\s+/g, ' ').trim()}`;
        }"""
    )
    return described


def fresh(page: Page) -> None:
    """The page loaded again, so that Tab starts from its top (not from the link last clicked)."""
    page.reload()
    expect(page.get_by_role("heading", level=1), "keyboard: the page loaded again").to_be_visible()


def tab_through(page: Page, presses: int) -> list[str]:
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(focused(page))
    return reached


def test_the_keyboard_reaches_the_navigation_and_each_pages_controls(tab: Tab, console_server: Server) -> None:
    page = tab.page
    with step(page, "Keyboard: skip link, navigation, sign-out"):
        sign_in(page, console_server.base, console_server.key)
        go(page, "Usage")
        fresh(page)
        reached = tab_through(page, 1 + len(PAGES) + 1)
        assert reached[0] == "a Skip to the page", f"keyboard: the skip link comes first, got {reached[0]!r}"
        for title in PAGES:
            assert f"a {title}" in reached, f"keyboard: the {title} link is reached by Tab, reached {reached}"
        assert "button Sign out" in reached, f"keyboard: Sign out is reached by Tab, reached {reached}"
    with step(page, "Keyboard: the skip link moves focus to the page"):
        fresh(page)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "page-heading", "keyboard: focus on the h1"
        reached = tab_through(page, 3)
        assert reached[0].startswith("select") and "Range" in reached[0], f"keyboard: Range comes next, got {reached}"
    # Each page's main control, reached from its heading (the skip link's target) within a few presses.
    controls = {"Models": "button Details of", "Keys": "input", "Batches": "input", "Playground": ""}
    for title, control in controls.items():
        with step(page, f"Keyboard: the {title} page's controls"):
            page.get_by_role("navigation").get_by_role("link", name=title).press("Enter")
            expect(page.get_by_role("heading", level=1), f"{title}: opened from the keyboard").to_have_text(title)
            page.wait_for_load_state("networkidle")
            page.locator("#page-heading").focus()
            reached = tab_through(page, 3)
            assert any(each.startswith(control) for each in reached) and not any(
                each.startswith("body") for each in reached
            ), f"keyboard: the {title} page's first control is reached by Tab, reached {reached}"
