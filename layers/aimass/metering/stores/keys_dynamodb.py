"""The DynamoDB key store: one item per key in the keys table (``aimass.contract.KEYS_TABLE``).

Its rules and errors are those of every key store (``aimass.metering.stores.base``). botocore is imported
when a call is made, not with this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aimass.contract import KEYS_TABLE, KEYS_TENANT_INDEX
from aimass.errors import NotFound
from aimass.metering.keys import ApiKey
from aimass.metering.stores.base import KeyExists, MeteringUnavailable, stored_time


def keys_table_definition(table: str) -> dict[str, Any]:
    """``create_table`` arguments of a keys table named ``table`` (``aimass.contract.KEYS_TABLE``)."""
    return KEYS_TABLE.create_table(table)


class DynamoKeyStore:
    """Keys in a DynamoDB table (see ``keys_table_definition``), through a low-level boto3 client.

    ``tenant_index=None`` lists a tenant's keys with a filtered Scan, for a table deployed without the
    index; the index is the production choice. Reads are strongly consistent, so a revocation is seen
    by the next read (the serving side still caches a checked key for ``key_cache_s``).
    """

    def __init__(self, client: Any, table: str, *, tenant_index: str | None = KEYS_TENANT_INDEX) -> None:
        self.client = client
        self.table = table
        self.tenant_index = tenant_index

    def add(self, key: ApiKey) -> None:
        try:
            with self._dynamodb():
                self.client.put_item(
                    TableName=self.table, Item=_item(key), ConditionExpression="attribute_not_exists(key_id)"
                )
        except _ConditionFailed:
            raise KeyExists(
                f"key id '{key.key_id}' is already stored in table '{self.table}'", param="key_id"
            ) from None

    def get(self, key_id: str) -> ApiKey | None:
        with self._dynamodb():
            found = self.client.get_item(TableName=self.table, Key={"key_id": {"S": key_id}}, ConsistentRead=True)
        item = found.get("Item")
        return None if item is None else _from_item(item)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            items = self._pages("scan", {})
        elif self.tenant_index is None:
            items = self._pages(
                "scan",
                {"FilterExpression": "tenant = :tenant", "ExpressionAttributeValues": {":tenant": {"S": tenant}}},
            )
        else:
            items = self._pages(
                "query",
                {
                    "IndexName": self.tenant_index,
                    "KeyConditionExpression": "tenant = :tenant",
                    "ExpressionAttributeValues": {":tenant": {"S": tenant}},
                },
            )
        return sorted((_from_item(item) for item in items), key=lambda key: (key.created_at, key.key_id))

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        try:
            with self._dynamodb():
                updated = self.client.update_item(
                    TableName=self.table,
                    Key={"key_id": {"S": key_id}},
                    UpdateExpression="SET revoked_at = :at",
                    # Only ever earlier: a later revoke keeps the first one (or a grace period's shorter end).
                    ConditionExpression="attribute_exists(key_id) AND "
                    "(attribute_not_exists(revoked_at) OR revoked_at > :at)",
                    ExpressionAttributeValues={":at": {"S": stored_time(at)}},
                    ReturnValues="ALL_NEW",
                )
            return _from_item(updated["Attributes"])
        except _ConditionFailed:
            record = self.get(key_id)
            if record is None:
                raise NotFound(f"no key with id '{key_id}' in table '{self.table}'", param="key_id") from None
            return record

    def _pages(self, operation: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        call = getattr(self.client, operation)
        start: dict[str, Any] | None = None
        while True:
            with self._dynamodb():
                page = call(TableName=self.table, **params, **({"ExclusiveStartKey": start} if start else {}))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    @contextlib.contextmanager
    def _dynamodb(self) -> Iterator[None]:
        """botocore's errors as MeteringUnavailable naming the table and what DynamoDB said."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            if code == "ResourceNotFoundException":
                raise MeteringUnavailable(
                    f"DynamoDB table '{self.table}' (or its index '{self.tenant_index}') does not exist; "
                    "deploy it, or set AIMASS_KEYS_TABLE to the deployed one"
                ) from None
            reason = f"{code}: {error.get('Message', '')}".rstrip(": ")
            raise MeteringUnavailable(f"DynamoDB table '{self.table}' refused the request: {reason}") from None
        except BotoCoreError as exc:
            raise MeteringUnavailable(
                f"DynamoDB table '{self.table}' could not be reached: {type(exc).__name__}: {exc}"
            ) from None


class _ConditionFailed(Exception):
    pass


def _item(key: ApiKey) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_id": {"S": key.key_id},
        "tenant": {"S": key.tenant},
        "scopes": {"L": [{"S": scope} for scope in key.scopes]},
        "plan": {"S": key.plan},
        "secret_sha256": {"S": key.secret_sha256},
        "created_at": {"S": stored_time(key.created_at)},
        "description": {"S": key.description},
    }
    if key.expires_at is not None:
        item["expires_at"] = {"S": stored_time(key.expires_at)}
    if key.revoked_at is not None:
        item["revoked_at"] = {"S": stored_time(key.revoked_at)}
    return item


def _from_item(item: dict[str, Any]) -> ApiKey:
    def time(name: str) -> datetime | None:
        return datetime.fromisoformat(item[name]["S"]) if name in item else None

    return ApiKey(
        key_id=item["key_id"]["S"], tenant=item["tenant"]["S"], scopes=tuple(s["S"] for s in item["scopes"]["L"]),
        plan=item["plan"]["S"], secret_sha256=item["secret_sha256"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]), expires_at=time("expires_at"),
        revoked_at=time("revoked_at"), description=item.get("description", {}).get("S", ""),
    )  # fmt: skip
