"""Can a version serve? Checked before an alias points at it (by the CLI, and by the management API).

Every file's sha256 is read from the store itself (a cached copy could hide a damaged object), then the version
is prepared exactly as a serving function prepares it before a swap (``ModelRegistry.prepare``: fetched,
decrypted in memory, graph loaded, validation samples run). Preparing needs what a function has: the domain's
runtime and, for an encrypted version, its key. Where this machine lacks one, that step alone is skipped, and
``unchecked`` says why; the files have still been checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from aimass.errors import DecryptionError, ModelLoadError
from aimass.serving.domains import runtime_class
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.serving.validation import validate
from aimass.settings import Settings
from aimass.store.base import ProgressCallback, WritableModelStore
from aimass.store.manifest import ModelManifest


@dataclass(frozen=True)
class Readiness:
    """What the check found: why the version cannot serve (the detail), or why it was not prepared here."""

    manifest: ModelManifest | None = None
    problem: str | None = None
    unchecked: str | None = None

    @property
    def servable(self) -> bool:
        """No check failed (those that ran: see ``unchecked``)."""
        return self.problem is None

    def loading(self) -> str:
        """How far past its files the check of a servable version went."""
        if self.unchecked is not None:
            return f"not loaded here, so its graph and validation samples are unchecked: {self.unchecked}"
        if self.manifest is not None and self.manifest.validation is None:
            return "loaded; it has no validation samples"
        return "loaded, validation samples passed"


def check(
    store: WritableModelStore, settings: Settings, name: str, version: str, *, progress: ProgressCallback | None = None
) -> Readiness:
    """Check ``version`` as a function would before serving it; errors other than the version's own propagate."""
    try:
        manifest = store.verify(name, version, progress=progress)
    except ModelLoadError as exc:
        return Readiness(problem=exc.message)
    try:
        runtime_class(manifest.domain, manifest.engine.format)
    except ModelLoadError as exc:
        return Readiness(manifest, unchecked=f"the {manifest.domain} runtime is not available here: {exc.message}")
    try:
        ModelRegistry(store, SessionFactory(settings), validate=validate).prepare(name, version)
    except DecryptionError as exc:  # its ciphertexts checked out above: the key is what this machine lacks
        return Readiness(manifest, unchecked=f"it cannot be decrypted here: {exc.message}")
    except ModelLoadError as exc:
        return Readiness(manifest, problem=exc.message)
    return Readiness(manifest)
