"""The admin API through the whole app (``build_app``, metering on SQLite) and through the front function's
Lambda handler: callers present real keys, made by ``aimass keys create`` in the same key store, and the
metering middleware's key check decides who they are, as on a deployment."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aimass.contract import DEFAULT_PLANS
from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.key_admin import MAX_DESCRIPTION, SCOPES
from aimass.metering.keys import KEY_ID, TENANT, matches, parse
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Plan, Settings
from tests.conftest import ROOT, import_handler, response_body
from tests.events.build import rest_v1
from tests.operator_keys import bearer, cli_key, state_environment

KEYS = "/v1/admin/keys"


def key_id(key: str) -> str:
    parsed = parse(key)
    assert parsed is not None
    return parsed[0]


# The default plan's name with a rate no test here reaches (one app and one admin key serve the whole module);
# "free" as shipped.
DEFAULT_FREE = Plan.model_validate(dict(DEFAULT_PLANS["free"]))
PLANS = {"default": Plan(rate_per_s=10_000, burst=10_000, monthly_units=10_000_000), "free": DEFAULT_FREE}


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state_dir = tmp_path_factory.mktemp("admin-state")
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=state_dir, plans=PLANS, alias_check_s=0)


@pytest.fixture(scope="module")
def admin_key(settings: Settings) -> str:
    return cli_key(settings.state_dir, "ops", "admin")


@pytest.fixture(scope="module")
def invoke_key(settings: Settings) -> str:
    return cli_key(settings.state_dir, "ops", "invoke")


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def admin(admin_key: str) -> dict[str, str]:
    return bearer(admin_key)


@pytest.fixture
def tenant() -> str:
    """A tenant of this test's own: the key store is the module's."""
    return f"acme-{uuid.uuid4().hex[:8]}"


def stored_ids(settings: Settings) -> set[str]:
    return {key.key_id for key in open_key_store(settings).list()}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Window:
    """The span a request ran in, to check the times it wrote (whole seconds) against."""

    def __enter__(self) -> Window:
        self.start = datetime.now(UTC).replace(microsecond=0)
        return self

    def __exit__(self, *_: object) -> None:
        self.end = datetime.now(UTC)

    def holds(self, text: str, after: timedelta = timedelta()) -> bool:
        return self.start + after <= moment(text) <= self.end + after


def create(client: TestClient, admin: dict[str, str], tenant: str = "acme", **body: Any) -> dict[str, Any]:
    response = client.post(KEYS, json={"tenant": tenant, "scopes": ["invoke"], **body}, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_shows_the_key_once_and_later_reads_never_do(
    client: TestClient, settings: Settings, admin: dict[str, str], tenant: str
) -> None:
    # WHEN an admin creates a key
    with Window() as window:
        response = client.post(
            KEYS,
            json={"tenant": tenant, "scopes": ["invoke"], "plan": "free", "expires_at": "2027-01-01T00:00:00Z",
                  "description": "ci bot"},
            headers=admin,
        )  # fmt: skip
    # THEN the answer carries the key in clear and its record, without the hash
    assert response.status_code == 201
    body = response.json()
    parsed = parse(body["api_key"])
    assert parsed is not None
    new_id, secret = parsed
    assert window.holds(body["key"].pop("created_at"))
    assert body["key"] == {
        "key_id": new_id, "tenant": tenant, "scopes": ["invoke"], "plan": "free",
        "expires_at": "2027-01-01T00:00:00Z", "revoked_at": None, "description": "ci bot", "active": True,
    }  # fmt: skip
    stored = open_key_store(settings).get(new_id)
    assert stored is not None and matches(stored, secret)
    # AND the new key is one the app takes: it lists the models
    assert client.get("/v1/models", headers=bearer(body["api_key"])).status_code == 200
    # AND a later listing shows the record, never the key, its secret or its hash
    listed = client.get(KEYS, params={"tenant": tenant}, headers=admin)
    assert listed.status_code == 200 and [key["key_id"] for key in listed.json()["keys"]] == [new_id]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert all(text not in listed.text for text in (body["api_key"], secret, digest, "secret_sha256"))


def test_list_filters_by_tenant(
    client: TestClient, settings: Settings, admin: dict[str, str], admin_key: str, tenant: str
) -> None:
    globex = f"globex-{tenant}"
    acme, other = create(client, admin, tenant), create(client, admin, globex)
    everything = {key["key_id"] for key in client.get(KEYS, headers=admin).json()["keys"]}
    assert everything == stored_ids(settings) >= {acme["key"]["key_id"], other["key"]["key_id"], key_id(admin_key)}
    only = client.get(KEYS, params={"tenant": globex}, headers=admin).json()["keys"]
    assert [key["key_id"] for key in only] == [other["key"]["key_id"]]


ROUTES = [
    ("POST", KEYS),
    ("GET", KEYS),
    ("POST", f"{KEYS}/0123456789ab/revoke"),
    ("POST", f"{KEYS}/0123456789ab/rotate"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_invoke_key_is_refused_naming_the_scope_it_lacks(
    client: TestClient, settings: Settings, invoke_key: str, method: str, path: str
) -> None:
    before = stored_ids(settings)
    response = client.request(method, path, json={"tenant": "acme", "scopes": ["admin"]}, headers=bearer(invoke_key))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert error["message"] == "this API key lacks the 'admin' scope (it has: invoke)"
    assert stored_ids(settings) == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("presented", [None, "am_0123456789ab_" + "A" * 43])
def test_without_a_key_the_admin_api_is_refused(
    client: TestClient, settings: Settings, admin_key: str, method: str, path: str, presented: str | None
) -> None:
    before = stored_ids(settings)
    headers = bearer(presented) if presented else {}
    response = client.request(method, path, json={"tenant": "acme", "scopes": ["admin"]}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert stored_ids(settings) == before


BAD_CREATES = [
    ({"tenant": "acme", "plan": "gold"}, "plan", "plan 'gold' is unknown; expected one of default, free"),
    ({"tenant": "Acme"}, "tenant", "tenant 'Acme' must be 1 to 63 characters"),
    ({"tenant": "acme", "scopes": []}, "scopes", "scopes must name at least one of invoke, admin"),
    ({"tenant": "acme", "scopes": ["root"]}, "scopes", "scope 'root' is unknown"),
    # The document's scopes are the names themselves: no spaces around them, no empty ones.
    ({"tenant": "acme", "scopes": [" invoke"]}, "scopes", "scope ' invoke' is unknown"),
    ({"tenant": "acme", "scopes": ["invoke", ""]}, "scopes", "scope '' is unknown; expected one or more of"),
    ({"tenant": "acme", "description": "x" * 201}, "description", "at most 200 characters, got 201"),
    ({"tenant": "acme", "expires_at": "2027-01-01T00:00:00"}, "expires_at", "timezone"),
    ({"tenant": "acme", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "must be in the future"),
    ({"tenant": "acme", "secret_sha256": "00"}, "secret_sha256", "Extra inputs are not permitted"),
    ({"scopes": ["invoke"]}, "tenant", "tenant: Field required"),
]


@pytest.mark.parametrize(("body", "param", "expected"), BAD_CREATES)
def test_wrong_values_are_400_naming_the_field(
    client: TestClient, settings: Settings, admin: dict[str, str], body: dict[str, Any], param: str, expected: str
) -> None:
    before = stored_ids(settings)
    response = client.post(KEYS, json=body, headers=admin)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_input", param) and expected in error["message"]
    assert stored_ids(settings) == before


def test_revoke(client: TestClient, admin: dict[str, str]) -> None:
    created = create(client, admin)
    with Window() as window:
        response = client.post(f"{KEYS}/{created['key']['key_id']}/revoke", headers=admin)
    assert response.status_code == 200
    assert window.holds(response.json()["revoked_at"]) and response.json()["active"] is False
    assert "api_key" not in response.json() and "secret_sha256" not in response.json()
    # The revoked key is refused at once
    assert client.get("/v1/models", headers=bearer(created["api_key"])).status_code == 401


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_an_unknown_key_is_404_and_a_malformed_id_400(client: TestClient, admin: dict[str, str], action: str) -> None:
    unknown = client.post(f"{KEYS}/0123456789ab/{action}", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "key_id"
    assert "no key with id '0123456789ab'" in unknown.json()["error"]["message"]
    malformed = client.post(f"{KEYS}/acme/{action}", headers=admin)
    assert malformed.status_code == 400 and malformed.json()["error"]["param"] == "key_id"


def test_rotate_keeps_the_old_key_for_the_grace_period(
    client: TestClient, settings: Settings, admin: dict[str, str], tenant: str
) -> None:
    old = create(client, admin, tenant, scopes=["invoke", "admin"], plan="free")
    with Window() as window:
        response = client.post(f"{KEYS}/{old['key']['key_id']}/rotate", json={"grace_seconds": 600}, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert parse(body["api_key"]) is not None and body["api_key"] != old["api_key"]
    assert (body["key"]["tenant"], body["key"]["scopes"], body["key"]["plan"]) == (tenant, ["invoke", "admin"], "free")
    assert window.holds(body["old_key"]["revoked_at"], after=timedelta(seconds=600))
    assert body["old_key"]["active"] is True
    # Both keys work during the grace period
    for key in (old["api_key"], body["api_key"]):
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    assert body["api_key"] not in client.get(KEYS, headers=admin).text
    # After it, the old key is refused (its record's end moved into the past, as time would move it)
    store = open_key_store(settings)
    store.revoke(old["key"]["key_id"], datetime.now(UTC) - timedelta(seconds=1))
    states = {
        key["key_id"]: key["active"]
        for key in client.get(KEYS, params={"tenant": tenant}, headers=admin).json()["keys"]
    }
    assert states == {old["key"]["key_id"]: False, body["key"]["key_id"]: True}


def test_rotate_defaults_to_an_hour_and_refuses_what_cannot_be_rotated(
    client: TestClient, admin: dict[str, str]
) -> None:
    key = create(client, admin)["key"]["key_id"]
    with Window() as window:
        rotated = client.post(f"{KEYS}/{key}/rotate", headers=admin)
    assert window.holds(rotated.json()["old_key"]["revoked_at"], after=timedelta(hours=1))
    too_long = client.post(f"{KEYS}/{key}/rotate", json={"grace_seconds": 31 * 86400}, headers=admin)
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "grace_seconds"
    client.post(f"{KEYS}/{key}/revoke", headers=admin)
    revoked = client.post(f"{KEYS}/{key}/rotate", json={"grace_seconds": 0}, headers=admin)
    assert revoked.status_code == 409 and revoked.json()["error"]["code"] == "key_revoked"


@pytest.mark.parametrize(
    ("grace", "kind"),
    [(False, "a boolean"), (True, "a boolean"), ("60", "a string"), (None, "null"), ([60], "an array")],
)
def test_a_grace_that_is_not_a_json_number_is_400_and_the_old_key_keeps_working(
    client: TestClient, settings: Settings, admin: dict[str, str], tenant: str, grace: object, kind: str
) -> None:
    # GIVEN a key in use
    created = create(client, admin, tenant)
    # WHEN a rotation names its grace with a JSON value that is not a number (false is not 0 seconds)
    response = client.post(f"{KEYS}/{created['key']['key_id']}/rotate", json={"grace_seconds": grace}, headers=admin)
    # THEN it is refused naming the field and what came, and nothing was rotated or revoked
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_input", "grace_seconds")
    assert error["message"] == f"grace_seconds: expected a JSON number of seconds, got {kind}"
    (record,) = open_key_store(settings).list(tenant)
    assert record.key_id == created["key"]["key_id"] and record.revoked_at is None
    assert client.get("/v1/models", headers=bearer(created["api_key"])).status_code == 200


@pytest.mark.parametrize("grace", [0, 90, 1.5])
def test_a_grace_in_json_numbers_is_taken(client: TestClient, admin: dict[str, str], grace: float) -> None:
    key = create(client, admin)["key"]["key_id"]
    with Window() as window:
        response = client.post(f"{KEYS}/{key}/rotate", json={"grace_seconds": grace}, headers=admin)
    assert response.status_code == 200
    assert window.holds(response.json()["old_key"]["revoked_at"], after=timedelta(seconds=grace))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("expires_at", 1893456000, "expires_at: expected an ISO 8601 time string"),
        ("expires_at", "1893456000", "expires_at: expected an RFC 3339 time"),
        ("expires_at", "2030-01-01 00:00:00Z", "expires_at: expected an RFC 3339 time"),
        ("expires_at", True, "got a boolean"),
        ("tenant", 5, "tenant: Input should be a valid string"),
        ("plan", False, "plan: Input should be a valid string"),
        ("description", 3, "description: Input should be a valid string"),
        ("scopes", "invoke", "scopes: Input should be a valid list"),
    ],
)
def test_create_takes_json_types_as_they_are(
    client: TestClient, settings: Settings, admin: dict[str, str], field: str, value: object, expected: str
) -> None:
    before = stored_ids(settings)
    response = client.post(KEYS, json={"tenant": "acme", field: value}, headers=admin)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and expected in error["message"]
    assert stored_ids(settings) == before


# ----------------------------------------------------------------------------- through the front function's handler


@pytest.fixture(scope="module")
def front(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str, Path]]:
    """The front (text) function's handler with metering on SQLite, and an admin key the CLI made for it."""
    state_dir = tmp_path_factory.mktemp("front-state")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for variable, value in state_environment(state_dir).items():
            monkeypatch.setenv(variable, value)
        module = import_handler(tiny_store, monkeypatch, "text")
        yield module, cli_key(state_dir, "ops", "admin"), state_dir


