"""What the console's page tests share: a Chromium tab that records what the page logs, a screenshot, a step that
names where a failure happened, moving between pages, signing in."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Locator, Page, ViewportSize, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, SCREENSHOTS

TIMEOUT_MS = 10_000
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Answer getUserMedia with a generated tone, and no permission prompt.
FAKE_MICROPHONE = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


@dataclass
class Tab:
    page: Page
    logged: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_tab(*, bypass_csp: bool = False, args: Sequence[str] = ()) -> Iterator[Tab]:
    """One signed-out tab at desktop width; every error the page logs (a refused load, a Content-Security-Policy
    violation, an uncaught exception) is kept in ``logged``. ``bypass_csp`` only to inject a checker (axe-core);
    ``args``: more Chromium switches (``FAKE_MICROPHONE``)."""
    with sync_playwright() as driver:
        # --no-sandbox: Chromium's sandbox needs a user namespace that a root container does not give it.
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", *args])
        try:
            context = browser.new_context(viewport=DESKTOP, bypass_csp=bypass_csp)
            tab = Tab(context.new_page())

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    tab.logged.append(f"{message.text} ({message.location.get('url', '')})")

            tab.page.set_default_timeout(TIMEOUT_MS)
            tab.page.on("console", console)
            tab.page.on("pageerror", lambda error: tab.logged.append(str(error)))
            yield tab
        finally:
            browser.close()


def shot(target: Page | Locator, name: str) -> None:
    """A screenshot of the whole page, or of one part of it (a playground's card)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"console-{name}.png")
    if isinstance(target, Page):
        target.screenshot(path=path, full_page=True)
    else:
        target.screenshot(path=path)


@contextlib.contextmanager
def step(page: Page, where: str) -> Iterator[None]:
    """Names the page and step of whatever fails inside, and keeps a screenshot of what the browser showed."""
    try:
        yield
    except Exception as failure:
        shot(page, "failed-" + re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-"))
        raise AssertionError(f"{where}: {failure}") from failure


def go(page: Page, title: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1), f"{title}: the page opens").to_have_text(title)


def sign_in(page: Page, base: str, key: str) -> None:
    """Signs in with ``key`` from wherever the tab is (signing out first if it is signed in)."""
    page.goto(f"{base}/console/")
    if page.get_by_role("button", name="Sign out").count():
        page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out"), "sign-in: the console opens").to_be_visible()
