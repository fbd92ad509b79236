"""The console in a real browser: sign in, usage that moves after a call (over a chosen range, with this month's
quota), models, a key created and revoked, an image classified and two sentences compared, sign out; a screenshot
of each page in build/screenshots/.

Every expectation names its page and step, so a failure says where the console broke.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.tabs import DESKTOP, PHONE, Tab, go, open_tab, shot, step
from tests.conftest import ROOT

IMAGE = ROOT / "tests" / "events" / "media" / "red.png"


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    """One signed-out tab on the console, at desktop width."""
    with open_tab() as opened:
        yield opened


@pytest.fixture(scope="module")
def page(tab: Tab) -> Page:
    return tab.page


def test_sign_in_refuses_a_wrong_key_then_takes_the_right_one(page: Page, console_server: Server) -> None:
    with step(page, "Sign-in page: a wrong key, then the development key"):
        page.goto(f"{console_server.base}/console")
        assert page.url.endswith("/console/"), f"sign-in: /console leads to /console/, got {page.url}"
        page.get_by_label("API key").fill("aimass-not-a-key")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert"), "sign-in: a wrong key is refused in the API's words").to_contain_text(
            "Sign-in failed"
        )
        shot(page, "sign-in")
        page.get_by_label("API key").fill(console_server.key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1), "sign-in: the usage page follows").to_have_text("Usage")
        stored = page.evaluate("() => [sessionStorage.getItem('aimass.apiKey'), document.cookie, location.href]")
        assert stored[0] == console_server.key, "sign-in: the key is kept in sessionStorage"
        assert console_server.key not in stored[1] + stored[2], "sign-in: the key is in no cookie and not in the URL"


def test_usage_moves_after_a_call(page: Page, console_server: Server) -> None:
    with step(page, "Usage page: usage moves after a call; grouped; CSV"):
        go(page, "Usage")
        totals = page.get_by_test_id("total-requests")
        expect(totals, "usage: the totals load").not_to_have_text("")
        page.wait_for_load_state("networkidle")
        before = int(totals.inner_text())
        answer = httpx.post(
            f"{console_server.base}/v1/embeddings",
            json={"model": "all-minilm-l6-v2", "input": ["usage moves"]},
            headers={"Authorization": f"Bearer {console_server.key}"},
        )
        assert answer.status_code == 200, f"usage: the API call to count failed: {answer.text}"
        page.get_by_role("button", name="Refresh").click()
        expect(totals, "usage: the request shows after Refresh").not_to_have_text(str(before))
        assert int(totals.inner_text()) > before, "usage: the requests total grew"
        page.get_by_label("Group by").select_option("model")
        expect(page.get_by_role("cell", name="all-minilm-l6-v2").first, "usage: grouped by model").to_be_visible()
        expect(page.locator(".chart canvas"), "usage: the chart is drawn").to_have_count(1)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        csv = download.value.path().read_text()
        assert csv.startswith('"bucket_start","model"'), f"usage: the CSV export's header, got {csv[:80]!r}"
        assert "all-minilm-l6-v2" in csv, "usage: the CSV holds the model's rows"
        shot(page, "usage")


def test_usage_over_a_chosen_range_and_this_months_quota(page: Page, console_server: Server) -> None:
    with step(page, "Usage page: this month's cost and quota left; a chosen range in hour and day buckets"):
        go(page, "Usage")
        dollars = re.compile(r"^\$\d+\.\d{6}$")
        expect(page.get_by_test_id("month-cost"), "usage: this month's cost").to_have_text(dollars)
        left = page.get_by_test_id("quota-left")
        expect(left, "usage: the quota left").to_have_text(re.compile(r"^\d+$"))
        month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        answer = httpx.get(
            f"{console_server.base}/v1/usage",
            params={"start_time": int(month.timestamp()), "bucket_width": "1d", "limit": 31},
            headers={"Authorization": f"Bearer {console_server.key}"},
        )
        quota = answer.json()["quota"]
        assert left.inner_text() == str(quota["remaining_units"]), f"usage: the quota left is the API's, {quota}"
        today = datetime.now(UTC).date()
        page.get_by_label("Range").select_option("custom")
        page.get_by_label("First day").fill(today.isoformat())
        page.get_by_label("Last day").fill(today.isoformat())
        page.get_by_label("Buckets").select_option("1h")
        expect(page.locator("caption").filter(has_text="Usage per"), "usage: hour buckets").to_have_text(
            "Usage per hour (UTC)"
        )
        expect(page.get_by_test_id("total-requests"), "usage: today's requests").not_to_have_text("0")
        page.get_by_label("First day").fill((today - timedelta(days=40)).isoformat())
        expect(page.get_by_role("alert"), "usage: too many hour buckets, said before asking").to_contain_text(
            "at most 744"
        )
        page.get_by_label("Buckets").select_option("1d")
        expect(page.get_by_role("alert"), "usage: day buckets over 41 days are fine").to_have_count(0)
        page.get_by_label("Range").select_option("24h")


def test_models_lists_every_model_with_its_metadata(page: Page) -> None:
    with step(page, "Models page: the models and their metadata"):
        go(page, "Models")
        row = page.get_by_role("row").filter(has_text="efficientnet-lite0")
        expect(row, "models: the vision model's row shows its domain and task").to_contain_text("classification")
        expect(page.get_by_role("row").filter(has_text="all-minilm-l6-v2"), "models: the text model").to_contain_text(
            "embedding"
        )
        shot(page, "models")


def test_a_key_is_created_shown_once_and_revoked(page: Page, console_server: Server) -> None:
    with step(page, "Keys page: create a key, then revoke it"):
        go(page, "Keys")
        page.get_by_label("Tenant").fill("acme")
        page.get_by_label("Description").fill("made in the console")
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_test_id("new-secret")
        expect(secret, "keys: the new key's secret is shown").not_to_be_empty()
        key = secret.inner_text()
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{console_server.base}/v1/models", headers=headers).status_code == 200, "keys: new key works"
        row = page.get_by_role("row").filter(has_text="made in the console")
        expect(row.get_by_test_id("key-state"), "keys: the new key is listed as active").to_have_text("active")
        shot(page, "keys")
        row.get_by_role("button", name="Revoke").click()
        row.get_by_role("button", name="Confirm revoke").click()
        expect(row.get_by_test_id("key-state"), "keys: the key is revoked").to_have_text("revoked")
        assert httpx.get(f"{console_server.base}/v1/models", headers=headers).status_code == 401, "keys: revoked key"


def test_the_playground_compares_sentences_and_classifies_an_image(page: Page) -> None:
    with step(page, "Playground page: compare sentences, classify an image"):
        go(page, "Playground")
        page.get_by_role("button", name="Compare").click()
        similarity = page.get_by_test_id("similarity")
        expect(similarity, "playground text: a similarity").to_have_text(re.compile(r"^0\.\d{4}$"))
        vision = page.get_by_role("region", name="Vision: classify an image")
        vision.get_by_label("Image").set_input_files(IMAGE)
        vision.get_by_role("button", name="Classify").click()
        labels = vision.locator("table.labels tbody tr")
        expect(labels, "playground vision: the top 5 labels").to_have_count(5)
        expect(vision.get_by_test_id("timing"), "playground vision: latency and usage").to_contain_text("1 images")
        expect(vision.locator("pre"), "playground vision: the curl command").to_contain_text("/v1/vision/classify")
        shot(page, "playground")


def test_phone_width_has_no_sideways_scroll(page: Page) -> None:
    with step(page, "Usage page at phone width"):
        page.set_viewport_size(PHONE)
        go(page, "Usage")
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"usage at phone width: the page is {wide} px wider than the screen"
        shot(page, "usage-phone")
        page.set_viewport_size(DESKTOP)


def test_a_key_without_admin_sees_the_api_refuse_its_keys(page: Page, console_server: Server) -> None:
    with step(page, "Keys page with a key without admin"):
        made = httpx.post(
            f"{console_server.base}/v1/admin/keys",
            json={"tenant": "viewer", "scopes": ["invoke"]},
            headers={"Authorization": f"Bearer {console_server.key}"},
        )
        assert made.status_code == 201, made.text
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("API key").fill(made.json()["api_key"])
        page.get_by_role("button", name="Sign in").click()
        go(page, "Keys")
        expect(page.get_by_role("alert"), "keys without admin: the API's refusal is shown").to_contain_text(
            "Keys could not be listed"
        )


def test_sign_out_forgets_the_key_and_nothing_broke(page: Page, tab: Tab) -> None:
    with step(page, "Sign out"):
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key"), "sign-out: the sign-in form is back").to_be_visible()
        assert page.evaluate("() => sessionStorage.length") == 0, "sign-out: sessionStorage is empty"
        # Refusals the tests asked for (a wrong key, a non-admin key) are logged as failed loads; nothing else.
        unexpected = [text for text in tab.logged if "status of 401" not in text and "status of 403" not in text]
        assert not unexpected, f"the console logged errors (a Content-Security-Policy violation?): {unexpected}"
