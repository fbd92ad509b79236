"""Aliases: which version of a model serves, and the record of every change.

Each model has one small document in its store (``<name>/aliases.json``). ``production`` names the version
unpinned requests get; ``canary`` (with ``canary_percent``) takes that share of them while a new version is
tried, and its ``canary_policy``, where it has one, lets the serving processes end the trial by themselves
(``aimass.serving.canary``): promoted once it has served enough requests well, rolled back as soon as it has
not. Every change appends to ``history``, so a rollback knows where to go without anyone remembering.
A model with no aliases document serves its newest version, as a store of freshly built models does.

The rules are pure functions over the document; the stores only read and write it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput, NotFound
from aimass.schema import Schema
from aimass.store.layout import ALIASES_FILE as ALIASES_FILE

Action = Literal["promote", "rollback", "canary", "end-canary"]


class AliasChange(Schema):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str = Field(description="UTC time of the change, ISO 8601")
    action: Action
    production: str | None = Field(description="the production version after the change")
    canary: str | None = None
    canary_percent: int = 0
    reason: str = ""


class CanaryPolicy(Schema):
    """When a canary ends by itself: promoted once it has served ``min_requests`` with its errors within
    ``max_error_rate`` and its p95 inference latency within ``max_latency_ms``; rolled back as soon as its errors
    pass that rate of ``min_requests``, its latency its bound, or its validation samples fail where it loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_requests: int = Field(ge=1, le=100_000_000, description="requests it serves before it may be promoted")
    max_error_rate: float = Field(
        default=0.0, ge=0, le=1, allow_inf_nan=False, description="server errors per request allowed; 0: none"
    )
    max_latency_ms: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="p95 of its inference time, in ms; null: any"
    )

    def describe(self) -> str:
        latency = f", p95 within {self.max_latency_ms:g} ms" if self.max_latency_ms is not None else ""
        return f"after {self.min_requests} requests with at most {self.max_error_rate:.2%} errors{latency}"


class ModelAliases(Schema):
    model_config = ConfigDict(extra="forbid", frozen=True)

    production: str | None = None
    canary: str | None = None
    canary_percent: int = Field(default=0, ge=0, le=100)
    canary_policy: CanaryPolicy | None = None
    history: tuple[AliasChange, ...] = ()

    def serving(self, versions: Sequence[str]) -> str | None:
        """The version unpinned requests get: production, or the newest version when none is promoted."""
        if self.production is not None:
            return self.production
        return max(versions, key=int) if versions else None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _changed(aliases: ModelAliases, action: Action, reason: str, **fields: object) -> ModelAliases:
    updated = aliases.model_copy(update=fields)
    change = AliasChange(
        at=now(),
        action=action,
        production=updated.production,
        canary=updated.canary,
        canary_percent=updated.canary_percent,
        reason=reason,
    )
    return updated.model_copy(update={"history": (*aliases.history, change)})


def _known(name: str, version: str, versions: Sequence[str]) -> None:
    if version not in versions:
        listed = ", ".join(sorted(versions, key=int)) or "none"
        raise NotFound(f"model '{name}' has no version '{version}'; published versions: {listed}", param="version")


def promote(name: str, aliases: ModelAliases, version: str, versions: Sequence[str], reason: str = "") -> ModelAliases:
    """``version`` becomes production; a running canary ends."""
    _known(name, version, versions)
    return _changed(aliases, "promote", reason, production=version, canary=None, canary_percent=0, canary_policy=None)


def canary(
    name: str,
    aliases: ModelAliases,
    version: str,
    percent: int,
    versions: Sequence[str],
    reason: str = "",
    policy: CanaryPolicy | None = None,
) -> ModelAliases:
    """``percent`` % of unpinned requests go to ``version``; the rest stay on production. With ``policy``, the
    serving processes promote or roll it back by themselves."""
    _known(name, version, versions)
    if not 0 < percent < 100:
        raise InvalidInput(f"canary percent must be between 1 and 99, got {percent}", param="percent")
    if version == aliases.serving(versions):
        raise InvalidInput(f"version {version} of model '{name}' is already the one serving", param="version")
    return _changed(aliases, "canary", reason, canary=version, canary_percent=percent, canary_policy=policy)


def rollback(
    name: str,
    aliases: ModelAliases,
    versions: Sequence[str],
    reason: str = "",
    usable: Callable[[str], bool] = lambda version: True,
) -> ModelAliases:
    """Production goes back to the version it had before the current one; a running canary ends first.

    With a canary running, rolling back only ends the canary (production never moved). Otherwise the
    history is replayed as a stack (a promotion pushes, a rollback pops), so repeated rollbacks keep
    walking back through earlier production versions rather than undoing each other.
    """
    if aliases.canary is not None:
        return _changed(aliases, "end-canary", reason or "rollback", canary=None, canary_percent=0, canary_policy=None)
    stack: list[str] = []
    for change in aliases.history:
        if change.action == "promote" and change.production is not None:
            stack.append(change.production)
        elif change.action == "rollback" and change.production is not None:
            while stack and stack[-1] != change.production:  # a rollback may have skipped unusable versions
                stack.pop()
            stack = stack or [change.production]
    # Earlier versions that cannot serve (a corrupt file, failed validation: ``usable`` says) are skipped:
    # rolling back onto a version the functions would refuse would change nothing but the record.
    current = stack.pop() if stack else None
    while stack and (stack[-1] == current or not usable(stack[-1])):
        stack.pop()
    if not stack:
        raise InvalidInput(f"model '{name}' has no earlier usable production version to roll back to", param="name")
    return _changed(
        aliases, "rollback", reason, production=stack[-1], canary=None, canary_percent=0, canary_policy=None
    )
