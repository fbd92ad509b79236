"""Both key stores keep the same rules: SQLite in a file, DynamoDB on moto's server over real HTTP.

One behaviour suite runs over every backend (DynamoDB with the tenant index, and without it, listing by
Scan); then what only one backend has: concurrent writers on SQLite, DynamoDB's conditional writes and
errors, and ``open_key_store`` choosing from the settings.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from aimass.contract import KEYS_TENANT_INDEX as TENANT_INDEX
from aimass.errors import InvalidInput, NotFound
from aimass.metering.keys import ApiKey, KeyStore, new_key
from aimass.metering.stores.base import KeyExists, MeteringUnavailable
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.keys_dynamodb import DynamoKeyStore, keys_table_definition
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import Settings
from tests.moto_server import REGION, MotoServer

TABLE = "aimass-keys"
NOW = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
HOUR = timedelta(hours=1)


def make(tenant: str = "acme", *, at: datetime = NOW, **fields: Any) -> ApiKey:
    return new_key(tenant, ("invoke",), plan="default", created_at=at, **fields)[1]


@pytest.fixture
def dynamodb(moto: MotoServer) -> Any:
    client = moto.client("dynamodb")
    client.create_table(**keys_table_definition(TABLE))
    return client


@pytest.fixture(params=["sqlite", "dynamodb", "dynamodb-scan"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        sqlite = SqliteKeyStore(tmp_path / "metering.db")
        yield sqlite
        sqlite.close()
    else:
        client = request.getfixturevalue("dynamodb")
        yield DynamoKeyStore(client, TABLE, tenant_index=TENANT_INDEX if request.param == "dynamodb" else None)


# ----------------------------------------------------------------------------------- the shared behaviour


def test_a_record_comes_back_as_it_was_stored(store: KeyStore) -> None:
    plain = make()
    full = new_key(
        "acme", ("invoke", "admin"), plan="free", created_at=NOW, expires_at=NOW + 24 * HOUR, description="ci bot"
    )[1]
    for record in (plain, full):
        store.add(record)
        assert store.get(record.key_id) == record
    got = store.get(full.key_id)
    assert got is not None and got.created_at.tzinfo is not None and got.scopes == ("invoke", "admin")


def test_an_unknown_key_id_is_none(store: KeyStore) -> None:
    assert store.get("0123456789ab") is None


def test_list_by_tenant_oldest_first(store: KeyStore) -> None:
    keys = [make("acme", at=NOW + 2 * HOUR), make("acme", at=NOW), make("globex", at=NOW + HOUR)]
    for key in keys:
        store.add(key)
    assert store.list("acme") == [keys[1], keys[0]]
    assert store.list("globex") == [keys[2]]
    assert store.list("initech") == []
    assert store.list() == [keys[1], keys[2], keys[0]]


def test_a_key_id_is_never_stored_twice(store: KeyStore) -> None:
    first = make()
    store.add(first)
    impostor = make("globex").model_copy(update={"key_id": first.key_id})
    with pytest.raises(KeyExists) as refused:
        store.add(impostor)
    assert refused.value.status_code == 409 and refused.value.param == "key_id"
    assert f"key id '{first.key_id}' is already stored" in refused.value.message
    assert store.get(first.key_id) == first and store.list() == [first]


def test_revoke_only_ever_moves_the_time_earlier(store: KeyStore) -> None:
    key = make()
    store.add(key)
    in_grace = store.revoke(key.key_id, NOW + 2 * HOUR)  # a rotation's grace period
    assert in_grace.revoked_at == NOW + 2 * HOUR and in_grace.valid_at(NOW + HOUR)
    cut_short = store.revoke(key.key_id, NOW + HOUR)
    kept = store.revoke(key.key_id, NOW + 3 * HOUR)
    assert cut_short.revoked_at == kept.revoked_at == NOW + HOUR
    assert store.get(key.key_id) == key.model_copy(update={"revoked_at": NOW + HOUR})


def test_revoke_keeps_a_time_zone_other_than_utc_in_order(store: KeyStore) -> None:
    key = make()
    store.add(key)
    store.revoke(key.key_id, NOW + 2 * HOUR)
    # 13:00 at UTC+2 is 11:00 UTC, earlier than 14:00 UTC though its text sorts later.
    earlier = store.revoke(key.key_id, (NOW + HOUR).astimezone(timezone(2 * HOUR)))
    assert earlier.revoked_at == NOW + HOUR


def test_revoking_an_unknown_key_is_not_found(store: KeyStore) -> None:
    with pytest.raises(NotFound) as refused:
        store.revoke("0123456789ab", NOW)
    assert refused.value.param == "key_id" and "no key with id '0123456789ab'" in refused.value.message
    assert store.list() == []


# -------------------------------------------------------------------------------------------------- SQLite


def test_concurrent_adds_and_revokes_from_threads(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "metering.db")
    keys = [[make(f"tenant-{thread}") for _ in range(25)] for thread in range(8)]
    errors: list[BaseException] = []

    def work(mine: list[ApiKey]) -> None:
        try:
            for key in mine:
                store.add(key)
            for key in mine[::2]:
                store.revoke(key.key_id, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = store.list()
    assert len(stored) == 200 and sum(key.revoked_at is not None for key in stored) == 8 * 13
    assert len(store.list("tenant-3")) == 25


_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.metering.keys import new_key

store = SqliteKeyStore(Path(sys.argv[1]))
for _ in range(40):
    store.add(new_key(sys.argv[2], ("invoke",), plan="default", created_at=datetime.now(UTC))[1])
"""


