"""The console's admin pages in a real browser: an admin sets a canary, promotes and rolls back a model imported
through the API; rotates a key whose old secret keeps working through its grace period; makes and cancels a batch.
A key without the admin scope sees no admin action, and the management API's refusal in its own words.

Every expectation names its page and step, so a failure says where the console broke.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests import tiny_imports as tiny
from tests.browser.conftest import Server
from tests.browser.tabs import Tab, go, open_tab, shot, sign_in, step

MODEL = "console-admin-demo"


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _import(server: Server, data: bytes, **options: object) -> None:
    uploaded = httpx.post(
        f"{server.base}/v1/files",
        headers=_headers(server.key),
        files={"file": ("model.onnx", data)},
        data={"purpose": "model"},
    )
    assert uploaded.status_code == 200, f"admin setup: the model file upload failed: {uploaded.text}"
    body = {"name": MODEL, "file_id": uploaded.json()["id"], **options}
    made = httpx.post(f"{server.base}/v1/admin/models", headers=_headers(server.key), json=body, timeout=60)
    assert made.status_code in (200, 201), f"admin setup: the import failed: {made.text}"


@pytest.fixture(scope="module")
def demo(console_server: Server) -> str:
    """A two-version model of the server's own store (the built models there are links to the repository's, which
    a test must not move): version 1 promoted, version 2 published beside it."""
    _import(console_server, tiny.mlp(seed=21), promote=True, quality={"accuracy": 0.81}, reason="first")
    _import(console_server, tiny.mlp(seed=22), quality={"accuracy": 0.86})
    return MODEL


@pytest.fixture(scope="module")
def tab(console_server: Server) -> Iterator[Tab]:
    with open_tab() as opened:
        sign_in(opened.page, console_server.base, console_server.key)
        yield opened


def _move(page: Page, form: str, fill: dict[str, str]) -> None:
    action = page.get_by_role("form", name=form)
    for label, value in fill.items():
        field = action.get_by_label(label)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    action.get_by_role("button", name=form).click()


def test_an_admin_sets_a_canary_promotes_and_rolls_back(tab: Tab, console_server: Server, demo: str) -> None:
    page = tab.page
    with step(page, "Models page (admin): the imported model and its versions"):
        go(page, "Models")
        row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=demo, exact=True))
        expect(row.get_by_test_id("serving-version"), "models: version 1 serves").to_have_text("1")
        row.get_by_role("button", name=f"Details of {demo}").click()
        detail = page.get_by_role("region", name=f"Model {demo}")
        quality = detail.get_by_role("row").filter(has_text="accuracy 0.86")
        expect(quality, "models: the quality from the version's card").to_have_count(1)
    with step(page, "Models page (admin): set a 25 % canary"):
        _move(page, "Set canary", {"Version": "2", "Share (%)": "25", "Reason": "try version 2"})
        expect(detail.get_by_test_id("canary"), "models: the canary and its share").to_have_text("2 at 25 %")
        expect(row.get_by_test_id("canary-share"), "models: the list shows the canary").to_have_text("2 (25 %)")
    with step(page, "Models page (admin): promote the canary"):
        _move(page, "Promote", {"Version": "2", "Reason": "better"})
        expect(detail.get_by_test_id("serving"), "models: version 2 serves").to_have_text("2")
        expect(detail.get_by_test_id("canary"), "models: the canary ended").to_have_text("none")
    with step(page, "Models page (admin): roll back"):
        _move(page, "Roll back", {"Reason": "drift seen"})
        expect(detail.get_by_test_id("serving"), "models: version 1 serves again").to_have_text("1")
        expect(row.get_by_test_id("serving-version"), "models: the list follows").to_have_text("1")
        history = detail.get_by_test_id("alias-history")
        expect(history.get_by_role("row").nth(1), "models: the newest change first").to_contain_text("drift seen")
        shot(page, "models-admin")
    aliases = httpx.get(f"{console_server.base}/v1/admin/models/{demo}", headers=_headers(console_server.key))
    changes = [(h["action"], h["production"], h["canary"]) for h in aliases.json()["aliases"]["history"]]
    assert changes == [
        ("promote", "1", None),
        ("canary", "1", "2"),
        ("promote", "2", None),
        ("rollback", "1", None),
    ], f"models: the store's aliases history after the console's moves, got {changes}"


def test_a_canary_its_policy_rejects_shows_why(tab: Tab, console_server: Server, demo: str) -> None:
    page = tab.page
    detail = page.get_by_role("region", name=f"Model {demo}")
    with step(page, "Models page (admin): a 99 % canary with a policy no version meets"):
        policy = {"Decide after (requests)": "1", "p95 limit (ms)": "0.000001"}
        _move(page, "Set canary", {"Version": "2", "Share (%)": "99", **policy, "Reason": "a policy trial"})
        expect(detail.get_by_test_id("canary-policy"), "models: the policy").to_contain_text("after 1 requests")
    # Requests the canary serves (99 % of them), then an alias check: a serving process judges the canary at each,
    # and an admin call that changes nothing (the newest version imported again) makes this one check now.
    rows = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [[0.1, 0.2, 0.3, 0.4]]}]}
    for _ in range(4):
        served = httpx.post(
            f"{console_server.base}/v2/models/{demo}/infer", json=rows, headers=_headers(console_server.key)
        )
        assert served.status_code == 200, f"models: the canary trial's request failed: {served.text}"
    _import(console_server, tiny.mlp(seed=22), quality={"accuracy": 0.86})
    with step(page, "Models page (admin): the policy rolled the canary back, and says why"):
        detail.get_by_role("button", name="Refresh").click()
        expect(detail.get_by_test_id("canary"), "models: the canary ended").to_have_text("none")
        newest = detail.get_by_test_id("alias-history").get_by_role("row").nth(1)
        expect(newest, "models: why version 2 was rejected").to_contain_text("canary policy")
        expect(newest, "models: the rule it broke").to_contain_text("p95 over")
        version = detail.get_by_role("row").filter(has=page.get_by_role("rowheader", name="2", exact=True))
        expect(version.get_by_test_id("why-rejected"), "models: the version's row says why").to_contain_text(
            "canary ended: canary policy"
        )
        expect(
            page.get_by_role("row").filter(has_text=demo).get_by_test_id("canary-share"), "models: list"
        ).to_have_text("none")
        shot(page, "models-canary-rejected")


def test_a_move_the_api_refuses_is_shown_in_its_words(tab: Tab, demo: str) -> None:
    page = tab.page
    with step(page, "Models page (admin): a canary of the serving version is refused"):
        detail = page.get_by_role("region", name=f"Model {demo}")
        form = detail.get_by_role("form", name="Set canary")
        # The form offers the other versions only; the API's refusal of the serving one is what a forced call gets.
        form.get_by_label("Version").evaluate("s => { s.options[0].value = '1'; s.value = '1'; }")
        form.get_by_label("Version").dispatch_event("change")
        form.get_by_role("button", name="Set canary").click()
        expect(form.get_by_role("alert"), "models: the API's words").to_contain_text("already the one serving")


def test_a_rotated_key_keeps_working_through_its_grace(tab: Tab, console_server: Server) -> None:
    page = tab.page
    made = httpx.post(
        f"{console_server.base}/v1/admin/keys",
        json={"tenant": "rotating", "description": "to rotate"},
        headers=_headers(console_server.key),
    )
    assert made.status_code == 201, made.text
    old = made.json()["api_key"]
    with step(page, "Keys page: rotate a key with a 10-minute grace"):
        go(page, "Models")  # the Keys page lists the keys when it opens
        go(page, "Keys")
        row = page.get_by_role("row").filter(has_text="to rotate").filter(has_text="rotating").first
        row.get_by_role("button", name="Rotate").click()
        row.get_by_label("Old key works for (seconds)").fill("600")
        row.get_by_role("button", name="Confirm rotate").click()
        secret = page.get_by_test_id("new-secret")
        expect(secret, "keys: the new secret is shown once").to_contain_text("am_")
        expect(page.get_by_test_id("grace"), "keys: when the old key stops").to_contain_text("keeps working until")
        expect(page.get_by_role("button", name="Copy key"), "keys: a copy button").to_be_visible()
        new = secret.inner_text()
        assert new != old, "keys: rotation gave a new secret"
        expect(
            page.get_by_test_id("key-state").filter(has_text="in grace until"), "keys: the old key is in its grace"
        ).to_have_count(1)
        shot(page, "keys-rotate")
    for name, secret_text in (("old", old), ("new", new)):
        answer = httpx.get(f"{console_server.base}/v1/models", headers=_headers(secret_text))
        assert answer.status_code == 200, f"keys: the {name} key answers during the grace period: {answer.text}"


def test_a_batch_is_made_from_a_file_viewed_and_cancelled(tab: Tab, console_server: Server, tmp_path: Path) -> None:
    page = tab.page
    lines = [
        {"custom_id": f"line-{n}", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "all-minilm-l6-v2", "input": text}}
        for n, text in enumerate(("a batch line", "another one"))
    ]  # fmt: skip
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with step(page, "Batches page: create a batch from a JSONL file"):
        go(page, "Batches")
        page.get_by_label("Requests (JSONL)").set_input_files(requests)
        page.get_by_label("Description").fill("made in the console")
        page.get_by_role("button", name="Create batch").click()
        expect(page.get_by_role("status").filter(has_text="was created"), "batches: created").to_have_count(1)
        detail = page.locator("#batch-detail")
        expect(detail.get_by_test_id("batch-status"), "batches: its status").not_to_be_empty()
        expect(detail, "batches: its metadata").to_contain_text("made in the console")
        expect(page.get_by_role("row").filter(has_text="/v1/embeddings").first, "batches: listed").to_be_visible()
    with step(page, "Batches page: cancel it"):
        detail.get_by_role("button", name="Cancel batch").click()
        cancelled = re.compile("^cancell(ing|ed)$")
        expect(detail.get_by_test_id("batch-status"), "batches: cancelled").to_have_text(cancelled)
        shot(page, "batches")


def test_a_key_without_admin_sees_no_admin_actions(tab: Tab, console_server: Server, demo: str) -> None:
    page = tab.page
    made = httpx.post(
        f"{console_server.base}/v1/admin/keys",
        json={"tenant": "reader", "scopes": ["invoke"]},
        headers=_headers(console_server.key),
    )
    assert made.status_code == 201, made.text
    viewer = made.json()["api_key"]
    with step(page, "Models page without admin: read-only, the API's refusal in its words"):
        sign_in(page, console_server.base, viewer)
        go(page, "Models")
        expect(page.get_by_test_id("read-only"), "models: the management API's 403").to_contain_text(
            "lacks the 'admin' scope"
        )
        row = page.get_by_role("row").filter(has_text="efficientnet-lite0")
        expect(row, "models: the public view lists the models").to_contain_text("classification")
        row.get_by_role("button", name="Details of efficientnet-lite0").click()
        expect(page.get_by_role("region", name="Model efficientnet-lite0"), "models: public detail").to_contain_text(
            "need a key with the admin scope"
        )
        for action in ("Promote", "Set canary", "Roll back"):
            expect(page.get_by_role("button", name=action), f"models: no {action} button").to_have_count(0)
        shot(page, "models-read-only")
    with step(page, "Keys page without admin: no key actions"):
        go(page, "Keys")
        expect(page.get_by_role("alert"), "keys: the API's refusal").to_contain_text("lacks the 'admin' scope")
        expect(page.get_by_role("button", name="Create key"), "keys: no create button").to_have_count(0)
    refused = httpx.post(
        f"{console_server.base}/v1/admin/models/{demo}/rollback", headers=_headers(viewer), json={"reason": "try"}
    )
    assert refused.status_code == 403, f"the API itself refuses a non-admin key: {refused.text}"
    with step(page, "Back to the development key"):
        sign_in(page, console_server.base, console_server.key)
    # Refusals the tests asked for: the forced canary's 400, the key without admin's 403s.
    unexpected = [text for text in tab.logged if "status of 403" not in text and "/canary)" not in text]
    assert not unexpected, f"the console logged errors (a Content-Security-Policy violation?): {unexpected}"
