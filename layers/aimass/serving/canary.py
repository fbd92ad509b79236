"""The canary policy: a canary version promoted or rolled back by the processes that serve it.

A model still in training publishes its checkpoints as canary versions with a policy (``CanaryPolicy``, in its
aliases document). At each alias check (``aimass.serving.updater``) every serving process judges the canary by
what it has seen it serve (``runtime.observed``: requests, server errors and inference times, counted afresh
from when the registry routes the version as the canary) and moves the aliases itself, through the store's one
read-change-write step:

* rolled back (the canary ends; production never moved, so its clients never see the trial end) at once when
  the version failed to load or its validation samples failed here, when its server errors pass
  ``max_error_rate`` of ``min_requests`` (with a rate of 0, at its first error), or, once it has served
  ``min_requests``, when its p95 inference time is over ``max_latency_ms``;
* promoted once it has served ``min_requests`` within those bounds.

Each move is recorded in the aliases history with the numbers it was made on ("canary policy: ..."). A process
judges only what it has seen, so on Lambda each container judges its own share; the first to decide moves the
aliases, and a move is made only while the aliases still name that canary (a concurrent change wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aimass.serving.observed import Seen
from aimass.serving.runtime import ModelRuntime
from aimass.store import aliases as rules
from aimass.store.aliases import CanaryPolicy, ModelAliases

log = logging.getLogger("aimass.canary")

Change = Callable[[ModelAliases], ModelAliases]


@runtime_checkable
class AliasesWriter(Protocol):
    """A store this process may move aliases in (``WritableModelStore`` has it)."""

    def update_aliases(self, name: str, change: Change) -> ModelAliases: ...


class Served(Protocol):
    """What the policy asks of the registry: a loaded version, and the versions refused here."""

    def loaded(self, name: str, version: str) -> ModelRuntime | None: ...

    def rejected(self, name: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class Verdict:
    """What the policy decided for a model's canary: ``promote`` or ``rollback``, and why (with the numbers)."""

    name: str
    version: str
    action: str
    reason: str


class CanaryJudge:
    """Applies each model's canary policy; ``judge`` runs at every alias check, with the aliases it read."""

    def __init__(self, served: Served, writer: AliasesWriter) -> None:
        self.served = served
        self.writer = writer

    def judge(self, name: str, aliases: ModelAliases, versions: list[str]) -> ModelAliases:
        """The aliases after the policy's move, if it made one; else ``aliases``."""
        verdict = self.verdict(name, aliases)
        if verdict is None:
            return aliases
        expected = (aliases.canary, aliases.canary_percent)

        def change(current: ModelAliases) -> ModelAliases:
            if (current.canary, current.canary_percent) != expected or current.canary_policy is None:
                return current  # someone moved the aliases since they were read: their change stands
            if verdict.action == "promote":
                return rules.promote(name, current, verdict.version, versions, verdict.reason)
            return rules.rollback(name, current, versions, verdict.reason)

        try:
            updated = self.writer.update_aliases(name, change)
        except Exception as exc:  # a store this process may not write, one that changed too often: never a request's
            log.warning("model '%s': the canary policy could not move the aliases: %s", name, exc)
            return aliases
        log.info("model '%s' canary %s: %s (%s)", name, verdict.version, verdict.action, verdict.reason)
        return updated

    def verdict(self, name: str, aliases: ModelAliases) -> Verdict | None:
        policy, version = aliases.canary_policy, aliases.canary
        if policy is None or version is None:
            return None
        refused = self.served.rejected(name).get(version)
        if refused is not None:
            return Verdict(name, version, "rollback", f"canary policy: version {version} cannot serve: {refused}")
        runtime = self.served.loaded(name, version)
        if runtime is None:
            return None  # not loaded yet: nothing seen
        return _judged(name, version, policy, runtime.observed.seen())


def _judged(name: str, version: str, policy: CanaryPolicy, seen: Seen) -> Verdict | None:
    numbers = f"{seen.errors} errors in {seen.requests} requests"
    if seen.p95_ms is not None:
        numbers += f", p95 {seen.p95_ms:.1f} ms"
    if seen.errors > policy.max_error_rate * policy.min_requests:
        allowed = f"{policy.max_error_rate:.2%} of {policy.min_requests} requests"
        return Verdict(name, version, "rollback", f"canary policy: {numbers}: over the errors allowed ({allowed})")
    if seen.requests < policy.min_requests:
        return None
    if policy.max_latency_ms is not None and seen.p95_ms is not None and seen.p95_ms > policy.max_latency_ms:
        return Verdict(name, version, "rollback", f"canary policy: {numbers}: p95 over {policy.max_latency_ms:g} ms")
    return Verdict(name, version, "promote", f"canary policy: {numbers}, within {policy.describe()}")
