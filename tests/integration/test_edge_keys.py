"""Edge keys on API Gateway (moto's server over HTTP): each AI Mass key mirrored as an API key in its plan's
usage plan, through ``key_admin``, the ``aimass keys`` CLI and the admin API; ``sync-edge`` repairs drift."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aimass.http.app import build_app
from aimass.metering import key_admin
from aimass.metering.edge_keys import ApiGatewayEdgeKeys, EdgeUnavailable, edge_key_name
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import DEFAULT_PLANS, Settings
from aimass_tools.cli import app as cli
from tests.moto_server import MotoServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Edge:
    api_id: str
    usage_plans: dict[str, str]  # plan -> usage plan id
    client: Any

    def keys_in(self, plan: str) -> set[str]:
        items = self.client.get_usage_plan_keys(usagePlanId=self.usage_plans[plan])["items"]
        return {item["name"] for item in items}

    def all_keys(self) -> set[str]:
        return {item["name"] for item in self.client.get_api_keys(nameQuery="aimass-")["items"]}


@pytest.fixture
def edge(moto: MotoServer) -> Edge:
    """A REST API with a stage and one tagged usage plan per default plan, beside another API's usage plan."""
    client = moto.client("apigateway")
    usage_plans = {}
    for name in ("serving", "other"):
        api_id = client.create_rest_api(name=name)["id"]
        root = client.get_resources(restApiId=api_id)["items"][0]["id"]
        client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
        client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
        client.create_deployment(restApiId=api_id, stageName="dev")
        for plan in DEFAULT_PLANS:
            created = client.create_usage_plan(
                name=f"{name}-{plan}", apiStages=[{"apiId": api_id, "stage": "dev"}], tags={"aimass:plan": plan}
            )
            if name == "serving":
                usage_plans[plan] = created["id"]
        if name == "serving":
            serving = api_id
    return Edge(serving, usage_plans, client)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteKeyStore]:
    store = SqliteKeyStore(tmp_path / "metering.db")
    yield store
    store.close()


def test_a_keys_life_is_mirrored_in_its_plans_usage_plan(edge: Edge, store: SqliteKeyStore) -> None:
    mirror = ApiGatewayEdgeKeys(edge.client, edge.api_id)
    # WHEN a key on the free plan is created
    issued = key_admin.create_key(
        store, tenant="acme", scopes=["invoke"], plan="free", plans=DEFAULT_PLANS, now=NOW, edge=mirror
    )
    name = edge_key_name(edge.api_id, issued.key.key_id)
    # THEN its edge key is in the free usage plan of this API, and nowhere else
    assert edge.keys_in("free") == {name}
    assert edge.keys_in("default") == set()
    (api_key,) = edge.client.get_api_keys(nameQuery=name, includeValues=True)["items"]
    assert api_key["value"] == name and api_key["enabled"] is True
    assert issued.clear_text.split("_")[-1] not in str(api_key)  # the secret never leaves the key store
    # WHEN it is rotated with a grace period THEN both keys have an edge key until the old one ends
    rotated = key_admin.rotate_key(store, issued.key.key_id, grace=timedelta(hours=1), now=NOW, edge=mirror)
    new_name = edge_key_name(edge.api_id, rotated.key.key_id)
    assert edge.keys_in("free") == {name, new_name}
    # WHEN the old key is revoked THEN its edge key is gone and the new one stays
    key_admin.revoke_key(store, issued.key.key_id, now=NOW, edge=mirror)
    assert edge.all_keys() == {new_name}


def test_sync_registers_the_missing_and_retires_the_stale(edge: Edge, store: SqliteKeyStore) -> None:
    mirror = ApiGatewayEdgeKeys(edge.client, edge.api_id)
    # GIVEN keys made before the edge existed: one valid, one expired, one revoked
    valid = key_admin.create_key(store, tenant="acme", scopes=["invoke"], plan="default", plans=DEFAULT_PLANS, now=NOW)
    expiring = key_admin.create_key(
        store, tenant="acme", scopes=["invoke"], plan="default", plans=DEFAULT_PLANS, now=NOW,
        expires_at=NOW + timedelta(minutes=5),
    )  # fmt: skip
    revoked = key_admin.create_key(store, tenant="beta", scopes=["invoke"], plan="free", plans=DEFAULT_PLANS, now=NOW)
    # ...and an edge key whose key the store never had (a create that failed after its edge step)
    edge.client.create_api_key(name=edge_key_name(edge.api_id, "0123456789ab"), value="x" * 24, enabled=True)
    key_admin.sync_edge(store, mirror, now=NOW)
    assert edge.keys_in("default") == {edge_key_name(edge.api_id, k.key.key_id) for k in (valid, expiring)}
    assert edge.keys_in("free") == {edge_key_name(edge.api_id, revoked.key.key_id)}
    # WHEN time passes and a key is revoked without the edge being told
    store.revoke(revoked.key.key_id, NOW)
    later = NOW + timedelta(minutes=10)
    synced = key_admin.sync_edge(store, mirror, now=later)
    # THEN sync retires exactly the expired and the revoked key; a second sync has nothing to do
    assert sorted(synced.retired) == sorted([expiring.key.key_id, revoked.key.key_id])
    assert synced.registered == []
    assert edge.all_keys() == {edge_key_name(edge.api_id, valid.key.key_id)}
    assert key_admin.sync_edge(store, mirror, now=later) == ([], [])


