"""Hot update: a serving process follows its models' aliases and swaps versions without failing a request.

At most every ``alias_check_s`` seconds the updater re-reads each model's aliases in the store. When the
serving or canary version changed, the new version is prepared (fetched, checksums verified, decrypted in
memory, session built, validation samples run) while the old one keeps answering, and only then swapped in:
one assignment in the registry. A version that fails any step is never swapped in; the registry records it
as rejected (the V2 index and model metadata show its public reason), the detail is logged once per attempt,
and it is retried with exponential backoff, since a transient fetch failure should heal and a truly bad
version should not be hammered.

On Lambda the check runs at the start of an invocation once the interval has passed (a frozen container runs
no background thread); the local server also runs it on a background thread.

The updater drives a registry through ``Registry``, the few calls it makes, so that the registry (whose
``load_all`` is one check run from nothing) imports the updater and not the other way round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aimass.errors import AimassError, ModelLoadError
from aimass.serving.canary import CanaryJudge
from aimass.serving.runtime import ModelRuntime
from aimass.store.base import ModelStore

log = logging.getLogger("aimass.updater")

MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class _Failure:
    attempts: int
    retry_at: float


@dataclass(frozen=True)
class Change:
    """What one check did to one model: the version it swapped in, or the one it rejected and why (the detail)."""

    name: str
    version: str
    role: str  # "serving" or "canary"
    swapped: bool
    reason: str = ""
    seconds: float = 0.0


class Registry(Protocol):
    """What the updater asks of the models a process serves (``aimass.serving.registry.ModelRegistry``)."""

    @property
    def store(self) -> ModelStore: ...

    def wants(self, name: str, version: str) -> bool: ...

    def serving(self, name: str) -> tuple[str | None, str | None, int]: ...

    def loaded_versions(self, name: str) -> list[str]: ...

    def prepare(self, name: str, version: str) -> ModelRuntime | None: ...

    def install(self, runtime: ModelRuntime) -> None: ...

    def reject(self, name: str, version: str, error: ModelLoadError) -> None: ...

    def route(self, name: str, serving: str, *, canary: str | None = None, canary_percent: int = 0) -> None: ...


class ModelUpdater:
    """``judge``, where given, applies each model's canary policy at every check, before what serves is decided
    (``aimass.serving.canary``)."""

    def __init__(
        self,
        registry: Registry,
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        judge: CanaryJudge | None = None,
    ) -> None:
        self.registry = registry
        self.judge = judge
        self.interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._checking = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        return self.interval_s > 0 and self._clock() - self._last >= self.interval_s

    def check_if_due(self) -> list[Change]:
        """The per-invocation hook: check when the interval has passed (and no other check is running)."""
        if not self.due() or not self._checking.acquire(blocking=False):
            return []
        try:
            return self._check()
        finally:
            self._checking.release()

    def check(self, names: Sequence[str] | None = None) -> list[Change]:
        """Check every model now (or only ``names``, in that order)."""
        with self._checking:
            return self._check(names)

    def _check(self, names: Sequence[str] | None = None) -> list[Change]:
        self._last = self._clock()
        store = self.registry.store
        changes: list[Change] = []
        for name in store.model_names() if names is None else names:
            try:
                versions = store.versions(name)
                aliases = store.aliases(name)
            except AimassError as exc:
                log.warning("cannot read the aliases of model '%s': %s", name, exc.message)
                continue
            if self.judge is not None:
                aliases = self.judge.judge(name, aliases, versions)
            target = aliases.serving(versions)
            if target is None or not self.registry.wants(name, target):
                continue
            serving, canary, percent = self.registry.serving(name)
            wanted_canary = aliases.canary if aliases.canary in versions else None
            if (target, wanted_canary, aliases.canary_percent if wanted_canary else 0) == (serving, canary, percent):
                continue
            ready = self._ensure(name, target, "serving", changes)
            if not ready:
                continue  # the old version keeps serving; the rejection is recorded
            canary_ready = wanted_canary is not None and self._ensure(name, wanted_canary, "canary", changes)
            if wanted_canary is not None and not canary_ready and self.judge is not None:
                self.judge.judge(name, aliases, versions)  # a canary refused here: its policy ends it now
            self.registry.route(
                name,
                target,
                canary=wanted_canary if canary_ready else None,
                canary_percent=aliases.canary_percent if canary_ready else 0,
            )
            store.evict(name, self.registry.loaded_versions(name))  # a remote store's cache keeps what is loaded
        return changes

    def _ensure(self, name: str, version: str, role: str, changes: list[Change]) -> bool:
        """Is ``version`` loaded, or can it be prepared and installed now? Records what happened."""
        if version in self.registry.loaded_versions(name):
            return True
        failure = self._failures.get((name, version))
        if failure is not None and self._clock() < failure.retry_at:
            return False
        started = self._clock()
        try:
            runtime = self.registry.prepare(name, version)
        except ModelLoadError as exc:
            attempts = failure.attempts + 1 if failure else 1
            backoff = min(MAX_BACKOFF_S, max(self.interval_s, 1.0) * 2 ** (attempts - 1))
            self._failures[(name, version)] = _Failure(attempts, self._clock() + backoff)
            self.registry.reject(name, version, exc)
            log.error(
                "model '%s' version %s rejected (attempt %d, retry in %.0f s): %s",
                name, version, attempts, backoff, exc.message,
            )  # fmt: skip
            changes.append(Change(name, version, role, False, exc.message))
            return False
        if runtime is None:  # another domain's model: not this process's to serve
            return False
        self.registry.install(runtime)
        self._failures.pop((name, version), None)
        seconds = self._clock() - started
        log.info("model '%s' version %s prepared as %s in %.2f s", name, version, role, seconds)
        changes.append(Change(name, version, role, True, seconds=seconds))
        return True

    # --- the local server's watcher ----------------------------------------------------------------

    def start(self) -> None:
        """Check on a daemon thread every interval until ``stop``."""
        if self.interval_s <= 0 or self._thread is not None:
            return

        def watch() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.check()
                except Exception:  # a watcher that dies silently would stop all updates
                    log.exception("model update check failed")

        self._thread = threading.Thread(target=watch, name="aimass-model-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
