"""The models a process serves: which versions are loaded, which one answers, which failed and why.

Per model the registry holds an immutable ``_Served`` record (the loaded runtimes, the serving version, the
canary) and replaces it whole when anything changes. A request takes the runtime out of the record it read,
so a swap never disturbs a request in flight: it finishes on the version it started on, and the next one
gets the new version. Versions are prepared (fetched, verified, loaded, validated) *before* they are
installed, by ``prepare``; nothing half-loaded is ever reachable.

The first load runs model by model, cheapest first, and may run on a thread of its own
(``load_in_background``): meanwhile ``get`` waits for the model it is asked for alone, bounded, and the
listings (``states``, ``ready``) say which models are still loading (``aimass.serving.loading``).

A version that cannot serve is recorded with two reasons (``Rejection``): the public one, in the version's own
terms ("file model.onnx failed its integrity check"), is all that ``rejected``, ``states`` and the errors of
``get`` ever say, since any client reads them; the detail (paths, checksums, other libraries' errors) is the
log's and the operator's (``rejections``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from aimass.errors import AimassError, ModelLoadError, ModelNotReady, NotFound
from aimass.serving.domains import checkout_domains, runtime_class
from aimass.serving.head_start import HEAD_START
from aimass.serving.loading import LOAD_WAIT_S, Loading, catalogue, declared_tasks
from aimass.serving.runtime import ModelRuntime
from aimass.serving.session import SessionFactory
from aimass.serving.tasks import TaskSpec
from aimass.serving.tenancy import visible
from aimass.serving.updater import ModelUpdater
from aimass.store.base import ModelStore

log = logging.getLogger("aimass.registry")
LOADING = "it is still loading"  # the public reason of a model's state while the first load runs


@dataclass(frozen=True)
class ModelState:
    """One model version as the V2 repository index reports it."""

    name: str
    version: str
    state: str  # READY or UNAVAILABLE
    reason: str = ""  # the public reason of a rejected version


@dataclass(frozen=True)
class Rejection:
    """Why a version cannot serve: ``public`` for clients, ``detail`` (paths, checksums, errors) for operators."""

    public: str
    detail: str

    @classmethod
    def of(cls, error: ModelLoadError) -> Rejection:
        return cls(error.public or "it could not be prepared", error.message)


@dataclass(frozen=True)
class _Served:
    runtimes: Mapping[str, ModelRuntime] = field(default_factory=dict)
    serving: str | None = None
    canary: str | None = None
    canary_percent: int = 0
    # Versions that could not be made to serve, with the reasons (cleared once a version of that number loads).
    rejected: Mapping[str, Rejection] = field(default_factory=dict)


Validate = Callable[[ModelRuntime], None]


def _no_validation(runtime: ModelRuntime) -> None:
    return None


class ModelRegistry:
    """Loads the serving version of every model in the store whose domain this process serves."""

    def __init__(
        self,
        store: ModelStore,
        sessions: SessionFactory,
        *,
        domains: tuple[str, ...] | None = None,
        validate: Validate = _no_validation,
        keep_versions: int = 2,
        chance: Callable[[], float] = random.random,
        load_wait_s: float = LOAD_WAIT_S,
    ) -> None:
        self.store = store
        self._sessions = sessions
        self._domains = domains
        self._validate = validate
        self._keep = keep_versions
        self._chance = chance
        self._models: dict[str, _Served] = {}
        self._write = threading.Lock()  # writers only: readers take a record without locking
        self._loading = Loading(wait_s=load_wait_s)
        self._loader: threading.Thread | None = None

    # --- loading -------------------------------------------------------------------------------

    def load_all(self) -> None:
        """Load each model's serving version (its ``production`` alias, else its newest) and any canary.

        The very check a running process repeats to follow its aliases (``aimass.serving.updater``), run once
        per model, cheapest first: a start is an update from nothing. A bad model is recorded as rejected and
        the healthy ones serve. Raises the store's error if its models cannot be listed.
        """
        self._loader = threading.current_thread()
        failure: str | None = "the models served here could not be listed from the model store"
        try:
            order = self._loading.catalogued(catalogue(self.store, self._serves))
            failure = None
            updater = ModelUpdater(self, interval_s=0)
            for pending in order:
                try:
                    updater.check([pending.name])
                except Exception as exc:  # one model's unforeseen error must not keep the others from serving
                    log.exception("model '%s' version %s failed to load", pending.name, pending.version)
                    self.reject(pending.name, pending.version, ModelLoadError(repr(exc), public="it failed to load"))
                finally:
                    self._loading.done(pending.name)
        finally:
            self._loading.finish(failure)
            self._loader = None
            HEAD_START.release()  # what the cold start built ahead and this load did not claim

    def load_in_background(self) -> threading.Thread:
        """``load_all`` on a daemon thread; ``get`` waits per model meanwhile. A failure is logged, and kept as
        the reason requests get (``ModelNotReady``)."""
        self._loading.begin()  # before the thread starts: no request may find the catalogue empty

        def run() -> None:
            try:
                self.load_all()
            except Exception:
                log.exception("the models could not be loaded")

        thread = threading.Thread(target=run, name="aimass-model-load", daemon=True)
        thread.start()
        return thread

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Wait until the first load is over; False if ``timeout`` passed first."""
        return self._loading.wait_all(timeout)

    def _serves(self, domain: str) -> bool:
        return self._domains is None or domain in self._domains

    def wants(self, name: str, version: str) -> bool:
        """Is this model this process's to serve? Read from the manifest alone: nothing else is fetched."""
        if self._domains is None:
            return True
        try:
            return self.store.manifest(name, version).domain in self._domains
        except AimassError as exc:
            log.error("cannot read model '%s' version %s: %s", name, version, exc.message)
            return False

    def prepare(self, name: str, version: str) -> ModelRuntime | None:
        """Fetch, verify, load and validate a version, without installing it; None if not this process's domain.

        Raises the ModelLoadError that says why the version cannot serve, with its ``public`` reason always set.
        A version the first load is preparing on another thread is its: the caller (an update check that came
        due meanwhile) waits for it and gets it, rather than loading it a second time.
        """
        if threading.current_thread() is not self._loader and not self._loading.settled:
            with contextlib.suppress(ModelNotReady):
                self._loading.wait_for(name)
            runtime = self.loaded(name, version)
            if runtime is not None:
                return runtime
        with _step("its files could not be read from the model store"):
            artifact = self.store.fetch(name, version)
        domain = artifact.manifest.domain
        if not self._serves(domain):
            return None
        # A domain runtime's own refusals name what in the manifest or graph it cannot serve: the version's terms.
        with _step(f"the {domain} runtime could not load it", own_terms=True):
            runtime = runtime_class(domain, artifact.manifest.engine.format)(artifact, self._sessions)
            runtime.load()
        with _step("its validation samples could not be run"):
            self._validate(runtime)
        return runtime

    # --- changing what serves --------------------------------------------------------------------

    def install(self, runtime: ModelRuntime) -> None:
        """Make a prepared version reachable by pinned requests (``route`` decides what unpinned ones get)."""
        name, version = runtime.manifest.name, runtime.manifest.version
        with self._write:
            served = self._models.get(name, _Served())
            rejected = {v: why for v, why in served.rejected.items() if v != version}
            runtimes = {**served.runtimes, version: runtime}
            self._models[name] = replace(served, runtimes=runtimes, rejected=rejected)
            self._loading.failure = None  # the store answers again
        log.info("loaded model '%s' version %s (%s/%s)", name, version, runtime.manifest.domain, runtime.manifest.task)

    def route(self, name: str, serving: str, *, canary: str | None = None, canary_percent: int = 0) -> None:
        """Point unpinned requests at ``serving`` (and ``canary_percent`` % of them at ``canary``): one swap."""
        with self._write:
            served = self._models[name]
            for version in (serving, canary):
                if version is not None and version not in served.runtimes:
                    raise ModelNotReady(f"model '{name}' version {version} is not loaded")
            keep = self._kept(served.runtimes, serving, canary)
            runtimes = {v: r for v, r in served.runtimes.items() if v in keep}
            if canary is not None and (canary, canary_percent) != (served.canary, served.canary_percent):
                # A canary's trial starts here: a policy judges what it serves as the canary, nothing before.
                runtimes[canary].observed.reset()
            self._models[name] = replace(
                served, runtimes=runtimes, serving=serving, canary=canary, canary_percent=canary_percent
            )
        if served.serving != serving:
            log.info("model '%s' now serves version %s (was %s)", name, serving, served.serving)

    def _kept(self, runtimes: Mapping[str, ModelRuntime], serving: str, canary: str | None) -> set[str]:
        """The serving and canary versions, then the newest others up to ``keep_versions`` in all."""
        keep = {serving} | ({canary} if canary else set())
        for version in sorted(runtimes, key=int, reverse=True):
            if len(keep) >= self._keep:
                break
            keep.add(version)
        return keep

    def reject(self, name: str, version: str, error: ModelLoadError) -> None:
        """Record that ``version`` could not be made to serve; whatever served before keeps serving."""
        with self._write:
            served = self._models.get(name, _Served())
            self._models[name] = replace(served, rejected={**served.rejected, version: Rejection.of(error)})

    # --- answering -----------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None, *, wait: bool = True) -> ModelRuntime:
        """The runtime that answers a request for ``name`` (pinned to ``version``, else the serving one, or now
        and then the canary). While the first load runs, a model still loading is waited for, up to its bound
        (``wait``: not at all): then ModelNotReady."""
        if not self._loading.settled:
            self._loading.wait_for(name, wait=wait)
        if self._loading.failure is not None and name not in self._models:
            raise ModelNotReady(self._loading.failure)
        served = self._models.get(name)
        if served is not None and not self._visible(served):
            served = None  # another tenant's model is one this process does not have
        if served is None or not served.runtimes:
            if served is not None and served.rejected:
                reasons = "; ".join(f"version {v} was rejected: {why.public}" for v, why in served.rejected.items())
                raise ModelNotReady(f"model '{name}' is not available: {reasons}")
            known = ", ".join(self.names()) or "none"
            raise NotFound(f"model '{name}' not found; models served here: {known}", param="model")
        if version is None:
            chosen = served.serving
            if served.canary is not None and self._chance() * 100 < served.canary_percent:
                chosen = served.canary
            if chosen is None:
                raise ModelNotReady(f"model '{name}' has no serving version")
            return served.runtimes[chosen]
        runtime = served.runtimes.get(version)
        if runtime is None:
            loaded = ", ".join(sorted(served.runtimes, key=int))
            why = f" (it was rejected: {served.rejected[version].public})" if version in served.rejected else ""
            raise NotFound(
                f"model '{name}' has no version '{version}' loaded{why}; loaded versions: {loaded}", param="version"
            )
        return runtime

    def offered_tasks(self) -> dict[tuple[str, str], TaskSpec]:
        """Every (domain, task) some served model offers, with the spec of the first model offering it, and the
        tasks each served domain's runtime declares before any model offers them (``declared_tasks``).

        While the first load runs, a loading model's runtime declares its tasks for it; one whose runtime
        declares none (its tasks are known once it has loaded) is waited for, bounded."""
        for pending in self._loading.pending(wait=True):
            if not declared_tasks(pending):
                with contextlib.suppress(ModelNotReady):
                    self._loading.wait_for(pending.name)
        found: dict[tuple[str, str], TaskSpec] = {}
        for runtime in self.runtimes(wait=False):
            for task, spec in runtime.tasks().items():
                found.setdefault((runtime.manifest.domain, task), spec)
        for domain, declared in self.declared_tasks().items():
            for task, spec in declared.items():
                found.setdefault((domain, task), spec)
        return found

    def declared_tasks(self) -> dict[str, dict[str, TaskSpec]]:
        """The tasks each domain this process serves declares for models it may load later, by domain."""
        found: dict[str, dict[str, TaskSpec]] = {}
        for domain in self._domains if self._domains is not None else checkout_domains():
            try:
                declared = runtime_class(domain).declared_tasks()
            except ModelLoadError:  # a domain not installed here serves nothing, declared or not
                continue
            if declared:
                found[domain] = declared
        for pending in self._loading.pending():
            if pending.manifest is not None:
                for task, spec in declared_tasks(pending).items():
                    found.setdefault(pending.manifest.domain, {}).setdefault(task, spec)
        return found

    def names(self) -> list[str]:
        """The models with a serving version, those of other tenants left out (``aimass.serving.tenancy``)."""
        return sorted(
            name for name, served in self._models.items() if served.serving is not None and self._visible(served)
        )

    @staticmethod
    def _visible(served: _Served) -> bool:
        owners = {runtime.manifest.tenant for runtime in served.runtimes.values()}
        return all(visible(owner) for owner in owners)

    def runtimes(self, *, wait: bool = True) -> list[ModelRuntime]:
        """Each model's serving runtime: while the first load runs, once it is over (bounded; ``wait``: those
        loaded so far). A listing, or a request that names no model, is answered from every model."""
        if wait and not self._loading.settled:
            self._loading.wait_all(self._loading.wait_s)
        found = []
        for name in self.names():
            served = self._models[name]
            if served.serving is not None:
                found.append(served.runtimes[served.serving])
        return found

    def serving(self, name: str) -> tuple[str | None, str | None, int]:
        """(serving version, canary version, canary percent) of ``name``; Nones when it is not known."""
        served = self._models.get(name, _Served())
        return served.serving, served.canary, served.canary_percent

    def loaded_versions(self, name: str) -> list[str]:
        return sorted(self._models.get(name, _Served()).runtimes, key=int)

    def loaded(self, name: str, version: str) -> ModelRuntime | None:
        """``version`` of ``name`` if this process has it loaded."""
        return self._models.get(name, _Served()).runtimes.get(version)

    def rejected(self, name: str) -> dict[str, str]:
        """The public reason of each rejected version of ``name``: what clients may read."""
        return {v: why.public for v, why in self._models.get(name, _Served()).rejected.items()}

    def rejections(self, name: str) -> dict[str, Rejection]:
        """Each rejected version's reasons, the detail included: for logs and operators, never for a response."""
        return dict(self._models.get(name, _Served()).rejected)

    def states(self) -> list[ModelState]:
        """Every loaded version (READY) and every rejected one (UNAVAILABLE, with why), by name then version."""
        found: list[ModelState] = []
        for name in sorted(self._models):
            served = self._models[name]
            if not self._visible(served):
                continue
            rows = {v: ModelState(name, v, "READY") for v in served.runtimes}
            rows.update({v: ModelState(name, v, "UNAVAILABLE", why.public) for v, why in served.rejected.items()})
            found.extend(rows[v] for v in sorted(rows, key=int))
        for pending in self._loading.pending():
            if pending.version not in self._models.get(pending.name, _Served()).runtimes:
                found.append(ModelState(pending.name, pending.version, "UNAVAILABLE", LOADING))
        return sorted(found, key=lambda s: (s.name, int(s.version)))

    @property
    def ready(self) -> bool:
        """The first load is over and every model has a serving version (a rejected update does not make a
        serving model unready)."""
        return (
            self._loading.settled
            and bool(self._models)
            and all(served.serving is not None for served in self._models.values())
        )


@contextlib.contextmanager
def _step(fallback: str, *, own_terms: bool = False) -> Iterator[None]:
    """One step of ``prepare``: its errors leave as ModelLoadErrors whose ``public`` reason is set.

    The error's own public reason where it has one; else, with ``own_terms``, its message (a domain runtime's
    refusal), unless it was raised while handling another library's error, whose text (reprs of values,
    versions, paths) it may quote; else the step's ``fallback``: an error nobody wrote for clients never
    reaches one.
    """
    try:
        yield
    except ModelLoadError as exc:
        if exc.public is None:
            quotes = exc.__context__ is not None and not isinstance(exc.__context__, AimassError)
            exc.public = exc.message if own_terms and not quotes else fallback
        raise
    except AimassError as exc:
        raise ModelLoadError(exc.message, public=fallback) from None
