"""The local-directory model store: the default, and the layout baked into function images.

``<root>/<name>/<version>/`` holds a version's files beside its manifest, ``<root>/<name>/aliases.json``
its aliases. A publish copies into a temporary directory and renames it into place, under ``model_lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from aimass.errors import ModelLoadError, NotFound
from aimass.store.aliases import ALIASES_FILE, ModelAliases
from aimass.store.base import ModelArtifact, ProgressCallback, Unsealer, parse_aliases, publication
from aimass.store.layout import version_names
from aimass.store.manifest import (
    MANIFEST_FILE,
    MISPLACED_MANIFEST,
    FileEntry,
    ModelManifest,
    check_digest,
    check_sizes,
    read_manifest,
    write_manifest,
)

BLOCK = 8 << 20


class LocalModelStore:
    """Models on local disk; the default, and the layout baked into function images."""

    def __init__(self, root: Path, *, unsealer: Unsealer | None = None) -> None:
        self.root = root
        self.unsealer = unsealer

    def evict(self, name: str, keep: Collection[str]) -> None:
        return None  # the store is the local copy: nothing is cached

    @property
    def location(self) -> str:
        return str(self.root)

    def model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        return version_names(self.root / name)

    def manifest(self, name: str, version: str) -> ModelManifest:
        directory = self.root / name / version
        if not (directory / MANIFEST_FILE).is_file():
            raise NotFound(f"model '{name}' version '{version}' is not in the store at {self.root}")
        manifest = read_manifest(directory)
        if (manifest.name, manifest.version) != (name, version):
            raise ModelLoadError(
                f"{directory / MANIFEST_FILE}: describes '{manifest.name}' version {manifest.version}, "
                f"but lies at '{name}/{version}'",
                public=MISPLACED_MANIFEST,
            )
        return manifest

    def fetch(self, name: str, version: str) -> ModelArtifact:
        manifest = self.manifest(name, version)
        directory = self.root / name / version
        check_sizes(directory, manifest)
        return ModelArtifact(manifest=manifest, directory=directory, unsealer=self.unsealer)

    def verify(self, name: str, version: str, *, progress: ProgressCallback | None = None) -> ModelManifest:
        artifact = self.fetch(name, version)
        for entry in artifact.manifest.files:
            path = artifact.directory / entry.path
            check_digest(path, entry, copy_hashed(path, None, entry, progress))
        return artifact.manifest

    def aliases(self, name: str) -> ModelAliases:
        path = self.root / name / ALIASES_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return ModelAliases()
        return parse_aliases(raw, str(path))

    def write_aliases(self, name: str, aliases: ModelAliases) -> None:
        model_root = self.root / name
        model_root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".aliases-", dir=model_root)
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(aliases.model_dump_json(indent=2) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it private; the server may run as another user
            os.replace(temporary, model_root / ALIASES_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def update_aliases(self, name: str, change: Callable[[ModelAliases], ModelAliases]) -> ModelAliases:
        with model_lock(self.root / name):
            updated = change(self.aliases(name))
            self.write_aliases(name, updated)
        return updated

    def publish(
        self, source: Path, *, version: str | None = None, progress: ProgressCallback | None = None
    ) -> ModelManifest:
        manifest = read_manifest(source)
        check_sizes(source, manifest)
        model_root = self.root / manifest.name
        with model_lock(model_root):
            for leftover in model_root.glob(".publish-*"):  # of publishes killed outright; we hold the lock
                shutil.rmtree(leftover, ignore_errors=True)
            target, present = publication(
                manifest, self.versions(manifest.name), lambda v: self.manifest(manifest.name, v), version
            )
            if present:
                return target
            work = Path(tempfile.mkdtemp(prefix=".publish-", dir=model_root))
            try:
                for entry in manifest.files:
                    # Checked on the bytes copied, so a source changed under us cannot slip in.
                    check_digest(source / entry.path, entry, copy_hashed(source / entry.path, work, entry, progress))
                write_manifest(work, target)
                work.chmod(0o755)  # mkdtemp makes it private; the server may run as another user
                work.rename(model_root / target.version)
            finally:
                shutil.rmtree(work, ignore_errors=True)  # gone after the rename; the half-copy after a failure
        return target


@contextlib.contextmanager
def model_lock(model_root: Path) -> Iterator[None]:
    """One writer per model at a time (``<model_root>/.build.lock``): the store's publishes and alias updates, and the
    model builds (models/buildkit/publish.py)."""
    model_root.mkdir(parents=True, exist_ok=True)
    with (model_root / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_hashed(source: Path, into: Path | None, entry: FileEntry, progress: ProgressCallback | None) -> str:
    """Copy ``source`` to ``into/entry.path`` (or only read it when ``into`` is None); return its sha256."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(source.open("rb"))
        writer = None
        if into is not None:
            (into / entry.path).parent.mkdir(parents=True, exist_ok=True)
            writer = stack.enter_context((into / entry.path).open("wb"))
        for block in iter(lambda: reader.read(BLOCK), b""):
            digest.update(block)
            if writer is not None:
                writer.write(block)
            if progress is not None:
                progress(entry.path, len(block), entry.size)
        if writer is not None:
            writer.flush()
            os.fsync(writer.fileno())
    return digest.hexdigest()
