"""The DynamoDB usage store and quota counters: the usage table and the counters table
(``aimass.contract.USAGE_TABLE``, ``COUNTERS_TABLE``), written together in one ``TransactWriteItems``.

Their promises are those of every usage store (``aimass.metering.stores.base``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aimass.contract import COUNTERS_TABLE, USAGE_TABLE, USAGE_TENANT_AT_INDEX
from aimass.metering.stores.base import USAGE_FLOATS, USAGE_INTEGERS, USAGE_STRINGS, stamp
from aimass.metering.usage import Settled, Unavailable, UsageRecord, period_of


def usage_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of a usage table named ``name`` (``aimass.contract.USAGE_TABLE``)."""
    return USAGE_TABLE.create_table(name)


def counters_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of a quota counters table named ``name`` (``aimass.contract.COUNTERS_TABLE``)."""
    return COUNTERS_TABLE.create_table(name)


def _number(value: float) -> str:
    # DynamoDB takes numbers as decimal strings; the float's shortest repr reads back as the same float.
    return str(Decimal(repr(value)))


def _item(usage: UsageRecord) -> dict[str, dict[str, Any]]:
    item: dict[str, dict[str, Any]] = {name: {"S": getattr(usage, name)} for name in USAGE_STRINGS}
    item["at"] = {"S": stamp(usage.at)}
    item.update({name: {"N": str(getattr(usage, name))} for name in USAGE_INTEGERS})
    item.update({name: {"N": _number(getattr(usage, name))} for name in USAGE_FLOATS})
    item["billed"] = {"BOOL": usage.billed}
    return item


def _record(item: Mapping[str, Mapping[str, Any]]) -> UsageRecord:
    values: dict[str, Any] = {name: item[name]["S"] for name in USAGE_STRINGS}
    values["at"] = datetime.fromisoformat(item["at"]["S"])
    values.update({name: int(item[name]["N"]) for name in USAGE_INTEGERS})
    values.update({name: float(item[name]["N"]) for name in USAGE_FLOATS})
    values["billed"] = bool(item["billed"]["BOOL"])
    return UsageRecord.model_validate(values)


def _token(request_id: str) -> str:
    """A transaction's client token (at most 36 characters) for a request id of any length."""
    return request_id if len(request_id) <= 36 else hashlib.sha256(request_id.encode()).hexdigest()[:36]


def _refused(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _unavailable(table: str, exc: Exception) -> Unavailable:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return Unavailable(f"DynamoDB table {table}: {error.get('Code', 'error')}: {error.get('Message', exc)}")
    return Unavailable(f"DynamoDB table {table}: {exc}")


class DynamoUsageStore:
    """Usage records in a DynamoDB table laid out by ``usage_table_definition``.

    ``client`` is a low-level boto3 DynamoDB client. A tenant's query reads the ``tenant-at-index`` GSI,
    which is eventually consistent: a record written a moment ago may be missing from a report for up to
    about a second. ``query(tenant=None)`` (every tenant) scans the whole table with a time filter: it is
    the administrator's and the monthly reporting path, never a request's.
    """

    def __init__(
        self, client: Any, table: str, *, counters_table: str = "aimass-counters", page_size: int | None = None
    ) -> None:
        self.client = client
        self.table = table
        self.counters_table = counters_table
        # Items per Query or Scan call (``Limit``); DynamoDB ends a page at 1 MB whatever it is.
        self.page_size = page_size

    def record_billed(self, usage: UsageRecord, subject: str, limit: int) -> Settled:
        if usage.units > limit:
            return "over_quota"  # the counter's condition admits any charge to an absent counter
        charge = {
            "TableName": self.counters_table,
            "Key": {"subject": {"S": subject}, "period": {"S": period_of(usage.at)}},
            "UpdateExpression": "ADD #used :units",
            "ConditionExpression": "attribute_not_exists(#used) OR #used <= :room",
            "ExpressionAttributeNames": {"#used": "used"},
            "ExpressionAttributeValues": {":units": {"N": str(usage.units)}, ":room": {"N": str(limit - usage.units)}},
        }
        put = {"TableName": self.table, "Item": _item(usage), "ConditionExpression": "attribute_not_exists(request_id)"}
        try:
            # The token makes botocore's retry of a call whose answer was lost apply once (for ten minutes).
            self.client.transact_write_items(
                TransactItems=[{"Put": put}, {"Update": charge}], ClientRequestToken=_token(usage.request_id)
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "IdempotentParameterMismatchException":
                return "duplicate"  # the same request settled before, with other timings
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return "duplicate"
                if reasons[1:2] == ["ConditionalCheckFailed"]:
                    return "over_quota"
            raise _unavailable(self.table, exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(self.table, exc) from exc
        return "recorded"

    def record(self, usage: UsageRecord) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(usage),
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as exc:
            if _refused(exc):
                return False
            raise _unavailable(self.table, exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(self.table, exc) from exc
        return True

    def query(self, start: datetime, end: datetime, tenant: str | None = None) -> Iterator[UsageRecord]:
        names = {"#at": "at"}
        values: dict[str, Any] = {":start": {"S": stamp(start)}, ":end": {"S": stamp(end)}}
        if tenant is None:
            request: dict[str, Any] = {"FilterExpression": "#at >= :start AND #at < :end"}
            call = self.client.scan
        else:
            # A key condition has one range test, so BETWEEN (inclusive) and the end bound is dropped below.
            names["#tenant"] = "tenant"
            values[":tenant"] = {"S": tenant}
            request = {
                "IndexName": USAGE_TENANT_AT_INDEX,
                "KeyConditionExpression": "#tenant = :tenant AND #at BETWEEN :start AND :end",
            }
            call = self.client.query
        request.update(TableName=self.table, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        if self.page_size is not None:
            request["Limit"] = self.page_size
        end_stamp = stamp(end)
        while True:
            try:
                page = call(**request)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(self.table, exc) from exc
            for item in page.get("Items", []):
                if item["at"]["S"] < end_stamp:
                    yield _record(item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoQuotaCounter:
    """Quota counters in a DynamoDB table laid out by ``counters_table_definition``, charged by
    ``DynamoUsageStore.record_billed``; read consistently, so a charge just made is seen."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def used(self, subject: str, period: str) -> int:
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key={"subject": {"S": subject}, "period": {"S": period}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(self.table, exc) from exc
        item = response.get("Item")
        return int(item["used"]["N"]) if item and "used" in item else 0
