"""The models a process serves: which are loaded, which failed and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aimass.domains import runtime_class
from aimass.errors import AimassError, ModelNotReady, NotFound
from aimass.runtime import ModelRuntime
from aimass.session import SessionFactory
from aimass.store import ModelStore

log = logging.getLogger("aimass.registry")


@dataclass(frozen=True)
class ModelState:
    """One model version as the V2 repository index reports it."""

    name: str
    version: str
    state: str  # READY or UNAVAILABLE
    reason: str = ""


class ModelRegistry:
    """Loads the newest version of every model in the store whose domain this process serves."""

    def __init__(self, store: ModelStore, sessions: SessionFactory, *, domains: tuple[str, ...] | None = None) -> None:
        self._store = store
        self._sessions = sessions
        self._domains = domains
        self._runtimes: dict[str, dict[str, ModelRuntime]] = {}
        self._states: dict[str, ModelState] = {}

    def load_all(self) -> None:
        for name in self._store.model_names():
            version = self._store.versions(name)[-1]
            try:
                self.load(name, version)
            except AimassError as exc:
                # A bad model must not take the healthy ones down with it: record why and serve the rest.
                log.error("not serving model '%s' version %s: %s", name, version, exc.message)
                self._states[name] = ModelState(name, version, "UNAVAILABLE", exc.message)

    def load(self, name: str, version: str) -> ModelRuntime | None:
        artifact = self._store.fetch(name, version)
        domain = artifact.manifest.domain
        if self._domains is not None and domain not in self._domains:
            return None
        runtime = runtime_class(domain)(artifact, self._sessions)
        runtime.load()
        self._runtimes.setdefault(name, {})[version] = runtime
        self._states[name] = ModelState(name, version, "READY")
        log.info("serving model '%s' version %s (%s/%s)", name, version, domain, artifact.manifest.task)
        return runtime

    def get(self, name: str, version: str | None = None) -> ModelRuntime:
        versions = self._runtimes.get(name)
        if not versions:
            state = self._states.get(name)
            if state is not None:
                raise ModelNotReady(f"model '{name}' is not available: {state.reason}")
            known = ", ".join(sorted(self._runtimes)) or "none"
            raise NotFound(f"model '{name}' not found; models served here: {known}", param="model")
        if version is None:
            return versions[max(versions, key=int)]
        runtime = versions.get(version)
        if runtime is None:
            loaded = ", ".join(sorted(versions, key=int))
            raise NotFound(f"model '{name}' has no version '{version}' loaded; loaded versions: {loaded}")
        return runtime

    def runtimes(self) -> list[ModelRuntime]:
        return [self.get(name) for name in sorted(self._runtimes)]

    def states(self) -> list[ModelState]:
        return [self._states[name] for name in sorted(self._states)]

    @property
    def ready(self) -> bool:
        return bool(self._runtimes) and all(s.state == "READY" for s in self._states.values())
