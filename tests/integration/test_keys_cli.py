"""``aimass keys`` through typer's runner: a key's life (create, list, rotate, revoke) in a state folder of the
test's own, the secret printed once and stored nowhere, and the same commands against DynamoDB on moto."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aimass.metering.stores.keys_dynamodb import keys_table_definition
from aimass_tools.cli import app
from tests.moto_server import MotoServer

KEY = re.compile(r"am_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


class Keys:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {"COLUMNS": "200", **env}

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(app, ["keys", *args], env=self.env)
        assert (result.exit_code == 0) is ok, result.output
        return result


def issued(result: Result) -> tuple[str, str, str]:
    """(clear text, key id, secret) of the one key a command printed."""
    (found,) = KEY.finditer(result.output)
    return found[0], found["key_id"], found["secret"]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def keys(state: Path) -> Keys:
    return Keys({"AIMASS_STATE_DIR": str(state), "AIMASS_METERING": "sqlite"})


def test_a_keys_life_through_the_cli(keys: Keys, state: Path) -> None:
    # GIVEN a key made for a tenant
    made = keys("create", "--tenant", "acme", "--scopes", "invoke,admin", "--plan", "free", "--expires", "2099-01-01",
                "--description", "ci bot")  # fmt: skip
    clear, key_id, secret = issued(made)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    # THEN it is printed once, with what it is
    assert "shown only this once" in made.output and made.output.count(clear) == 1
    for line in (f"key id       {key_id}", "tenant       acme", "scopes       invoke,admin", "plan         free",
                 "expires      2099-01-01 00:00:00 UTC", "description  ci bot"):  # fmt: skip
        assert line in made.output
    # AND the store keeps the hash, never the secret (nor in the write-ahead log)
    database = state / "metering.db"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT secret_sha256 FROM api_keys WHERE key_id = ?", (key_id,)).fetchone() == (digest,)
    assert all(secret.encode() not in path.read_bytes() for path in state.iterdir() if path.is_file())

    # WHEN the keys are listed, THEN the key shows, active, with neither its secret nor its hash
    listed = keys("list", "--tenant", "acme")
    assert key_id in listed.output and "active" in listed.output and "ci bot" in listed.output
    assert secret not in listed.output and digest not in listed.output

    # WHEN it is rotated with a grace period
    rotated = keys("rotate", key_id, "--grace", "2h")
    new_clear, new_id, new_secret = issued(rotated)
    # THEN the new key is printed once, like the old one, and the old one works until the end of the grace
    assert new_id != key_id and "scopes       invoke,admin" in rotated.output and "plan         free" in rotated.output
    assert re.search(rf"the old key {key_id} keeps working until \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rotated.output)
    listed = keys("list")
    assert re.search(rf"{key_id} .* grace until ", listed.output) and re.search(rf"{new_id} .* active ", listed.output)
    assert not {secret, new_secret, digest} & set(re.findall(r"[A-Za-z0-9_-]{43,}", listed.output))

    # WHEN the old key is revoked (ending its grace) and revoked again
    assert f"revoked key {key_id} (tenant acme) at " in keys("revoke", key_id).output
    assert f"key {key_id} (tenant acme) was already revoked at " in keys("revoke", key_id).output
    # THEN it is listed as revoked, the new one still active
    listed = keys("list", "--tenant", "acme")
    assert re.search(rf"{key_id} .* revoked \d{{4}}", listed.output)
    assert re.search(rf"{new_id} .* active ", listed.output)
    assert new_clear not in listed.output


def test_rotate_with_no_grace_ends_the_old_key_now(keys: Keys) -> None:
    _, key_id, _ = issued(keys("create", "--tenant", "acme"))
    rotated = keys("rotate", key_id, "--grace", "0")
    assert f"the old key {key_id} no longer works (revoked at " in rotated.output


def test_an_empty_store_lists_no_keys(keys: Keys) -> None:
    assert keys("list").output.strip() == "no keys"
    assert keys("list", "--tenant", "acme").output.strip() == "no keys for tenant 'acme'"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "--tenant", "acme", "--plan", "gold"], "error: plan 'gold' is unknown; expected one of"),
        (["create", "--tenant", "Acme"], "error: tenant 'Acme' must be 1 to 63 characters"),
        (["create", "--tenant", "acme", "--scopes", "root"], "error: scope 'root' is unknown"),
        (["create", "--tenant", "acme", "--expires", "soon"], "error: expires 'soon' must be a duration"),
        (["create", "--tenant", "acme", "--expires", "2001-01-01"], "error: expires_at 2001-01-01T00:00:00+00:00"),
        (["revoke", "0123456789ab"], "error: no key with id '0123456789ab'"),
        (["revoke", "acme"], "error: key id 'acme' must be 12 hex digits"),
        (["rotate", "0123456789ab"], "error: no key with id '0123456789ab'"),
        (["rotate", "0123456789ab", "--grace", "1y"], "error: grace '1y' must be a duration"),
    ],
)  # fmt: skip
def test_expected_errors_are_one_red_line_and_exit_1(keys: Keys, args: list[str], expected: str) -> None:
    result = keys(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(expected) and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


def test_with_metering_off_the_commands_say_so(state: Path) -> None:
    result = Keys({"AIMASS_STATE_DIR": str(state), "AIMASS_METERING": "off"})("list", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("error: metering is off (AIMASS_METERING=off), so there is no key store")


def test_the_commands_act_on_dynamodb_when_the_settings_say_so(moto: MotoServer, state: Path) -> None:
    dynamodb: Any = moto.client("dynamodb")
    dynamodb.create_table(**keys_table_definition("keys"))
    keys = Keys({**moto.environment(), "AIMASS_METERING": "dynamodb", "AIMASS_KEYS_TABLE": "keys",
                 "AIMASS_AWS_ENDPOINT_URL": moto.endpoint, "AIMASS_STATE_DIR": str(state)})  # fmt: skip
    _, key_id, secret = issued(keys("create", "--tenant", "acme", "--expires", "30d"))
    item = dynamodb.get_item(TableName="keys", Key={"key_id": {"S": key_id}})["Item"]
    assert item["secret_sha256"] == {"S": hashlib.sha256(secret.encode()).hexdigest()}
    assert secret not in str(item)
    assert key_id in keys("list", "--tenant", "acme").output
    assert f"revoked key {key_id}" in keys("revoke", key_id).output
    assert not state.exists()  # nothing local


def test_a_missing_dynamodb_table_is_one_red_line(moto: MotoServer) -> None:
    keys = Keys({**moto.environment(), "AIMASS_METERING": "dynamodb", "AIMASS_KEYS_TABLE": "absent",
                 "AIMASS_AWS_ENDPOINT_URL": moto.endpoint})  # fmt: skip
    result = keys("list", ok=False)
    assert result.output.startswith("error: DynamoDB table 'absent' (or its index 'tenant-index') does not exist")


def test_the_commands_keep_the_state_owner_only(keys: Keys, state: Path) -> None:
    previous = os.umask(0o022)  # one that would leave new files readable by everyone
    try:
        keys("create", "--tenant", "acme")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for database in state.glob("metering.db*"):
        assert stat.S_IMODE(database.stat().st_mode) == 0o600, database
    assert (state / "metering.db").is_file()
