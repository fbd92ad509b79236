"""A process's first load, model by model: which models it is loading, and a bounded wait for each one.

A function that serves several models should answer its first request as soon as the model that request
names is loaded, not once every model is: a speech function's keyword model loads in milliseconds, its
PocketSphinx decoder in most of a second. So the first load reads the catalogue first (which models, which
versions: manifests only), then loads the models one by one, cheapest first, and each request waits for
its own model alone (``ModelRegistry.get``). Until the catalogue is read nobody can tell a model that is
coming from one that does not exist, so a request waits for the catalogue too; after it, an unknown name is
a 404 at once.

The waits are bounded (``wait_s``): a model still loading past the bound answers 503 (``ModelNotReady``),
as does one whose load failed (its rejection, recorded by the registry, says why).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aimass.errors import AimassError, ModelLoadError, ModelNotReady
from aimass.serving.domains import runtime_class
from aimass.serving.tasks import TaskSpec
from aimass.serving.tenancy import visible
from aimass.store.base import ModelStore
from aimass.store.manifest import ModelManifest

log = logging.getLogger("aimass.registry")

# A request waits this long at most for its model's first load (API Gateway gives up at 29 s).
LOAD_WAIT_S = 20.0


@dataclass(frozen=True)
class Pending:
    """A model of the catalogue whose first load has not finished: the version it will serve first (``manifest``
    None where it could not be read: its load says why)."""

    name: str
    version: str
    manifest: ModelManifest | None
    done: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def cost(self) -> tuple[bool, int, str]:
        """ONNX Runtime builds its sessions with the GIL released; another engine (PocketSphinx) holds it while
        it loads, stalling every request beside it: those go last, and smaller versions before larger ones."""
        if self.manifest is None:
            return True, sys.maxsize, self.name
        return self.manifest.engine.format != "onnx", sum(f.size for f in self.manifest.files), self.name

    @property
    def tenant(self) -> str | None:
        return None if self.manifest is None else self.manifest.tenant


def catalogue(store: ModelStore, serves: Callable[[str], bool]) -> list[Pending]:
    """The models of ``store`` whose domain ``serves`` accepts, with the version each will serve first, from
    their aliases and manifests alone."""
    found = []
    for name in store.model_names():
        try:
            target = store.aliases(name).serving(store.versions(name))
        except AimassError as exc:  # as the update check does: nothing to load until they can be read
            log.warning("cannot read the aliases of model '%s': %s", name, exc.message)
            continue
        if target is None:
            continue
        try:
            manifest: ModelManifest | None = store.manifest(name, target)
        except AimassError:
            manifest = None  # its load records why: rejected, or not this process's (ModelRegistry.wants)
        if manifest is None or serves(manifest.domain):
            found.append(Pending(name, target, manifest))
    return found


def declared_tasks(pending: Pending) -> dict[str, TaskSpec]:
    """The tasks the runtime of a model still loading declares for it (none where it is not installed)."""
    if pending.manifest is None:
        return {}
    try:
        return runtime_class(pending.manifest.domain, pending.manifest.engine.format).declared_tasks()
    except ModelLoadError:
        return {}


class Loading:
    """The state of the first load: settled from the start, unless a load is ``begun``."""

    def __init__(self, *, wait_s: float = LOAD_WAIT_S) -> None:
        self.wait_s = wait_s
        self.settled = True  # read without a lock on every request: True once nothing is left to wait for
        self.failure: str | None = None  # the public reason, where the catalogue could not be read
        self._listed = threading.Event()
        self._listed.set()
        self._pending: dict[str, Pending] = {}
        self._all_done = threading.Event()
        self._all_done.set()

    def begin(self) -> None:
        """A load is about to start (on another thread): from now on requests wait for its catalogue."""
        self.settled = False
        self._listed.clear()
        self._all_done.clear()

    def catalogued(self, catalogue: Iterable[Pending]) -> list[Pending]:
        """The catalogue is known: these models are loading, in the order returned (cheapest first)."""
        order = sorted(catalogue, key=lambda p: p.cost)
        self._pending = {p.name: p for p in order}
        self._listed.set()
        return order

    def done(self, name: str) -> None:
        """``name``'s first load is over, served or rejected."""
        pending = self._pending.pop(name, None)
        if pending is not None:
            pending.done.set()

    def finish(self, failure: str | None = None) -> None:
        """The load is over (``failure``: the catalogue could not be read): nobody waits any longer."""
        self.failure = failure
        self._listed.set()
        for name in list(self._pending):
            self.done(name)
        self.settled = True
        self._all_done.set()

    def pending(self, *, wait: bool = False) -> list[Pending]:
        """The models still loading whose owner the caller may see (``aimass.serving.tenancy``); with ``wait``,
        once the catalogue is read (bounded: those known by then)."""
        if wait and not self.settled:
            self._listed.wait(self.wait_s)
        return [p for p in list(self._pending.values()) if visible(p.tenant)]

    def wait_for(self, name: str, *, wait: bool = True) -> None:
        """Return once ``name`` is not loading (a name outside the catalogue never is); ModelNotReady if it still
        is after ``wait_s`` (at once, without ``wait``)."""
        deadline = time.monotonic() + (self.wait_s if wait else 0.0)
        if not self._listed.wait(max(0.0, deadline - time.monotonic())):
            raise ModelNotReady("the models served here are still being listed; retry in a moment")
        pending = self._pending.get(name)
        if pending is None or not visible(pending.tenant):
            return
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            raise ModelNotReady(f"model '{name}' is still loading; retry in a moment")

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait until the whole load is over; False if ``timeout`` passed first."""
        return self._all_done.wait(timeout)