def test_a_plan_without_a_usage_plan_issues_no_key(edge: Edge, store: SqliteKeyStore) -> None:
    plans = {**DEFAULT_PLANS, "gold": DEFAULT_PLANS["default"]}
    with pytest.raises(EdgeUnavailable, match=r"no usage plan tagged aimass:plan=gold; deploy the stack") as caught:
        key_admin.create_key(
            store, tenant="acme", scopes=["invoke"], plan="gold", plans=plans, now=NOW,
            edge=ApiGatewayEdgeKeys(edge.client, edge.api_id),
        )  # fmt: skip
    assert caught.value.status_code == 503
    assert store.list() == []  # nothing half-written: no key the edge would refuse


def test_the_cli_mirrors_keys_when_the_edge_is_named(edge: Edge, moto: MotoServer, tmp_path: Path) -> None:
    env = {**moto.environment(), "AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(tmp_path),
           "AIMASS_AWS_ENDPOINT_URL": moto.endpoint, "AIMASS_EDGE_API_ID": edge.api_id, "COLUMNS": "200"}  # fmt: skip
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--plan", "free"], env=env)
    assert created.exit_code == 0, created.output
    (key_id,) = {key.key_id for key in SqliteKeyStore(tmp_path / "metering.db").list()}
    assert edge.keys_in("free") == {edge_key_name(edge.api_id, key_id)}
    # GIVEN the edge loses the key WHEN sync-edge runs THEN it is back, and the command says what it did
    edge.client.delete_api_key(apiKey=edge.client.get_api_keys(nameQuery="aimass-")["items"][0]["id"])
    synced = runner.invoke(cli, ["keys", "sync-edge"], env=env)
    assert synced.exit_code == 0, synced.output
    assert f"1 key(s) registered ({key_id}), 0 retired" in synced.output
    assert edge.keys_in("free") == {edge_key_name(edge.api_id, key_id)}
    # A wrong API id is one red line naming it, and no key is made
    wrong = runner.invoke(cli, ["keys", "create", "--tenant", "acme"], env={**env, "AIMASS_EDGE_API_ID": "nosuchapi"})
    assert wrong.exit_code == 1
    assert wrong.output.startswith("error: REST API 'nosuchapi' has no usage plan tagged aimass:plan=default")
    assert len(SqliteKeyStore(tmp_path / "metering.db").list()) == 1


def test_sync_edge_needs_the_api_named(tmp_path: Path) -> None:
    env = {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["keys", "sync-edge"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("error: AIMASS_EDGE_API_ID is not set")


def test_the_admin_api_mirrors_keys(
    edge: Edge, moto: MotoServer, tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto.environment().items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        model_store=tiny_store, metering="sqlite", state_dir=tmp_path, aws_endpoint_url=moto.endpoint,
        edge_api_id=edge.api_id, alias_check_s=0,
    )  # fmt: skip
    admin = key_admin.create_key(
        SqliteKeyStore(tmp_path / "metering.db"), tenant="ops", scopes=["invoke", "admin"], plan="default",
        plans=DEFAULT_PLANS, now=datetime.now(UTC),
    )  # fmt: skip
    with TestClient(build_app(settings)) as client:
        headers = {"Authorization": f"Bearer {admin.clear_text}"}
        created = client.post("/v1/admin/keys", json={"tenant": "acme", "plan": "free"}, headers=headers)
        assert created.status_code == 201, created.text
        key_id = created.json()["key"]["key_id"]
        assert edge_key_name(edge.api_id, key_id) in edge.keys_in("free")
        revoked = client.post(f"/v1/admin/keys/{key_id}/revoke", headers=headers)
        assert revoked.status_code == 200, revoked.text
        assert edge_key_name(edge.api_id, key_id) not in edge.all_keys()
