"""One API Gateway API key per AI Mass key, in the usage plan of the key's plan: the edge's per-key throttle.

API Gateway applies a usage plan's rate and burst to each of the plan's API keys, and only to requests that
carry one. AI Mass keys are checked by the authorizer (``aimass.metering.authorizer``), which hands API
Gateway the caller's edge key (API key source AUTHORIZER); clients never see or send it. So every AI Mass key
gets an edge key when it is created or rotated, and loses it when it is revoked: the key store stays the one
place keys are decided, and this module mirrors it at the edge.

An edge key is named, and valued, ``aimass-<rest api id>-<key id>``: the authorizer derives it from the key id
without a lookup, and two stages in one account never collide. The value is not a secret: with the key source
AUTHORIZER, API Gateway ignores an ``x-api-key`` header, so knowing it lets nobody in or out of a plan.

The edge is a mirror, and a mirror can fall behind (a failed call after the key store was written, a stage
deployed after its keys were created): ``sync`` makes it match the key store again (``aimass keys sync-edge``).
Errors of the API Gateway control plane raise ``EdgeUnavailable`` (503) naming the call and the API.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from aimass import aws
from aimass.contract import PLAN_TAG
from aimass.errors import ServiceUnavailable
from aimass.metering.keys import ApiKey
from aimass.settings import Settings

log = logging.getLogger("aimass.metering")

_PAGE = 500  # the most API Gateway returns per page


def edge_key_name(api_id: str, key_id: str) -> str:
    return f"aimass-{api_id}-{key_id}"


class EdgeUnavailable(ServiceUnavailable):
    """API Gateway's control plane refused or could not be reached; the message names the call and the API."""


class EdgeKeys(Protocol):
    def register(self, key: ApiKey) -> None:
        """Give ``key`` its edge key in its plan's usage plan (nothing to do if it has one)."""
        ...

    def retire(self, key_id: str) -> None:
        """Delete the edge key of ``key_id`` (nothing to do if it has none)."""
        ...

    def registered(self) -> set[str]:
        """The key ids that have an edge key."""
        ...


class NoEdge:
    """No edge to mirror to: local serving, or a stack deployed without the authorizer."""

    def register(self, key: ApiKey) -> None:
        return None

    def retire(self, key_id: str) -> None:
        return None

    def registered(self) -> set[str]:
        return set()