def admin_event(name: str, method: str, path: str, key: str | None, body: object = None) -> dict[str, Any]:
    """The REST event API Gateway sends the front function for an admin API call (resource /v1/admin/{proxy+})."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    text = None if body is None else json.dumps(body)
    return rest_v1(name, method=method, path=path, resource="/v1/admin/{proxy+}", headers=headers, body=text)


def lambda_error(response: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response_body(response))["error"]
    return error


@pytest.mark.parametrize(("body", "param", "expected"), BAD_CREATES)
def test_wrong_values_through_a_lambda_event_are_400_naming_the_field(
    front: tuple[ModuleType, str, Path], body: dict[str, Any], param: str, expected: str
) -> None:
    module, key, state_dir = front
    before = {k.key_id for k in open_key_store(Settings(metering="sqlite", state_dir=state_dir)).list()}
    response = module.handler(admin_event(f"admin-create-{param}", "POST", KEYS, key, body), LocalLambdaContext())
    assert response["statusCode"] == 400, response
    error = lambda_error(response)
    assert (error["code"], error["param"]) == ("invalid_input", param) and expected in error["message"]
    assert {k.key_id for k in open_key_store(Settings(metering="sqlite", state_dir=state_dir)).list()} == before


def test_a_lambda_event_makes_a_key_the_function_then_takes(front: tuple[ModuleType, str, Path]) -> None:
    module, key, _ = front
    response = module.handler(admin_event("admin-create", "POST", KEYS, key, {"tenant": "acme"}), LocalLambdaContext())
    assert response["statusCode"] == 201, response
    made = json.loads(response_body(response))["api_key"]
    listing = rest_v1("admin-made-key-lists", method="GET", path="/v1/models", resource="/v1/models",
                      headers={"Authorization": f"Bearer {made}"})  # fmt: skip
    assert module.handler(listing, LocalLambdaContext())["statusCode"] == 200


@pytest.mark.parametrize(("presented", "status"), [(None, 401), ("invoke", 403)])
def test_a_lambda_event_without_an_admin_key_is_refused(
    front: tuple[ModuleType, str, Path], presented: str | None, status: int
) -> None:
    module, _, state_dir = front
    key = cli_key(state_dir, "ops", "invoke") if presented else None
    event = admin_event(f"admin-refused-{presented}", "POST", KEYS, key, {"tenant": "acme", "scopes": ["admin"]})
    response = module.handler(event, LocalLambdaContext())
    assert response["statusCode"] == status, response
    if key is not None:
        assert lambda_error(response)["message"] == "this API key lacks the 'admin' scope (it has: invoke)"


# ----------------------------------------------------------------------------- the document says what is enforced


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    assert isinstance(client.app, FastAPI)
    built: dict[str, Any] = client.app.openapi()
    return built


def parameter(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    (found,) = (p for p in document["paths"][path][method]["parameters"] if p["name"] == name)
    schema: dict[str, Any] = found["schema"]
    return schema


def documented(pattern: str, value: str) -> bool:
    # As JSON Schema reads a pattern (ECMAScript): its "$" is the end of the string, never before a last newline.
    return re.fullmatch(pattern, value) is not None


@pytest.mark.parametrize(
    ("tenant", "valid"),
    [("acme", True), ("0", True), ("a.b_c-d", True), ("a" * 63, True), ("a" * 64, False), ("", False),
     ("Acme", False), ("-acme", False), ("ac me", False), ("acme\n", False), ("*", False)],
)  # fmt: skip
def test_the_documented_tenant_pattern_is_the_one_the_server_enforces(
    client: TestClient, admin: dict[str, str], document: dict[str, Any], tenant: str, valid: bool
) -> None:
    # GIVEN the tenant's pattern as the document states it, for the listing's filter and for a new key
    listed_pattern = parameter(document, "get", KEYS, "tenant")["pattern"]
    created_pattern = document["components"]["schemas"]["CreateKey"]["properties"]["tenant"]["pattern"]
    assert listed_pattern == created_pattern == TENANT.pattern
    assert documented(TENANT.pattern, tenant) is valid
    # WHEN a client lists and creates keys with the tenant THEN the server agrees with the document
    listed = client.get(KEYS, params={"tenant": tenant}, headers=admin)
    assert listed.status_code == (200 if valid else 400), listed.text
    created = client.post(KEYS, json={"tenant": tenant}, headers=admin)
    assert created.status_code == (201 if valid else 400), created.text
    if not valid:
        assert listed.json()["error"]["param"] == created.json()["error"]["param"] == "tenant"


@pytest.mark.parametrize(
    ("key_id", "valid"),
    [("0123456789ab", True), ("ffffffffffff", True), ("0", False), ("0123456789AB", False),
     ("0123456789abc", False), ("0123456789ab\n", False), ("am_0123456789ab_" + "A" * 43, False)],
)  # fmt: skip
@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_the_documented_key_id_pattern_is_the_one_the_server_enforces(
    client: TestClient, admin: dict[str, str], document: dict[str, Any], action: str, key_id: str, valid: bool
) -> None:
    path = f"{KEYS}/{{key_id}}/{action}"
    assert parameter(document, "post", path, "key_id")["pattern"] == KEY_ID.pattern
    assert documented(KEY_ID.pattern, key_id) is valid
    # A well-formed id of no key is a 404; a malformed one is a 400 naming the key id.
    response = client.post(f"{KEYS}/{quote(key_id, safe='')}/{action}", headers=admin)
    assert response.status_code == (404 if valid else 400), response.text
    assert response.json()["error"]["param"] == "key_id"


def test_a_new_keys_documented_scopes_and_description_are_the_ones_enforced(document: dict[str, Any]) -> None:
    properties = document["components"]["schemas"]["CreateKey"]["properties"]
    assert properties["scopes"]["items"] == {"type": "string", "enum": list(SCOPES)}
    assert properties["scopes"]["minItems"] == 1
    assert properties["description"]["maxLength"] == MAX_DESCRIPTION
    # The plans are the server's configuration: a string in the document, a 400 naming them when unknown.
    assert properties["plan"]["type"] == "string" and "enum" not in properties["plan"]


@pytest.mark.parametrize("body", [None, b"null", b"{}"])
def test_a_rotation_without_options_takes_the_defaults_as_documented(
    client: TestClient, admin: dict[str, str], document: dict[str, Any], body: bytes | None
) -> None:
    # GIVEN a document whose rotate body is optional and may be null
    request_body = document["paths"][f"{KEYS}/{{key_id}}/rotate"]["post"]["requestBody"]
    assert not request_body.get("required", False)
    assert {"type": "null"} in request_body["content"]["application/json"]["schema"]["anyOf"]
    created = create(client, admin)["key"]["key_id"]
    # WHEN a rotation comes with no body, null or an empty object
    headers = {**admin, "content-type": "application/json"} if body is not None else admin
    with Window() as window:
        response = client.post(f"{KEYS}/{created}/rotate", content=body, headers=headers)
    # THEN the old key works for the default hour
    assert response.status_code == 200, response.text
    assert window.holds(response.json()["old_key"]["revoked_at"], after=timedelta(hours=1))


KEY_CHECK = {"401", "403", "429", "503"}
BODY_READ = {"400", "408", "413", "415"}


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", KEYS, {"201", "409"} | BODY_READ | KEY_CHECK),
        ("get", KEYS, {"200", "400"} | KEY_CHECK),
        # No body to read, but a POST's Content-Type is checked: a type other than JSON is a 415.
        ("post", f"{KEYS}/{{key_id}}/revoke", {"200", "400", "404", "415"} | KEY_CHECK),
        ("post", f"{KEYS}/{{key_id}}/rotate", {"200", "404", "409"} | BODY_READ | KEY_CHECK),
    ],
)
def test_each_route_documents_exactly_the_statuses_it_answers(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert set(document["paths"][path][method]["responses"]) == statuses


def test_a_rotations_conflicts_are_documented_by_their_codes(document: dict[str, Any]) -> None:
    conflict = document["paths"][f"{KEYS}/{{key_id}}/rotate"]["post"]["responses"]["409"]["description"]
    assert conflict == "Conflict: key_revoked, key_expired, key_exists"
    created = document["paths"][KEYS]["post"]["responses"]["409"]["description"]
    assert created == "Conflict: key_exists"


# A fresh interpreter in which any UserWarning is an error: a body route's first request builds the deferred
# model's validator then, and FastAPI's adapter of it (the parameter's name as an alias) must not report itself.
FIRST_BODIES = """
import sys
from fastapi.testclient import TestClient
from aimass.http.app import build_app
from aimass.settings import Settings
store, state, key = sys.argv[1:4]
app = build_app(Settings(model_store=store, metering="sqlite", state_dir=state, alias_check_s=0))
with TestClient(app) as client:
    headers = {"Authorization": f"Bearer {key}"}
    created = client.post("/v1/admin/keys", json={"tenant": "quiet", "scopes": ["invoke"]}, headers=headers)
    assert created.status_code == 201, created.text
    rotated = client.post(f"/v1/admin/keys/{created.json()['key']['key_id']}/rotate", json=None, headers=headers)
    assert rotated.status_code == 200, rotated.text
"""


def test_a_body_routes_first_request_reports_no_warning(settings: Settings, admin_key: str) -> None:
    arguments = [str(settings.model_store), str(settings.state_dir), admin_key]
    ran = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", FIRST_BODIES, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
