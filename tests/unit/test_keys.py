"""API keys: the key format, the record's validity in time, and the operator's rules (create, rotate, revoke)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aimass.errors import HTTPRefusal, InvalidInput, NotFound
from aimass.metering.key_admin import Issued, create_key, list_keys, revoke_key, rotate_key
from aimass.metering.keys import matches, new_key, parse
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import DEFAULT_PLANS
from aimass_tools.cli.keys import duration, expires_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> SqliteKeyStore:
    return SqliteKeyStore(tmp_path / "metering.db")


def issue(
    store: SqliteKeyStore,
    *,
    tenant: str = "acme",
    scopes: Sequence[str] = ("invoke",),
    plan: str = "default",
    expires_at: datetime | None = None,
    description: str = "",
) -> Issued:
    return create_key(
        store, tenant=tenant, scopes=scopes, plan=plan, plans=DEFAULT_PLANS, expires_at=expires_at,
        description=description, now=NOW,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- the key itself


def test_a_new_key_is_its_id_and_a_secret_and_the_record_keeps_only_the_hash() -> None:
    clear, record = new_key("acme", ("invoke",), plan="default", created_at=NOW)
    parsed = parse(clear)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == record.key_id and clear == f"am_{key_id}_{secret}"
    assert matches(record, secret) and not matches(record, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert secret not in record.model_dump_json()
    assert new_key("acme", ("invoke",), plan="default", created_at=NOW)[0] != clear


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "am_0123456789ab",
        "xx_0123456789ab_" + "a" * 43,
        "am_0123456789AB_" + "a" * 43,  # key ids are lower-case hex
        "am_0123456789a_" + "a" * 43,
        "am_0123456789ab_" + "a" * 42,
        "am_0123456789ab_" + "a" * 42 + "=",
        "Bearer am_0123456789ab_" + "a" * 43,
    ],
)
def test_malformed_keys_do_not_parse(presented: str) -> None:
    assert parse(presented) is None


def test_a_key_is_valid_until_it_expires() -> None:
    _, record = new_key("acme", ("invoke",), plan="default", created_at=NOW, expires_at=NOW + HOUR)
    assert record.valid_at(NOW) and record.valid_at(NOW + HOUR - timedelta(microseconds=1))
    assert not record.valid_at(NOW + HOUR)


def test_a_key_revoked_in_the_future_works_until_then() -> None:
    _, record = new_key("acme", ("invoke",), plan="default", created_at=NOW)
    rotated = record.model_copy(update={"revoked_at": NOW + HOUR})
    assert record.valid_at(NOW + timedelta(days=3650))
    assert rotated.valid_at(NOW) and rotated.valid_at(NOW + HOUR - timedelta(seconds=1))
    assert not rotated.valid_at(NOW + HOUR)


# ------------------------------------------------------------------------------------------------- create


def test_create_stores_the_record_and_returns_the_key_once(store: SqliteKeyStore) -> None:
    clear, record = issue(store, scopes=["admin", "invoke", "invoke"], plan="free", description="ci")
    assert record.scopes == ("invoke", "admin") and record.plan == "free" and record.description == "ci"
    assert store.get(record.key_id) == record
    parsed = parse(clear)
    assert parsed is not None and matches(record, parsed[1])


@pytest.mark.parametrize(
    ("overrides", "param", "expected"),
    [
        ({"tenant": "Acme"}, "tenant", "tenant 'Acme' must be 1 to 63 characters of a-z, 0-9"),
        ({"tenant": ""}, "tenant", "tenant '' must be"),
        ({"tenant": "a" * 64}, "tenant", "must be 1 to 63 characters"),
        ({"scopes": []}, "scopes", "scopes must name at least one of invoke, admin"),
        ({"scopes": [" ", ""]}, "scopes", "scopes must name at least one of invoke, admin"),
        ({"scopes": ["invoke", "billing"]}, "scopes", "scope 'billing' is unknown; expected one or more of invoke"),
        ({"plan": "gold"}, "plan", "plan 'gold' is unknown; expected one of default, free"),
        ({"expires_at": datetime(2027, 1, 1)}, "expires_at", "expires_at 2027-01-01T00:00:00 must carry a time zone"),
        ({"expires_at": NOW}, "expires_at", "must be in the future (now is 2026-06-01T12:00:00+00:00)"),
        ({"description": "x" * 201}, "description", "description must be at most 200 characters, got 201"),
    ],
)
def test_create_refuses_wrong_values_naming_the_field(
    store: SqliteKeyStore, overrides: dict[str, Any], param: str, expected: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        issue(store, **overrides)
    assert (refused.value.status_code, refused.value.param) == (400, param) and expected in refused.value.message
    assert store.list() == []


def test_list_refuses_a_malformed_tenant(store: SqliteKeyStore) -> None:
    with pytest.raises(InvalidInput) as refused:
        list_keys(store, "ACME")
    assert refused.value.param == "tenant"


# ------------------------------------------------------------------------------------------------- revoke


def test_revoke_keeps_the_first_time(store: SqliteKeyStore) -> None:
    _, record = issue(store)
    first = revoke_key(store, record.key_id, now=NOW + HOUR)
    again = revoke_key(store, record.key_id, now=NOW + 2 * HOUR)
    assert first.revoked_at == again.revoked_at == NOW + HOUR
    assert not again.valid_at(NOW + HOUR)


@pytest.mark.parametrize(
    ("key_id", "status", "expected"),
    [
        ("0123456789ab", 404, "no key with id '0123456789ab'"),
        ("nothere", 400, "key id 'nothere' must be 12 hex digits"),
        ("0123456789AB", 400, "must be 12 hex digits"),
    ],
)
def test_revoke_an_unknown_or_malformed_key_id(store: SqliteKeyStore, key_id: str, status: int, expected: str) -> None:
    with pytest.raises((NotFound, InvalidInput)) as refused:
        revoke_key(store, key_id, now=NOW)
    assert refused.value.status_code == status and refused.value.param == "key_id"
    assert expected in refused.value.message


def test_a_whole_key_given_as_key_id_is_refused_without_echoing_its_secret(store: SqliteKeyStore) -> None:
    clear, record = issue(store)
    with pytest.raises(InvalidInput) as refused:
        revoke_key(store, clear, now=NOW)
    assert refused.value.message == f"pass the key id '{record.key_id}', not the whole key"
    assert store.get(record.key_id) == record


# ------------------------------------------------------------------------------------------------- rotate


def test_rotate_makes_a_like_key_and_the_old_one_works_for_the_grace_period(store: SqliteKeyStore) -> None:
    _, old = issue(store, scopes=["invoke", "admin"], plan="free", expires_at=NOW + 30 * 24 * HOUR, description="d")
    clear, new, ended = rotate_key(store, old.key_id, grace=HOUR, now=NOW + HOUR)
    assert new.key_id != old.key_id and parse(clear) is not None
    assert (new.tenant, new.scopes, new.plan, new.expires_at, new.description) == (
        old.tenant, old.scopes, old.plan, old.expires_at, old.description,
    )  # fmt: skip
    assert new.created_at == NOW + HOUR and new.revoked_at is None
    assert ended.key_id == old.key_id and ended.revoked_at == NOW + 2 * HOUR
    stored = store.get(old.key_id)
    assert stored is not None and stored.valid_at(NOW + 2 * HOUR - timedelta(seconds=1))
    assert not stored.valid_at(NOW + 2 * HOUR)


def test_rotate_with_no_grace_ends_the_old_key_now(store: SqliteKeyStore) -> None:
    _, old = issue(store)
    rotated = rotate_key(store, old.key_id, grace=timedelta(0), now=NOW)
    assert rotated.old.revoked_at == NOW and not rotated.old.valid_at(NOW)
    assert {key.key_id for key in store.list("acme")} == {old.key_id, rotated.key.key_id}


def test_revoking_a_key_in_its_grace_period_ends_it_now(store: SqliteKeyStore) -> None:
    _, old = issue(store)
    rotate_key(store, old.key_id, grace=24 * HOUR, now=NOW)
    assert revoke_key(store, old.key_id, now=NOW + HOUR).revoked_at == NOW + HOUR


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=30, seconds=1)])
def test_rotate_refuses_a_grace_out_of_range(store: SqliteKeyStore, grace: timedelta) -> None:
    _, old = issue(store)
    with pytest.raises(InvalidInput) as refused:
        rotate_key(store, old.key_id, grace=grace, now=NOW)
    assert refused.value.param == "grace" and "grace must be between 0 and 30 days" in refused.value.message
    assert store.list() == [old]


def test_rotate_an_unknown_key(store: SqliteKeyStore) -> None:
    with pytest.raises(NotFound) as refused:
        rotate_key(store, "0123456789ab", grace=HOUR, now=NOW)
    assert refused.value.param == "key_id"


def test_a_revoked_or_expired_key_cannot_be_rotated(store: SqliteKeyStore) -> None:
    _, revoked = issue(store)
    revoke_key(store, revoked.key_id, now=NOW)
    _, expired = issue(store, expires_at=NOW + HOUR)
    for key, code in ((revoked, "key_revoked"), (expired, "key_expired")):
        with pytest.raises(HTTPRefusal) as refused:
            rotate_key(store, key.key_id, grace=HOUR, now=NOW + HOUR)
        assert (refused.value.status_code, refused.value.code) == (409, code)
        assert "create a new key for tenant 'acme'" in refused.value.message
    assert len(store.list()) == 2


# ----------------------------------------------------------------------------------- the CLI's time values


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", timedelta(0)), ("90s", timedelta(seconds=90)), ("30m", 30 * timedelta(minutes=1)), ("1h", HOUR),
     ("30d", timedelta(days=30)), ("2w", timedelta(weeks=2))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert duration(text, "grace") == expected


@pytest.mark.parametrize("text", ["", "1", "1y", "-1h", "1.5h", "h"])
def test_malformed_durations_name_the_option(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        duration(text, "grace")
    assert refused.value.param == "grace" and f"grace '{text}' must be a duration" in refused.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T12:00", datetime(2027, 1, 1, 12, tzinfo=UTC)),
        ("2027-01-01T12:00+02:00", datetime(2027, 1, 1, 10, tzinfo=UTC)),
        ("2027-01-01T12:00Z", datetime(2027, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_expiry_times(text: str, expected: datetime) -> None:
    assert expires_at(text, NOW) == expected


def test_a_malformed_expiry_names_the_option() -> None:
    with pytest.raises(InvalidInput) as refused:
        expires_at("next year", NOW)
    assert refused.value.param == "expires" and "expires 'next year' must be a duration" in refused.value.message
