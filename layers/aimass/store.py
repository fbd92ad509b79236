"""The model store: where built model versions live, laid out as ``<root>/<name>/<version>/``.

This is the local-directory backend. Every backend answers the same questions (which models, which versions,
where is a verified copy of this version) so that serving code never knows where the bytes came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aimass.errors import ModelLoadError, NotFound
from aimass.manifest import MANIFEST_FILE, ModelManifest, read_manifest, verify_files


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model version on local disk."""

    manifest: ModelManifest
    directory: Path

    def path(self, relative: str) -> Path:
        self.manifest.file(relative)  # refuses files the manifest does not vouch for
        return self.directory / relative


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
        verify_files(directory, manifest)
        return ModelArtifact(manifest=manifest, directory=directory)
