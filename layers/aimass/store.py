"""The model store: where model versions live, laid out as ``<name>/<version>/`` beside ``<name>/aliases.json``.

Serving code reads a store through ``ModelStore`` and never knows where the bytes came from; the operator
CLI writes through ``WritableModelStore``. This module holds the local-directory backend (the default, and
the layout baked into function images) and the rules every backend shares: which version a publish
becomes, and when a publish is a no-op or refused. ``aimass.s3_store`` is the S3 backend;
``aimass.stores.open_store`` picks one from the settings.

Versions are immutable: once ``<name>/<version>`` holds files, publishing other bytes under that number is
refused, and publishing the same bytes again changes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from aimass.aliases import ALIASES_FILE, ModelAliases
from aimass.errors import DecryptionError, InvalidInput, ModelLoadError, NotFound
from aimass.manifest import (
    MANIFEST_FILE,
    MISPLACED_MANIFEST,
    FileEntry,
    ModelManifest,
    check_digest,
    check_sizes,
    read_manifest,
    write_manifest,
)

# Called as bytes move: (the file's path in the version, bytes just moved, the file's size).
ProgressCallback = Callable[[str, int, int], None]
BLOCK = 8 << 20


class Unsealer(Protocol):
    """Decrypts one file of an encrypted version in memory (``aimass.sealing``)."""

    def open(self, manifest: ModelManifest, entry: FileEntry, sealed: bytes) -> bytes: ...


@dataclass(frozen=True)
class ModelArtifact:
    """A model version on local disk whose files are checked as they are read.

    ``fetch`` checks the manifest and every file's size; ``read`` checks a file's sha256 on the very bytes
    it returns, so a model is read once at load, not once to verify and again to use. The files of an
    encrypted version are decrypted here, in memory, by the store's ``unsealer``: the plaintext is only
    ever handed to the caller, never written.
    """

    manifest: ModelManifest
    directory: Path
    unsealer: Unsealer | None = None

    def read(self, relative: str) -> bytes:
        entry = self.manifest.file(relative)  # refuses files the manifest does not vouch for
        path = self.directory / relative
        data = path.read_bytes()
        check_digest(path, entry, hashlib.sha256(data).hexdigest())
        if self.manifest.encryption is None:
            return data
        undecrypted = f"file {relative} could not be decrypted"
        if self.unsealer is None:
            raise DecryptionError(
                f"model '{self.manifest.name}' version {self.manifest.version} is encrypted "
                f"({self.manifest.encryption.key_provider} key) and this process has no key provider configured",
                public=undecrypted,
            )
        try:
            return self.unsealer.open(self.manifest, entry, data)
        except ModelLoadError as exc:  # names key files, key ids and digests: the operator's to read
            raise DecryptionError(exc.message, public=undecrypted) from None


class ModelStore(Protocol):
    """What serving reads: the models, their versions (sorted numerically), a verified copy, the aliases."""

    def model_names(self) -> list[str]: ...

    def versions(self, name: str) -> list[str]: ...

    def fetch(self, name: str, version: str) -> ModelArtifact: ...

    def aliases(self, name: str) -> ModelAliases:
        """The model's aliases document; ``ModelAliases()`` (serve the newest) when it has none."""
        ...

    def manifest(self, name: str, version: str) -> ModelManifest:
        """A version's manifest alone, without its files: cheap enough for listings."""
        ...

    def evict(self, name: str, keep: Collection[str]) -> None:
        """Drop local copies of ``name``'s versions other than ``keep`` (a remote store's cache); else nothing."""
        ...


class WritableModelStore(ModelStore, Protocol):
    """What the operator CLI also does: publish versions, move aliases, check every byte."""

    @property
    def location(self) -> str: ...

    def publish(
        self, source: Path, *, version: str | None = None, progress: ProgressCallback | None = None
    ) -> ModelManifest:
        """Make the built model folder ``source`` (manifest.json + files) a new version; return its manifest.

        The version is the next integer after the newest, or ``version``. Publishing the bytes the newest
        (or the given) version already holds is a no-op that returns that version's manifest.
        """
        ...

    def write_aliases(self, name: str, aliases: ModelAliases) -> None: ...

    def update_aliases(self, name: str, change: Callable[[ModelAliases], ModelAliases]) -> ModelAliases:
        """Read, change and write the aliases as one step, so two operators' changes never overwrite each other."""
        ...

    def verify(self, name: str, version: str, *, progress: ProgressCallback | None = None) -> ModelManifest:
        """Read every file of the version where the store keeps it and check its sha256; raise ModelLoadError."""
        ...


def check_version(version: str) -> str:
    if not version.isdigit() or version.startswith("0"):
        raise InvalidInput(f"version must be a positive integer such as '3', got '{version}'", param="version")
    return version


def publication(
    source: ModelManifest,
    versions: Sequence[str],
    existing: Callable[[str], ModelManifest],
    version: str | None = None,
) -> tuple[ModelManifest, bool]:
    """The manifest ``source`` is published as, and whether the store already holds exactly that.

    ``versions`` are the model's versions, sorted; ``existing(v)`` reads one's manifest.
    """
    if version is None:
        newest = existing(versions[-1]) if versions else None
        if newest is not None and _same(newest, source):
            return newest, True
        target = str(int(versions[-1]) + 1) if versions else "1"
    else:
        target = check_version(version)
        if target in versions:
            current = existing(target)
            if _same(current, source):
                return current, True
            raise InvalidInput(
                f"model '{source.name}' version {target} is already published with {_difference(current, source)}; "
                f"versions are immutable: publish it without a version to make version {int(versions[-1]) + 1}",
                param="version",
            )
    return ModelManifest.model_validate({**source.model_dump(), "version": target}), False


def _same(current: ModelManifest, source: ModelManifest) -> bool:
    return current == source.model_copy(update={"version": current.version})


def _difference(current: ModelManifest, source: ModelManifest) -> str:
    ours = {f.path: f.sha256 for f in source.files}
    theirs = {f.path: f.sha256 for f in current.files}
    changed = sorted(path for path in ours.keys() | theirs.keys() if ours.get(path) != theirs.get(path))
    if changed:
        return "different files (" + ", ".join(changed) + ")"
    return "the same files but a different manifest"


def parse_aliases(raw: bytes, where: str) -> ModelAliases:
    try:
        return ModelAliases.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ModelLoadError(f"{where}: invalid aliases document: {problems}") from None


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
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        found = [p.name for p in model_dir.iterdir() if p.name.isdigit() and (p / MANIFEST_FILE).is_file()]
        return sorted(found, key=int)

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