class ApiGatewayEdgeKeys:
    """Edge keys of the REST API ``api_id``, through a boto3 ``apigateway`` client."""

    def __init__(self, client: Any, api_id: str) -> None:
        self.client, self.api_id = client, api_id
        self._usage_plans: dict[str, str] | None = None

    def register(self, key: ApiKey) -> None:
        usage_plan = self.usage_plan(key.plan)
        name = edge_key_name(self.api_id, key.key_id)
        edge_id = self._find(name)
        if edge_id is None:
            with self._api_gateway("CreateApiKey"):
                created = self.client.create_api_key(
                    name=name,
                    value=name,
                    enabled=True,
                    # Untagged: tags on create need a further permission (a PUT on the key's tags) for nothing the
                    # description does not already say.
                    description=f"AI Mass key {key.key_id} of tenant {key.tenant}, plan {key.plan}",
                )
            edge_id = str(created["id"])
        with self._api_gateway("CreateUsagePlanKey", tolerate="ConflictException"):  # already in the plan
            self.client.create_usage_plan_key(usagePlanId=usage_plan, keyId=edge_id, keyType="API_KEY")
        log.info("edge key of %s in usage plan %s (plan %s)", key.key_id, usage_plan, key.plan)

    def retire(self, key_id: str) -> None:
        edge_id = self._find(edge_key_name(self.api_id, key_id))
        if edge_id is None:
            return
        with self._api_gateway("DeleteApiKey", tolerate="NotFoundException"):
            self.client.delete_api_key(apiKey=edge_id)
        log.info("edge key of %s deleted", key_id)

    def registered(self) -> set[str]:
        prefix = edge_key_name(self.api_id, "")
        return {name.removeprefix(prefix) for name, _ in self._edge_keys(prefix)}

    def usage_plan(self, plan: str) -> str:
        """The id of the usage plan of this API tagged with ``plan``; EdgeUnavailable if there is none."""
        if self._usage_plans is None or plan not in self._usage_plans:
            self._usage_plans = dict(self._plans())
        found = self._usage_plans.get(plan)
        if found is None:
            raise EdgeUnavailable(
                f"REST API '{self.api_id}' has no usage plan tagged {PLAN_TAG}={plan}; deploy the stack with plan "
                f"'{plan}' in aimass:plans (usage plans for: {', '.join(sorted(self._usage_plans)) or 'none'})"
            )
        return found

    def _plans(self) -> Iterator[tuple[str, str]]:
        for usage_plan in self._paged("GetUsagePlans", self.client.get_usage_plans):
            apis = {str(stage.get("apiId")) for stage in usage_plan.get("apiStages") or []}
            plan = (usage_plan.get("tags") or {}).get(PLAN_TAG)
            if self.api_id in apis and plan:
                yield str(plan), str(usage_plan["id"])

    def _find(self, name: str) -> str | None:
        # nameQuery matches by prefix: keep the exact name only.
        return next((edge_id for found, edge_id in self._edge_keys(name) if found == name), None)

    def _edge_keys(self, prefix: str) -> Iterator[tuple[str, str]]:
        for api_key in self._paged("GetApiKeys", self.client.get_api_keys, nameQuery=prefix):
            name = str(api_key.get("name") or "")
            if name.startswith(prefix):
                yield name, str(api_key["id"])

    def _paged(self, operation: str, call: Any, **params: Any) -> Iterable[dict[str, Any]]:
        position: str | None = None
        while True:
            with self._api_gateway(operation):
                page = call(limit=_PAGE, **params, **({"position": position} if position else {}))
            yield from page.get("items", [])
            position = page.get("position")
            if not position:
                return

    @contextlib.contextmanager
    def _api_gateway(self, operation: str, *, tolerate: str | None = None) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == tolerate:
                return
            reason = f"{code}: {error.get('Message', '')}".rstrip(": ")
            raise EdgeUnavailable(f"API Gateway {operation} for REST API '{self.api_id}' failed: {reason}") from None
        except BotoCoreError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise EdgeUnavailable(f"API Gateway {operation} for REST API '{self.api_id}': {reason}") from None


class Synced(NamedTuple):
    registered: list[str]  # key ids given an edge key
    retired: list[str]  # key ids whose edge key was deleted (revoked, expired or unknown keys)


def sync(edge: EdgeKeys, keys: Iterable[ApiKey], *, now: datetime) -> Synced:
    """Make the edge match the key store: every valid key has an edge key, nothing else has one."""
    valid = {key.key_id: key for key in keys if key.valid_at(now)}
    present = edge.registered()
    missing = sorted(set(valid) - present)
    stale = sorted(present - set(valid))
    for key_id in missing:
        edge.register(valid[key_id])
    for key_id in stale:
        edge.retire(key_id)
    return Synced(missing, stale)


def open_edge_keys(settings: Settings) -> EdgeKeys:
    """API Gateway when ``edge_api_id`` is set (boto3 imported only then), else no edge."""
    if settings.edge_api_id is None:
        return NoEdge()
    from botocore.exceptions import BotoCoreError

    try:
        client = aws.client("apigateway", settings.aws_endpoint_url)
    except BotoCoreError as exc:  # e.g. no region configured
        reason = f"{type(exc).__name__}: {exc}"
        raise EdgeUnavailable(f"API Gateway for REST API '{settings.edge_api_id}': {reason}") from None
    return ApiGatewayEdgeKeys(client, settings.edge_api_id)
