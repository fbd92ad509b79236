"""The model store: where model versions live, laid out as ``<name>/<version>/`` beside ``<name>/aliases.json``.

Serving code reads a store through ``ModelStore`` and never knows where the bytes came from; the operator
CLI writes through ``WritableModelStore``. This module holds the interface and the rules every backend
shares: which version a publish becomes, and when a publish is a no-op or refused. ``aimass.store.local``
is the local-directory backend (the default, and the layout baked into function images), ``aimass.store.s3``
the S3 backend; ``aimass.store.factory.open_store`` picks one from the settings.

Versions are immutable: once ``<name>/<version>`` holds files, publishing other bytes under that number is
refused, and publishing the same bytes again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import ValidationError

from aimass.errors import DecryptionError, InvalidInput, ModelLoadError
from aimass.store.aliases import ModelAliases
from aimass.store.layout import sha256_beside
from aimass.store.manifest import (
    FileEntry,
    ModelManifest,
    check_digest,
)

# Called as bytes move: (the file's path in the version, bytes just moved, the file's size).
ProgressCallback = Callable[[str, int, int], None]
Used = TypeVar("Used")
# Files from this size are hashed on a thread beside their first use (``ModelArtifact.use``): below it a
# thread costs more than it hides.
HASH_BESIDE_BYTES = 1 << 20


class Unsealer(Protocol):
    """Decrypts one file of an encrypted version in memory (``aimass.store.sealing.unseal``)."""

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
        return self._plain(relative, entry, data)

    def use(self, relative: str, use: Callable[[bytes], Used]) -> Used:
        """``use`` of the file's bytes, returned once their sha256 matched, as ``use(self.read(relative))``.

        A large file of a version that is not encrypted is hashed on a thread while ``use`` runs (hashlib and
        ONNX Runtime's session building release the GIL): a model's load no longer waits for its hash, which
        took a third of a 90 MB graph's load. The hash decides first: bytes that do not match raise the
        store's integrity error, whatever ``use`` made of them or raised.
        """
        if self.manifest.encryption is not None:  # the digest is the ciphertext's: decrypt first
            return use(self.read(relative))
        entry = self.manifest.file(relative)
        path = self.directory / relative
        data = path.read_bytes()
        if len(data) < HASH_BESIDE_BYTES:
            check_digest(path, entry, hashlib.sha256(data).hexdigest())
            return use(data)
        digest = sha256_beside(data)
        try:
            used = use(data)
        except BaseException:
            check_digest(path, entry, digest.result())  # raises the integrity error instead, where the bytes differ
            raise
        check_digest(path, entry, digest.result())
        return used

    def _plain(self, relative: str, entry: FileEntry, data: bytes) -> bytes:
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