def test_concurrent_adds_from_processes_sharing_the_database(tmp_path: Path) -> None:
    path = tmp_path / "state" / "metering.db"
    # Another engineer's usage table lives in the same file; the key store leaves it alone.
    path.parent.mkdir()
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE usage (request_id TEXT PRIMARY KEY)")
        other.execute("INSERT INTO usage VALUES ('r1')")
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"tenant-{n}"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    outcomes = [(writer.wait(timeout=120), writer.communicate()[1].decode()) for writer in writers]
    assert [stderr for status, stderr in outcomes if status != 0] == []
    store = SqliteKeyStore(path)
    assert len(store.list()) == 160 and len(store.list("tenant-2")) == 40
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT request_id FROM usage").fetchall() == [("r1",)]


def test_a_database_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "metering.db").mkdir()
    with pytest.raises(MeteringUnavailable) as refused:
        SqliteKeyStore(tmp_path / "metering.db")
    assert refused.value.status_code == 503
    assert refused.value.message.startswith(f"metering database {tmp_path / 'metering.db'}: ")
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


# ------------------------------------------------------------------------------------------------ DynamoDB


class Calls:
    """The DynamoDB operations a client sends, with their parameters, through botocore's own event hooks."""

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.seen.append((model.name, dict(params)))


def test_add_is_a_conditional_write_that_refuses_a_concurrent_writer(dynamodb: Any, moto: MotoServer) -> None:
    # GIVEN two processes' stores (their own clients) that both try to write the same key id
    ours, theirs = DynamoKeyStore(dynamodb, TABLE), DynamoKeyStore(moto.client("dynamodb"), TABLE)
    calls = Calls(dynamodb)
    first = make()
    theirs.add(first)
    # WHEN ours writes a different record under that id
    with pytest.raises(KeyExists):
        ours.add(make("globex").model_copy(update={"key_id": first.key_id}))
    # THEN the write carried the condition, and the first record (its hash) is untouched
    assert [(name, params.get("ConditionExpression")) for name, params in calls.seen] == [
        ("PutItem", "attribute_not_exists(key_id)")
    ]
    assert ours.get(first.key_id) == first


def test_revoke_is_one_conditional_update_and_reads_only_when_it_did_not_apply(dynamodb: Any) -> None:
    store = DynamoKeyStore(dynamodb, TABLE)
    key = make()
    store.add(key)
    calls = Calls(dynamodb)
    store.revoke(key.key_id, NOW)
    assert [name for name, _ in calls.seen] == ["UpdateItem"]
    update = calls.seen[0][1]
    assert update["ExpressionAttributeValues"] == {":at": {"S": "2026-06-01T12:00:00.123456+00:00"}}
    assert "revoked_at > :at" in update["ConditionExpression"]
    store.revoke(key.key_id, NOW + HOUR)
    assert [name for name, _ in calls.seen] == ["UpdateItem", "UpdateItem", "GetItem"]
    item = dynamodb.get_item(TableName=TABLE, Key={"key_id": {"S": key.key_id}})["Item"]
    assert item["revoked_at"] == {"S": "2026-06-01T12:00:00.123456+00:00"}
    assert item["created_at"] == {"S": "2026-06-01T12:00:00.123456+00:00"}


def test_a_tenants_keys_are_listed_by_querying_the_tenant_index(dynamodb: Any) -> None:
    store = DynamoKeyStore(dynamodb, TABLE)
    store.add(make("acme"))
    calls = Calls(dynamodb)
    assert len(store.list("acme")) == 1
    assert [(name, params.get("IndexName")) for name, params in calls.seen] == [("Query", TENANT_INDEX)]


def test_the_table_defines_the_key_and_the_tenant_index(dynamodb: Any) -> None:
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "key_id", "KeyType": "HASH"}]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "tenant-index"
    assert index["KeySchema"] == [{"AttributeName": "tenant", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_a_missing_table_is_unavailable_and_says_so(moto: MotoServer) -> None:
    store = DynamoKeyStore(moto.client("dynamodb"), "nope")
    for call in (lambda: store.get("0123456789ab"), lambda: store.add(make()), lambda: store.list("acme")):
        with pytest.raises(MeteringUnavailable) as refused:
            call()
        assert refused.value.status_code == 503
        assert refused.value.message.startswith("DynamoDB table 'nope' (or its index 'tenant-index') does not exist")
        assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_an_unreachable_endpoint_is_unavailable_with_the_reason() -> None:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(MeteringUnavailable) as refused:
        DynamoKeyStore(client, TABLE).get("0123456789ab")
    assert refused.value.message.startswith(f"DynamoDB table '{TABLE}' could not be reached: EndpointConnectionError: ")
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


# ---------------------------------------------------------------------------------------- open_key_store


def test_the_settings_choose_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    store = open_key_store(Settings(metering="sqlite", state_dir=tmp_path / "state"))
    assert isinstance(store, SqliteKeyStore) and store.path == tmp_path / "state" / "metering.db"
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    store.add(make())
    assert len(store.list()) == 1


def test_the_settings_choose_dynamodb(dynamodb: Any, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in moto.environment().items():
        monkeypatch.setenv(name, value)
    store = open_key_store(Settings(metering="dynamodb", keys_table=TABLE, aws_endpoint_url=moto.endpoint))
    assert isinstance(store, DynamoKeyStore) and store.table == TABLE
    key = make()
    store.add(key)
    assert DynamoKeyStore(dynamodb, TABLE).get(key.key_id) == key


def test_with_metering_off_there_is_no_key_store() -> None:
    with pytest.raises(InvalidInput) as refused:
        open_key_store(Settings(metering="off"))
    assert refused.value.param == "metering" and "set AIMASS_METERING to sqlite or dynamodb" in refused.value.message
