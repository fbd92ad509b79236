"""Moving a model's aliases once the version is known to serve: what the CLI and the management API share.

The rules of each move are ``aimass.store.aliases``'s and run first, on the aliases as they are, so that a move
they refuse is refused before anything is read; then the version is checked as a function would check it
(``aimass.serving.readiness``), and the aliases change in one read-change-write step of the store. A version that
fails its check is refused with the reason and the aliases left as they are, unless forced: then the history
records what it failed, and the functions refuse it as they would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aimass.errors import InvalidInput, NotFound
from aimass.serving import readiness
from aimass.settings import Settings
from aimass.store import aliases as rules
from aimass.store.aliases import CanaryPolicy, ModelAliases
from aimass.store.base import ProgressCallback, WritableModelStore

# (the aliases now, the model's versions, the reason to record) -> the aliases after the change
Move = Callable[[ModelAliases, list[str], str], ModelAliases]


@dataclass(frozen=True)
class Moved:
    aliases: ModelAliases
    found: readiness.Readiness
    forced: bool = False


def one_line(text: str) -> str:
    """A reason may quote another library's multi-line error."""
    return " ".join(text.split())


def known_versions(store: WritableModelStore, name: str) -> list[str]:
    versions = store.versions(name)
    if not versions:
        listed = ", ".join(store.model_names()) or "none"
        raise NotFound(f"no model '{name}' in the store at {store.location}; models there: {listed}", param="name")
    return versions


def change(
    store: WritableModelStore, name: str, rule: Callable[[ModelAliases, list[str]], ModelAliases]
) -> ModelAliases:
    versions = known_versions(store, name)
    return store.update_aliases(name, lambda current: rule(current, versions))


def checked_move(
    store: WritableModelStore,
    settings: Settings,
    name: str,
    version: str,
    move: Move,
    reason: str,
    *,
    force: bool,
    override: str = "--force",
    progress: ProgressCallback | None = None,
) -> Moved:
    """Point an alias at ``version`` once it has passed the checks a function makes; InvalidInput otherwise
    (``override`` says how to force it: ``--force`` on the command line, ``"force": true`` over HTTP)."""
    move(store.aliases(name), known_versions(store, name), reason)
    found = readiness.check(store, settings, name, version, progress=progress)
    if found.servable:
        return Moved(change(store, name, lambda current, versions: move(current, versions, reason)), found)
    problem = one_line(found.problem or "")
    if not force:
        raise InvalidInput(
            f"{name} version {version} cannot serve: {problem}; the aliases are unchanged ({override} to override)",
            param="version",
        )
    recorded = "; ".join(part for part in (reason, f"forced past its check: {problem}") if part)
    return Moved(change(store, name, lambda current, versions: move(current, versions, recorded)), found, forced=True)


def promote(name: str, version: str) -> Move:
    return lambda current, versions, why: rules.promote(name, current, version, versions, why)


def canary(name: str, version: str, percent: int, policy: CanaryPolicy | None = None) -> Move:
    return lambda current, versions, why: rules.canary(name, current, version, percent, versions, why, policy)


def rollback(
    store: WritableModelStore,
    settings: Settings,
    name: str,
    reason: str,
    *,
    skipped: Callable[[str, readiness.Readiness], None] = lambda version, found: None,
) -> ModelAliases:
    """End ``name``'s canary, or put back the production version before the current one that can serve; each
    candidate is prepared as a function would prepare it, and ``skipped`` hears of each that cannot."""

    def usable(version: str) -> bool:
        found = readiness.check(store, settings, name, version)
        if not found.servable or found.unchecked:
            skipped(version, found)
        return found.servable

    return change(store, name, lambda current, versions: rules.rollback(name, current, versions, reason, usable))
