"""Imported models scoped to their importer's tenant: callable with its keys, a model like any unknown one to others.

GIVEN an admin of tenant acme importing a model through the management API (scoped to acme by default), WHEN
keys of acme and of globex call it, list the models or run it in a batch line, THEN acme's are answered and
globex's get exactly what a model that does not exist gets; a model imported for every tenant answers both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from aimass.batches.dispatch import LineClient, LineRequestOf
from aimass.batches.service import Endpoints
from aimass.errors import InvalidInput
from aimass.http.app import batch_line_routes, build_app
from aimass.http.gateway import listing_event
from aimass.http.peers import Peers
from aimass.importing.importer import ImportSpec, import_graph
from aimass.lambda_context import LocalLambdaContext
from aimass.serving.boot import load_models
from aimass.serving.session import SessionFactory
from aimass.serving.tenancy import tenant_scope
from aimass.settings import PeerSpec, Settings
from tests import tiny_imports as tiny
from tests.functional.test_files_api import PLANS, auth

ROWS = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [[0.1, 0.2, 0.3, 0.4]]}]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    store = tmp_path / "store"
    tiny.import_into(store, tiny.mlp(seed=1), "shared")
    return Settings(model_store=store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS, alias_check_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def import_as(client: TestClient, headers: dict[str, str], name: str, **options: Any) -> Any:
    uploaded = client.post(
        "/v1/files", headers=headers, files={"file": ("m.onnx", tiny.mlp(seed=2))}, data={"purpose": "model"}
    )
    return client.post(
        "/v1/admin/models", headers=headers, json={"name": name, "file_id": uploaded.json()["id"], **options}
    )


def test_a_model_imported_for_its_tenant_is_invisible_to_others(client: TestClient, settings: Settings) -> None:
    acme_admin, acme, globex = (
        auth(settings, "acme", ("admin", "invoke")),
        auth(settings, "acme"),
        auth(settings, "globex"),
    )
    answer = import_as(client, acme_admin, "acme-churn")
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"]["tenant"] == "acme"
    # acme's keys call it
    assert client.post("/v2/models/acme-churn/infer", headers=acme, json=ROWS).status_code == 200
    # globex gets what a model that does not exist gets, and does not see it listed
    theirs = client.post("/v2/models/acme-churn/infer", headers=globex, json=ROWS)
    nothing = client.post("/v2/models/no-such-model/infer", headers=globex, json=ROWS)
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["error"] == nothing.json()["error"].replace("no-such-model", "acme-churn")
    assert client.get("/v2/models/acme-churn", headers=globex).status_code == 404
    listed = {card["id"] for card in client.get("/v1/models", headers=globex).json()["data"]}
    assert listed == {"shared"}
    assert "acme-churn" in {card["id"] for card in client.get("/v1/models", headers=acme).json()["data"]}
    index = client.post("/v2/repository/index", headers=globex, json={}).json()
    assert "acme-churn" not in {entry["name"] for entry in index}


def test_a_model_imported_for_every_tenant_answers_all(client: TestClient, settings: Settings) -> None:
    admin, globex = auth(settings, "acme", ("admin", "invoke")), auth(settings, "globex")
    answer = import_as(client, admin, "open-churn", visibility="all")
    assert answer.status_code == 201 and answer.json()["version"]["tenant"] is None
    assert client.post("/v2/models/open-churn/infer", headers=globex, json=ROWS).status_code == 200


def test_a_batch_line_acts_for_its_batchs_tenant(settings: Settings, tmp_path: Path) -> None:
    # GIVEN a model scoped to acme, and the app batch lines run on (no keys there: the batch names its tenant)
    tiny.import_into(settings.model_store, tiny.mlp(seed=3), "acme-only", tenant="acme")
    registry = load_models(settings)
    lines = LineClient(batch_line_routes(registry, settings).app)
    request = LineRequestOf("/v2/models/acme-only/infer", ROWS, "line-1")
    try:
        with tenant_scope("globex"):
            (refused,) = lines.post_all([request])
        with tenant_scope("acme"):
            (answered,) = lines.post_all([request])
    finally:
        lines.close()
    assert refused.status == 404 and answered.status == 200


def test_an_invalid_tenant_is_refused_naming_it(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        import_graph(
            tiny.mlp(), ImportSpec(name="m", tenant="Not A Tenant"), tmp_path / "work", SessionFactory(settings)
        )
    assert raised.value.param == "tenant" and not (tmp_path / "work").exists()


def test_a_peers_listing_for_the_front_function_is_its_callers(settings: Settings) -> None:
    # GIVEN the function of imported models (a peer on AWS) holding a model scoped to acme
    tiny.import_into(settings.model_store, tiny.mlp(seed=4), "acme-only", tenant="acme")
    peer = Mangum(build_app(settings), lifespan="off")

    def listed(tenant: str | None) -> set[str]:
        asyncio.set_event_loop(asyncio.new_event_loop())
        response = peer(listing_event("GET", "/v1/models", "req-1", tenant), LocalLambdaContext())
        assert response["statusCode"] == 200, response
        return {card["id"] for card in json.loads(response["body"])["data"]}

    # WHEN the front function lists it for its callers THEN each sees what its tenant may call
    assert listed("acme") == {"shared", "acme-only"}
    assert listed("globex") == {"shared"}


def test_the_front_function_asks_and_caches_each_tenants_listing_apart() -> None:
    events: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        tenant = event["requestContext"].get("aimassTenant")
        data = [{"id": f"{tenant}-model", "object": "model", "created": 0, "owned_by": "aimass"}]
        return {"statusCode": 200, "body": json.dumps({"object": "list", "data": data})}

    peers = Peers([PeerSpec(domain="tensor", function="aimass-tensor")], invoke, ttl_s=60)
    for tenant in ("acme", "globex", "acme"):
        with tenant_scope(tenant):
            assert [card.id for card in peers.cards()] == [f"{tenant}-model"]
    assert [event["requestContext"]["aimassTenant"] for event in events] == ["acme", "globex"]  # acme's cached


def test_a_batch_of_an_imported_model_goes_to_the_import_domain_where_one_is_set() -> None:
    catalogued = {"all-minilm-l6-v2": "text", "tensor-wine": "tensor"}
    local, front = Endpoints(lambda: catalogued), Endpoints(lambda: catalogued, imports="tensor")
    assert local.domain("/v2/models/imported-later/infer") is None  # one process: what it serves is all there is
    assert front.domain("/v2/models/imported-later/infer") == "tensor"
    assert front.domain("/v2/models/all-minilm-l6-v2/infer") == "text"
