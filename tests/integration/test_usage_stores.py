"""Usage stores and quota counters, one behaviour suite over SQLite and DynamoDB (moto's server over HTTP).

The concurrency tests are the proof of the quota promise: however many threads (and, on SQLite, processes)
charge at once, a quota of N units admits exactly N units, and no accepted charge is lost.

DynamoDB runs on a moto server of this file's own that answers one request at a time. moto's standard
server runs requests in threads and does not lock its tables, so it can admit two conditional writes to
one item that DynamoDB serialises; a serial server keeps DynamoDB's semantics for one item (conditional
writes applied one after another) while the clients stay truly concurrent.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from aimass.metering.stores.usage_dynamodb import (
    DynamoQuotaCounter,
    DynamoUsageStore,
    counters_table_definition,
    usage_table_definition,
)
from aimass.metering.stores.usage_factory import open_usage
from aimass.metering.stores.usage_off import NoQuotaCounter, NoUsageStore
from aimass.metering.stores.usage_sqlite import SqliteQuotaCounter, SqliteUsageStore
from aimass.metering.usage import QuotaCounter, Settled, Unavailable, UsageRecord, UsageStore
from aimass.settings import Settings
from tests.moto_server import CREDENTIALS, REGION, MotoServer
from tests.moto_server import start as start_moto

T0 = datetime(2026, 3, 1, tzinfo=UTC)
USAGE_TABLE = "aimass-usage"
COUNTERS_TABLE = "aimass-counters"
PERIOD = "2026-03"


def record(n: int, *, at: datetime = T0, tenant: str = "acme", units: int = 100, price: float = 2e-8) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{n:06d}",
        at=at,
        tenant=tenant,
        key_id="0123456789ab",
        model="tiny-text",
        version="1",
        domain="text",
        route="POST /v1/embeddings",
        unit="tokens",
        units=units,
        inference_ms=1.25 + n / 7,
        total_ms=3.0 + n / 3,
        memory_mb=1024,
        unit_price=price,
        cost=units * price,
        status=200,
        billed=True,
    )


def exact_cost(records: list[UsageRecord]) -> Decimal:
    return sum((Decimal(repr(r.cost)) for r in records), Decimal(0))


@dataclass
class Backend:
    name: str
    store: UsageStore
    counter: QuotaCounter


def create_tables(client: Any) -> None:
    client.create_table(**usage_table_definition(USAGE_TABLE))
    client.create_table(**counters_table_definition(COUNTERS_TABLE))


@pytest.fixture(scope="module")
def serial_moto_server() -> Iterator[MotoServer]:
    # Conditional writes to one item must apply one at a time, as DynamoDB applies them (tests/moto_server.py).
    yield from start_moto(serial=True)


@pytest.fixture
def dynamodb(serial_moto_server: MotoServer) -> MotoServer:
    """A serial moto server, emptied for this test."""
    serial_moto_server.reset()
    return serial_moto_server


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "metering.db"
        return Backend("sqlite", SqliteUsageStore(path), SqliteQuotaCounter(path))
    server: MotoServer = request.getfixturevalue("dynamodb")
    client = server.client("dynamodb")
    create_tables(client)
    return Backend(
        "dynamodb",
        DynamoUsageStore(client, USAGE_TABLE, counters_table=COUNTERS_TABLE, page_size=7),
        DynamoQuotaCounter(client, COUNTERS_TABLE),
    )


# --- Usage records ----------------------------------------------------------------------------------------


def test_a_record_reads_back_exactly_as_written(backend: Backend) -> None:
    written = record(1, price=1e-4)
    assert backend.store.record(written) is True
    assert list(backend.store.query(T0, T0 + timedelta(seconds=1), "acme")) == [written]


def test_recording_a_request_id_again_writes_nothing(backend: Backend) -> None:
    # GIVEN a recorded request
    first = record(1, units=100)
    assert backend.store.record(first) is True
    # WHEN a retried invocation records the same request id, even with other counts
    retried = record(1, units=999, at=T0 + timedelta(seconds=5))
    # THEN nothing is written and the sums are unchanged
    assert backend.store.record(retried) is False
    assert backend.store.record(first) is False
    (stored,) = backend.store.query(T0, T0 + timedelta(days=1), "acme")
    assert stored == first and stored.units == 100


def test_queries_keep_to_their_window_and_tenant(backend: Backend) -> None:
    end = T0 + timedelta(hours=1)
    records = [
        record(1, at=T0 - timedelta(microseconds=1)),  # before the window
        record(2, at=T0),  # its first instant: in
        record(3, at=T0 + timedelta(minutes=30)),
        record(4, at=end - timedelta(microseconds=1)),  # its last instant: in
        record(5, at=end),  # the end is excluded
        record(6, at=T0 + timedelta(minutes=10), tenant="globex"),
        record(7, at=T0 + timedelta(minutes=20), tenant="acme-labs"),  # a tenant whose name extends acme's
    ]
    for r in records:
        assert backend.store.record(r)

    def ids(tenant: str | None) -> set[str]:
        return {r.request_id for r in backend.store.query(T0, end, tenant)}

    assert ids("acme") == {"req-000002", "req-000003", "req-000004"}
    assert ids("globex") == {"req-000006"}
    assert ids("initech") == set()
    # The administrator's path: every tenant.
    assert ids(None) == {"req-000002", "req-000003", "req-000004", "req-000006", "req-000007"}


def test_a_query_in_another_time_zone_means_the_same_instants(backend: Backend) -> None:
    # GIVEN a record at 02:00 UTC, WHEN asked for 01:30 to 03:00 UTC written as UTC+2 (03:30 to 05:00)
    backend.store.record(record(1, at=T0 + timedelta(hours=2)))
    plus_two = timezone(timedelta(hours=2))
    start, end = datetime(2026, 3, 1, 3, 30, tzinfo=plus_two), datetime(2026, 3, 1, 5, 0, tzinfo=plus_two)
    # THEN it is found, and a window ending at 02:00 UTC does not hold it
    assert [r.request_id for r in backend.store.query(start, end, "acme")] == ["req-000001"]
    assert list(backend.store.query(start, T0 + timedelta(hours=2), "acme")) == []


def test_a_query_reads_every_page(backend: Backend) -> None:
    # On DynamoDB pages hold 7 items here (page_size), so 100 records take 15 pages of the index or the table.
    records = [record(n, at=T0 + timedelta(seconds=n)) for n in range(100)]
    for r in records:
        assert backend.store.record(r)
    read = list(backend.store.query(T0, T0 + timedelta(days=1), "acme"))
    assert [r.request_id for r in read] == [r.request_id for r in records]  # in time order
    assert exact_cost(read) == exact_cost(records)
    assert len(list(backend.store.query(T0, T0 + timedelta(days=1)))) == len(records)


def test_concurrent_records_are_all_written_once_with_exact_sums(backend: Backend) -> None:
    # GIVEN 1,000 requests on SQLite (200 on DynamoDB), each recorded twice, from 16 threads at once
    count = 1000 if backend.name == "sqlite" else 200
    rng = random.Random(11)
    records = [record(n, units=rng.randrange(1, 10_000), at=T0 + timedelta(milliseconds=n)) for n in range(count)]
    with ThreadPoolExecutor(16) as pool:
        written = list(pool.map(backend.store.record, records + records))
    # THEN each was written exactly once, and the stored sums are exact
    assert written.count(True) == count and written.count(False) == count
    stored = list(backend.store.query(T0, T0 + timedelta(days=1), "acme"))
    assert len(stored) == count
    assert sum(r.units for r in stored) == sum(r.units for r in records)
    assert exact_cost(stored) == exact_cost(records)


# --- Quota counters: charged only with a billed record -------------------------------------------------------


def billed(backend: Backend, n: int, units: int, limit: int, *, tenant: str = "acme", at: datetime = T0) -> Settled:
    return backend.store.record_billed(record(n, units=units, tenant=tenant, at=at), tenant, limit)


def test_a_charge_fits_up_to_the_limit_exactly(backend: Backend) -> None:
    counter = backend.counter
    assert counter.used("acme", PERIOD) == 0
    assert billed(backend, 1, 60, 100) == "recorded"
    assert billed(backend, 2, 41, 100) == "over_quota"  # 101 > 100: refused, nothing added
    assert billed(backend, 3, 40, 100) == "recorded"  # exactly 100
    assert billed(backend, 4, 1, 100) == "over_quota"
    assert billed(backend, 5, 0, 100) == "recorded"
    assert counter.used("acme", PERIOD) == 100
    # Other subjects and periods count apart.
    assert billed(backend, 6, 100, 100, at=T0 + timedelta(days=40)) == "recorded"
    assert billed(backend, 7, 7, 100, tenant="globex") == "recorded"
    next_period = (T0 + timedelta(days=40)).strftime("%Y-%m")
    assert (counter.used("acme", next_period), counter.used("globex", PERIOD)) == (100, 7)


def test_a_first_charge_over_the_limit_is_refused(backend: Backend) -> None:
    assert billed(backend, 1, 11, 10) == "over_quota"
    assert backend.counter.used("acme", PERIOD) == 0
    assert billed(backend, 2, 10, 10) == "recorded"


def _bill_concurrently(backend: Backend, units: list[int], limit: int, threads: int = 16) -> list[int]:
    """16 threads bill one record each per entry of ``units``; the units of the records that were recorded."""
    records = [record(n, units=u) for n, u in enumerate(units)]
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lambda r: backend.store.record_billed(r, "acme", limit), records))
    assert set(outcomes) <= {"recorded", "over_quota"}
    return [r.units for r, outcome in zip(records, outcomes, strict=True) if outcome == "recorded"]


def test_a_quota_of_n_units_admits_exactly_n_under_concurrent_charges(backend: Backend) -> None:
    # GIVEN a limit of 300 and 16 threads billing 640 records of 1 unit
    accepted = _bill_concurrently(backend, [1] * 640, limit=300)
    # THEN exactly 300 were admitted, the counter says so, and exactly their records exist
    assert len(accepted) == 300
    assert backend.counter.used("acme", PERIOD) == 300
    assert len(list(backend.store.query(T0 - timedelta(hours=1), T0 + timedelta(hours=1)))) == 300


def test_concurrent_random_charges_never_pass_the_limit_and_none_is_lost(backend: Backend) -> None:
    # GIVEN a limit of 1,000 and 16 threads billing 640 records of 1 to 9 units (about 3,200 units)
    rng = random.Random(5)
    accepted = _bill_concurrently(backend, [rng.randrange(1, 10) for _ in range(640)], limit=1000)
    used = backend.counter.used("acme", PERIOD)
    # THEN the counter holds exactly what was accepted, and that is within the limit
    assert used == sum(accepted) <= 1000
    # Refusals only came once the counter was nearly full: every charge that fit was admitted.
    assert used > 1000 - 9


def _bill_in_process(arguments: tuple[str, int, list[int], int]) -> list[int]:
    path, worker, units, limit = arguments
    store = SqliteUsageStore(Path(path))
    try:
        records = [record(worker * 10_000 + n, units=u) for n, u in enumerate(units)]
        return [r.units for r in records if store.record_billed(r, "acme", limit) == "recorded"]
    finally:
        store.close()


def test_sqlite_quota_holds_across_processes(tmp_path: Path) -> None:
    # GIVEN 4 processes billing into one database: 150 records of 1 unit each, against a limit of 250
    path = tmp_path / "metering.db"
    SqliteUsageStore(path).close()  # the schema and WAL mode, before the processes race
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        accepted = pool.map(_bill_in_process, [(str(path), worker, [1] * 150, 250) for worker in range(4)])
        # THEN exactly 250 units were admitted in all
        assert sum(map(sum, accepted)) == 250
        # AND random records on top stay within a raised limit and are all counted
        rng = random.Random(3)
        second = [(str(path), 4 + w, [rng.randrange(1, 10) for _ in range(100)], 1250) for w in range(4)]
        random_accepted = pool.map(_bill_in_process, second)
    assert SqliteQuotaCounter(path).used("acme", PERIOD) == 250 + sum(map(sum, random_accepted)) <= 1250


# --- Failures ---------------------------------------------------------------------------------------------


def test_an_unusable_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    with pytest.raises(Unavailable, match="metering database"):
        SqliteUsageStore(blocker / "metering.db")
    # A database file that is not one.
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(Unavailable, match=r"broken\.db"):
        SqliteQuotaCounter(broken)


def test_a_locked_sqlite_database_is_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "metering.db"
    store = SqliteUsageStore(path, busy_timeout_ms=50)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(Unavailable, match="locked"):
            store.record_billed(record(1, units=1), "acme", 10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.record_billed(record(1, units=1), "acme", 10) == "recorded"


def test_a_missing_dynamodb_table_is_unavailable(dynamodb: MotoServer) -> None:
    client = dynamodb.client("dynamodb")
    store, counter = DynamoUsageStore(client, "nope"), DynamoQuotaCounter(client, "nope")
    with pytest.raises(Unavailable, match="DynamoDB table nope: ResourceNotFoundException"):
        store.record(record(1))
    with pytest.raises(Unavailable, match="ResourceNotFoundException"):
        list(store.query(T0, T0 + timedelta(days=1), "acme"))
    with pytest.raises(Unavailable, match="ResourceNotFoundException"):
        store.record_billed(record(1, units=1), "acme", 10)
    with pytest.raises(Unavailable, match="ResourceNotFoundException"):
        counter.used("acme", PERIOD)


def test_an_unreachable_dynamodb_is_unavailable() -> None:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(Unavailable, match="DynamoDB table aimass-usage: Could not connect"):
        DynamoUsageStore(client, USAGE_TABLE).record(record(1))


# --- The composition root ---------------------------------------------------------------------------------


@pytest.fixture
def aws_environment(dynamodb: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    for name, value in dynamodb.environment().items():
        monkeypatch.setenv(name, value)
    return dynamodb


def test_open_usage_opens_the_backend_the_settings_name(tmp_path: Path, aws_environment: MotoServer) -> None:
    # SQLite: one database in the state folder, created on first use.
    store, counter = open_usage(Settings(metering="sqlite", state_dir=tmp_path / "state"))
    assert isinstance(store, SqliteUsageStore) and isinstance(counter, SqliteQuotaCounter)
    assert store.record_billed(record(1, units=1), "acme", 1) == "recorded" and counter.used("acme", PERIOD) == 1
    assert (tmp_path / "state" / "metering.db").is_file()
    # DynamoDB: the tables the settings name, at the endpoint they name.
    create_tables(aws_environment.client("dynamodb"))
    settings = Settings(metering="dynamodb", aws_endpoint_url=aws_environment.endpoint)
    dynamo_store, dynamo_counter = open_usage(settings)
    assert isinstance(dynamo_store, DynamoUsageStore) and dynamo_store.table == USAGE_TABLE
    assert dynamo_store.record_billed(record(1, units=1), "acme", 1) == "recorded"
    assert dynamo_counter.used("acme", PERIOD) == 1
    assert [r.request_id for r in dynamo_store.query(T0, T0 + timedelta(seconds=1), "acme")] == ["req-000001"]
    # Off: nothing kept.
    off_store, off_counter = open_usage(Settings(metering="off"))
    assert isinstance(off_store, NoUsageStore) and isinstance(off_counter, NoQuotaCounter)
    assert off_store.record(record(1)) and list(off_store.query(T0, T0 + timedelta(days=1))) == []
    assert off_store.record_billed(record(2, units=10**9), "acme", 1) == "recorded"
    assert off_counter.used("acme", PERIOD) == 0


# --- A billed record and its charge, as one step ------------------------------------------------------------


def test_a_billed_record_and_its_charge_are_written_together(backend: Backend) -> None:
    period = T0.strftime("%Y-%m")
    assert backend.store.record_billed(record(1, units=40), "acme", 100) == "recorded"
    assert backend.counter.used("acme", period) == 40
    # The same request again (a retried invocation): nothing more is recorded or charged.
    assert backend.store.record_billed(record(1, units=40), "acme", 100) == "duplicate"
    assert backend.counter.used("acme", period) == 40
    # Over the quota: neither the record nor the charge is written.
    assert backend.store.record_billed(record(2, units=70), "acme", 100) == "over_quota"
    assert backend.counter.used("acme", period) == 40
    window = backend.store.query(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [r.request_id for r in window] == ["req-000001"]


def test_concurrent_billed_records_never_pass_the_quota(backend: Backend) -> None:
    period, limit = T0.strftime("%Y-%m"), 1000
    rng = random.Random(5)
    records = [record(n, units=rng.randint(1, 9)) for n in range(300)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda r: backend.store.record_billed(r, "acme", limit), records))
    accepted = [r for r, outcome in zip(records, outcomes, strict=True) if outcome == "recorded"]
    stored = list(backend.store.query(T0 - timedelta(hours=1), T0 + timedelta(hours=1)))
    assert sorted(r.request_id for r in stored) == sorted(r.request_id for r in accepted)
    assert backend.counter.used("acme", period) == sum(r.units for r in accepted) <= limit
    assert set(outcomes) <= {"recorded", "over_quota"} and "over_quota" in outcomes
