"""The admin API over HTTP: a small app with the router, the project's error handlers, and a stand-in for the
metering middleware that turns a test header into ``request.state.caller``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from aimass.http.admin import admin_router
from aimass.http.document import install_document
from aimass.http.errors import install_error_handlers
from aimass.metering.key_admin import MAX_DESCRIPTION, SCOPES
from aimass.metering.keys import KEY_ID, TENANT, Caller, matches, parse
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import Settings

KEYS = "/v1/admin/keys"
CALLER = "x-test-caller"  # "admin" or "invoke": the scope of the caller the middleware sets; absent: none
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> SqliteKeyStore:
    return SqliteKeyStore(tmp_path / "metering.db")


@pytest.fixture
def client(store: SqliteKeyStore, clock: Clock) -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(admin_router(store, Settings(), clock=clock))
    install_document(app, ())  # the document as the app serves it (no framework 422s)

    @app.middleware("http")
    async def caller_from_header(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        scope = request.headers.get(CALLER)
        if scope is not None:
            request.state.caller = Caller(tenant="ops", key_id="a0a0a0a0a0a0", scopes=(scope,), plan="default")
        return await call_next(request)

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


ADMIN = {CALLER: "admin"}


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(KEYS, json={"tenant": "acme", "scopes": ["invoke"], **body}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_shows_the_key_once_and_later_reads_never_do(client: TestClient, store: SqliteKeyStore) -> None:
    # WHEN an admin creates a key
    response = client.post(
        KEYS,
        json={"tenant": "acme", "scopes": ["invoke"], "plan": "free", "expires_at": "2027-01-01T00:00:00Z",
              "description": "ci bot"},
        headers=ADMIN,
    )  # fmt: skip
    # THEN the answer carries the key in clear and its record, without the hash
    assert response.status_code == 201
    body = response.json()
    parsed = parse(body["api_key"])
    assert parsed is not None
    key_id, secret = parsed
    assert body["key"] == {
        "key_id": key_id, "tenant": "acme", "scopes": ["invoke"], "plan": "free",
        "created_at": "2026-06-01T12:00:00Z", "expires_at": "2027-01-01T00:00:00Z", "revoked_at": None,
        "description": "ci bot", "active": True,
    }  # fmt: skip
    stored = store.get(key_id)
    assert stored is not None and matches(stored, secret)
    # AND a later listing shows the record, never the key, its secret or its hash
    listed = client.get(KEYS, params={"tenant": "acme"}, headers=ADMIN)
    assert listed.status_code == 200 and listed.json() == {"keys": [body["key"]]}
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert all(text not in listed.text for text in (body["api_key"], secret, digest, "secret_sha256"))


def test_list_filters_by_tenant(client: TestClient) -> None:
    acme, globex = create(client), create(client, tenant="globex")
    everything = client.get(KEYS, headers=ADMIN).json()["keys"]
    assert {key["key_id"] for key in everything} == {acme["key"]["key_id"], globex["key"]["key_id"]}
    only = client.get(KEYS, params={"tenant": "globex"}, headers=ADMIN).json()["keys"]
    assert [key["key_id"] for key in only] == [globex["key"]["key_id"]]


@pytest.mark.parametrize("caller", [{CALLER: "invoke"}, {}])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", KEYS), ("GET", KEYS), ("POST", f"{KEYS}/0123456789ab/revoke"), ("POST", f"{KEYS}/0123456789ab/rotate")],
)
def test_only_admin_callers_are_served(
    client: TestClient, store: SqliteKeyStore, caller: dict[str, str], method: str, path: str
) -> None:
    response = client.request(method, path, json={"tenant": "acme", "scopes": ["admin"]}, headers=caller)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    expected = (
        "key 'a0a0a0a0a0a0' has the scopes invoke; the admin API needs 'admin'" if caller else "not authenticated"
    )
    assert expected in error["message"]
    assert store.list() == []


@pytest.mark.parametrize(
    ("body", "param", "expected"),
    [
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
    ],
)
def test_wrong_values_are_400_naming_the_field(
    client: TestClient, store: SqliteKeyStore, body: dict[str, Any], param: str, expected: str
) -> None:
    response = client.post(KEYS, json=body, headers=ADMIN)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_input", param) and expected in error["message"]
    assert store.list() == []


def test_revoke(client: TestClient, clock: Clock) -> None:
    key_id = create(client)["key"]["key_id"]
    clock.now += timedelta(minutes=5)
    response = client.post(f"{KEYS}/{key_id}/revoke", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["revoked_at"] == "2026-06-01T12:05:00Z" and response.json()["active"] is False
    assert "api_key" not in response.json() and "secret_sha256" not in response.json()


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_an_unknown_key_is_404_and_a_malformed_id_400(client: TestClient, action: str) -> None:
    unknown = client.post(f"{KEYS}/0123456789ab/{action}", headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "key_id"
    assert "no key with id '0123456789ab'" in unknown.json()["error"]["message"]
    malformed = client.post(f"{KEYS}/acme/{action}", headers=ADMIN)
    assert malformed.status_code == 400 and malformed.json()["error"]["param"] == "key_id"


def test_rotate_keeps_the_old_key_for_the_grace_period(client: TestClient, clock: Clock) -> None:
    old = create(client, scopes=["invoke", "admin"], plan="free")
    response = client.post(f"{KEYS}/{old['key']['key_id']}/rotate", json={"grace_seconds": 600}, headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert parse(body["api_key"]) is not None and body["api_key"] != old["api_key"]
    assert (body["key"]["tenant"], body["key"]["scopes"], body["key"]["plan"]) == ("acme", ["invoke", "admin"], "free")
    assert body["old_key"]["revoked_at"] == "2026-06-01T12:10:00Z" and body["old_key"]["active"] is True
    clock.now += timedelta(minutes=10)
    states = {key["key_id"]: key["active"] for key in client.get(KEYS, headers=ADMIN).json()["keys"]}
    assert states == {old["key"]["key_id"]: False, body["key"]["key_id"]: True}
    assert body["api_key"] not in client.get(KEYS, headers=ADMIN).text


def test_rotate_defaults_to_an_hour_and_refuses_what_cannot_be_rotated(client: TestClient) -> None:
    key_id = create(client)["key"]["key_id"]
    assert client.post(f"{KEYS}/{key_id}/rotate", headers=ADMIN).json()["old_key"]["revoked_at"] == (
        "2026-06-01T13:00:00Z"
    )
    too_long = client.post(f"{KEYS}/{key_id}/rotate", json={"grace_seconds": 31 * 86400}, headers=ADMIN)
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "grace_seconds"
    client.post(f"{KEYS}/{key_id}/revoke", headers=ADMIN)
    revoked = client.post(f"{KEYS}/{key_id}/rotate", json={"grace_seconds": 0}, headers=ADMIN)
    assert revoked.status_code == 409 and revoked.json()["error"]["code"] == "key_revoked"


@pytest.mark.parametrize(
    ("grace", "kind"),
    [(False, "a boolean"), (True, "a boolean"), ("60", "a string"), (None, "null"), ([60], "an array")],
)
def test_a_grace_that_is_not_a_json_number_is_400_and_the_old_key_keeps_working(
    client: TestClient, store: SqliteKeyStore, clock: Clock, grace: object, kind: str
) -> None:
    # GIVEN a key in use
    key_id = create(client)["key"]["key_id"]
    # WHEN a rotation names its grace with a JSON value that is not a number (false is not 0 seconds)
    response = client.post(f"{KEYS}/{key_id}/rotate", json={"grace_seconds": grace}, headers=ADMIN)
    # THEN it is refused naming the field and what came, and nothing was rotated or revoked
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_input", "grace_seconds")
    assert error["message"] == f"grace_seconds: expected a JSON number of seconds, got {kind}"
    (record,) = store.list()
    assert record.key_id == key_id and record.revoked_at is None


@pytest.mark.parametrize("grace", [0, 90, 1.5])
def test_a_grace_in_json_numbers_is_taken(client: TestClient, clock: Clock, grace: float) -> None:
    key_id = create(client)["key"]["key_id"]
    response = client.post(f"{KEYS}/{key_id}/rotate", json={"grace_seconds": grace}, headers=ADMIN)
    assert response.status_code == 200
    ends = datetime.fromisoformat(response.json()["old_key"]["revoked_at"])
    assert ends == clock.now + timedelta(seconds=grace)


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
    client: TestClient, store: SqliteKeyStore, field: str, value: object, expected: str
) -> None:
    response = client.post(KEYS, json={"tenant": "acme", field: value}, headers=ADMIN)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and expected in error["message"]
    assert store.list() == []


# ----------------------------------------------------------------------------- the document says what is enforced


@pytest.fixture
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
    client: TestClient, document: dict[str, Any], tenant: str, valid: bool
) -> None:
    # GIVEN the tenant's pattern as the document states it, for the listing's filter and for a new key
    listed_pattern = parameter(document, "get", KEYS, "tenant")["pattern"]
    created_pattern = document["components"]["schemas"]["CreateKey"]["properties"]["tenant"]["pattern"]
    assert listed_pattern == created_pattern == TENANT.pattern
    assert documented(TENANT.pattern, tenant) is valid
    # WHEN a client lists and creates keys with the tenant THEN the server agrees with the document
    listed = client.get(KEYS, params={"tenant": tenant}, headers=ADMIN)
    assert listed.status_code == (200 if valid else 400), listed.text
    created = client.post(KEYS, json={"tenant": tenant}, headers=ADMIN)
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
    client: TestClient, document: dict[str, Any], action: str, key_id: str, valid: bool
) -> None:
    path = f"{KEYS}/{{key_id}}/{action}"
    assert parameter(document, "post", path, "key_id")["pattern"] == KEY_ID.pattern
    assert documented(KEY_ID.pattern, key_id) is valid
    # A well-formed id of no key is a 404; a malformed one is a 400 naming the key id.
    response = client.post(f"{KEYS}/{quote(key_id, safe='')}/{action}", headers=ADMIN)
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
    client: TestClient, document: dict[str, Any], body: bytes | None
) -> None:
    # GIVEN a document whose rotate body is optional and may be null
    request_body = document["paths"][f"{KEYS}/{{key_id}}/rotate"]["post"]["requestBody"]
    assert not request_body.get("required", False)
    assert {"type": "null"} in request_body["content"]["application/json"]["schema"]["anyOf"]
    key_id = create(client)["key"]["key_id"]
    # WHEN a rotation comes with no body, null or an empty object
    headers = {**ADMIN, "content-type": "application/json"} if body is not None else ADMIN
    response = client.post(f"{KEYS}/{key_id}/rotate", content=body, headers=headers)
    # THEN the old key works for the default hour
    assert response.status_code == 200, response.text
    assert response.json()["old_key"]["revoked_at"] == "2026-06-01T13:00:00Z"


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
