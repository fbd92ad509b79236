"""The OpenAPI document says what the server does: its statuses, its error shapes, its required parameters.

The app is the real one with metering on, so the key-protected routes (usage, admin) are in the document.
test_schema_fuzz.py then holds every answer to it; these tests pin what a reader of the document relies on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aimass.contract import OPEN_PATHS
from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Settings


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=tmp_path_factory.mktemp("doc-state"))


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return build_app(settings)


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    built: dict[str, Any] = app.openapi()
    return built


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_no_status_is_documented_that_the_server_never_answers(document: dict[str, Any]) -> None:
    # FastAPI documents a 422 for every route with parameters; validation errors here are 400s.
    text = json.dumps(document)
    assert '"422"' not in text and "HTTPValidationError" not in text


def test_every_error_is_documented_in_the_shape_of_its_path(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            shape = "ErrorResponse" if path.startswith("/v2") else "ApiError"
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{shape}"}, (method, path, status)


def test_routes_behind_a_key_document_what_the_key_check_answers(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        documented = set(operation["responses"])
        if path in OPEN_PATHS:
            assert not documented & {"401", "403", "429"}, (method, path)
        else:
            assert documented >= {"401", "403", "429", "503"}, (method, path)


def test_routes_with_a_body_document_what_reading_it_answers(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if "requestBody" in operation:
            assert set(operation["responses"]) >= {"400", "408", "413", "415"}, (method, path)


def test_required_parameters_are_marked_required(document: dict[str, Any]) -> None:
    usage = {p["name"]: p for p in document["paths"]["/v1/usage"]["get"]["parameters"]}
    assert usage["start_time"]["required"] is True
    assert usage["start_time"]["schema"]["pattern"] == "^[0-9]{1,18}$"
    assert not usage["end_time"]["required"] and not usage["limit"]["required"]
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["required"] is True, (method, path, parameter["name"])


def test_a_405_names_every_method_the_path_allows(app: FastAPI, settings: Settings, document: dict[str, Any]) -> None:
    # GIVEN a path served by one route per method
    assert set(document["paths"]["/v1/admin/keys"]) == {"get", "post"}
    issued = create_key(
        open_key_store(settings), tenant="ops", scopes=("admin",), plan="default", plans=settings.plans,
        now=datetime.now(UTC),
    )  # fmt: skip
    # WHEN a client uses another method
    with TestClient(app) as client:
        response = client.delete("/v1/admin/keys", headers={"x-api-key": issued.clear_text})
    # THEN the 405 names both (Starlette's own names only the first route's)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["error"]["message"] == "DELETE is not allowed on /v1/admin/keys; allowed: GET, HEAD, POST"


def test_the_admin_routes_document_their_own_errors(app: FastAPI, settings: Settings, document: dict[str, Any]) -> None:
    # GIVEN the served app, where the admin routes share the JSON body check but not their errors
    listing = document["paths"]["/v1/admin/keys"]["get"]["responses"]
    assert set(listing) == {"200", "400", "401", "403", "429", "503"}
    revoke = document["paths"]["/v1/admin/keys/{key_id}/revoke"]["post"]
    assert "requestBody" not in revoke and not {"408", "409", "413"} & set(revoke["responses"])
    issued = create_key(
        open_key_store(settings), tenant="ops", scopes=("admin",), plan="default", plans=settings.plans,
        now=datetime.now(UTC),
    )  # fmt: skip
    # WHEN a revoke comes with a Content-Type other than JSON
    with TestClient(app) as client:
        response = client.post(
            "/v1/admin/keys/0123456789ab/revoke", headers={"x-api-key": issued.clear_text, "content-type": "text/plain"}
        )
    # THEN it is the 415 the document lists for it
    assert response.status_code == 415 and "415" in revoke["responses"]
