"""The API Gateway authorizer through its Lambda handler (functions/authorizer/handler.py) and a recorded
REQUEST authorizer event: valid keys allowed with their edge key, every other key denied with the message the
functions give, and a key store that cannot be read fails the request rather than passing it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass.errors import ServiceUnavailable
from aimass.http.app import build_app
from aimass.metering.key_admin import create_key, revoke_key
from aimass.metering.key_check import INVALID_KEY, MISSING_KEY
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import DEFAULT_PLANS, Settings, get_settings
from tests.conftest import load_event, load_script
from tests.moto_server import MotoServer
from tests.tiny_models import TINY_TEXT

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "authorizer" / "handler.py"
EVENT = load_event("apigw_authorizer_request")
API_ID = EVENT["requestContext"]["apiId"]

Authorizer = Callable[[dict[str, Any], Any], dict[str, Any]]


def import_handler(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Authorizer:
    """Import the handler module as a new Lambda container does, with the function's environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    handler: Authorizer = load_script(HANDLER, "authorizer_handler").handler
    return handler


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def handler(state: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Authorizer]:
    yield import_handler(monkeypatch, {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(state)})
    get_settings.cache_clear()


def issue(state: Path, **fields: Any) -> tuple[str, str]:
    """(clear text, key id) of a new key in the state folder's store."""
    issued = create_key(
        SqliteKeyStore(state / "metering.db"), tenant=fields.pop("tenant", "acme"), scopes=["invoke"],
        plan=fields.pop("plan", "free"), plans=DEFAULT_PLANS, now=fields.pop("now", datetime.now(UTC)), **fields,
    )  # fmt: skip
    return issued.clear_text, issued.key.key_id


def event_with(**headers: str) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["headers"].update(headers)
    event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    return event


def test_a_valid_key_is_allowed_and_named_by_its_edge_key(handler: Authorizer, state: Path) -> None:
    key, key_id = issue(state, plan="free")
    for headers in ({"Authorization": f"Bearer {key}"}, {"x-api-key": key}, {"X-API-Key": key}):
        # WHEN API Gateway asks about a request carrying the key
        response = handler(event_with(**headers), None)
        # THEN the method is allowed, for the key's tenant, and API Gateway throttles the key's edge key
        assert response["policyDocument"]["Statement"] == [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": EVENT["methodArn"]}
        ]
        assert response["principalId"] == "acme"
        assert response["context"] == {"tenant": "acme", "keyId": key_id, "plan": "free", "scopes": "invoke"}
        assert response["usageIdentifierKey"] == f"aimass-{API_ID}-{key_id}"
        assert json.dumps(response)  # what Lambda serialises for API Gateway


def test_every_other_key_is_denied_with_the_functions_message(handler: Authorizer, state: Path) -> None:
    key, _ = issue(state)
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    unknown = f"am_{'0' * 12}_{key.rsplit('_', 1)[1]}"
    revoked, revoked_id = issue(state)
    revoke_key(SqliteKeyStore(state / "metering.db"), revoked_id, now=datetime.now(UTC) - timedelta(seconds=1))
    expired, _ = issue(
        state, now=datetime.now(UTC) - timedelta(days=2), expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    cases = {
        "missing": ({}, MISSING_KEY),
        "empty bearer": ({"Authorization": "Bearer "}, MISSING_KEY),
        "malformed": ({"Authorization": "Bearer not-a-key"}, INVALID_KEY),
        "unknown id": ({"x-api-key": unknown}, INVALID_KEY),
        "wrong secret": ({"Authorization": f"Bearer {wrong_secret}"}, INVALID_KEY),
        "revoked": ({"x-api-key": revoked}, "this API key was revoked at "),
        "expired": ({"x-api-key": expired}, "this API key expired at "),
    }
    for case, (headers, message) in cases.items():
        response = handler(event_with(**headers), None)
        (statement,) = response["policyDocument"]["Statement"]
        assert statement == {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": EVENT["methodArn"]}, case
        assert "usageIdentifierKey" not in response, case
        assert response["context"]["message"].startswith(message), case
        assert response["context"]["code"] == "invalid_api_key", case
        # The gateway response pastes the message into a JSON string: nothing in it may end the string.
        assert json.loads(f'{{"message": "{response["context"]["message"]}"}}'), case
    # A wrong secret and an unknown key id read alike: nothing tells which part was wrong.
    assert (
        handler(event_with(x_api_key=wrong_secret), None)["context"]
        == handler(event_with(x_api_key=unknown), None)["context"]
    )


def test_the_edge_and_the_functions_refuse_the_same_keys(
    handler: Authorizer, state: Path, tiny_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the edge lets through is one the function accepts, and a refusal reads the same at both."""
    key, _ = issue(state, plan="default")
    revoked, revoked_id = issue(state, plan="default")
    revoke_key(SqliteKeyStore(state / "metering.db"), revoked_id, now=datetime.now(UTC) - timedelta(seconds=1))
    settings = Settings(model_store=tiny_store, metering="sqlite", state_dir=state, alias_check_s=0)
    presented = [None, key, revoked, "am_zz_bad", key[:-1] + "x", f"Bearer {key}"]
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        for value in presented:
            headers = {} if value is None else {"x-api-key": value}
            decision = handler(event_with(**headers), None)
            answer = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": "hi"}, headers=headers)
            allowed = decision["policyDocument"]["Statement"][0]["Effect"] == "Allow"
            assert allowed == (answer.status_code == 200), (value, answer.text)
            if not allowed:
                assert answer.status_code == 401
                assert answer.json()["error"]["message"] == decision["context"]["message"]


def test_an_unreadable_key_store_fails_the_request(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the authorizer pointed at a keys table that does not exist
    handler = import_handler(
        monkeypatch,
        {**moto.environment(), "AIMASS_METERING": "dynamodb", "AIMASS_KEYS_TABLE": "absent",
         "AIMASS_AWS_ENDPOINT_URL": moto.endpoint},
    )  # fmt: skip
    key = f"am_{'1' * 12}_{'A' * 43}"
    # WHEN a request comes THEN the invocation fails (API Gateway answers 503), no policy is returned
    with pytest.raises(ServiceUnavailable, match="API keys cannot be checked right now"):
        handler(event_with(Authorization=f"Bearer {key}"), None)
    # ...while a request with no key at all is still denied without a lookup
    assert handler(event_with(), None)["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    get_settings.cache_clear()
