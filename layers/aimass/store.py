"""The model store: where built model versions live, laid out as ``<root>/<name>/<version>/``.

This is the local-directory backend. Every backend answers the same questions (which models, which versions,
where is a verified copy of this version) so that serving code never knows where the bytes came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aimass.errors import ModelLoadError, NotFound
from aimass.manifest import MANIFEST_FILE, FileEntry, ModelManifest, check_digest, check_sizes, read_manifest


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
        if self.unsealer is None:
            raise ModelLoadError(
                f"model '{self.manifest.name}' version {self.manifest.version} is encrypted "
                f"({self.manifest.encryption.key_provider} key) and this process has no key provider configured"
            )
        return self.unsealer.open(self.manifest, entry, data)


class ModelStore(Protocol):
    def model_names(self) -> list[str]: ...

    def versions(self, name: str) -> list[str]: ...

    def fetch(self, name: str, version: str) -> ModelArtifact: ...


class LocalModelStore:
    """Models on local disk; the default, and the layout baked into function images."""

    def __init__(self, root: Path) -> None:
        self.root = root

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

    def fetch(self, name: str, version: str) -> ModelArtifact:
        directory = self.root / name / version
        if not (directory / MANIFEST_FILE).is_file():
            raise NotFound(f"model '{name}' version '{version}' is not in the store at {self.root}")
        manifest = read_manifest(directory)
        if (manifest.name, manifest.version) != (name, version):
            raise ModelLoadError(
                f"{directory / MANIFEST_FILE}: describes '{manifest.name}' version {manifest.version}, "
                f"but lies at '{name}/{version}'"
            )
        check_sizes(directory, manifest)
        return ModelArtifact(manifest=manifest, directory=directory)
