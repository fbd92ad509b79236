"""A folder with a manifest, offered for import: checked as a function would load it, before it is published.

Such a folder is a version already described (a model build's output, an export pipeline's), of any domain; the
import holds it to the same rules as a bare graph where it has one (ONNX, opsets and operators, memory) and then
loads it with its domain's runtime and runs its validation samples, where this process has that runtime.
"""

from __future__ import annotations

from pathlib import Path

from aimass.errors import ModelLoadError, UnsupportedModel
from aimass.importing.graph import read_graph
from aimass.importing.memory import check_memory
from aimass.importing.support import check_support
from aimass.serving.domains import runtime_class
from aimass.serving.session import SessionFactory
from aimass.serving.validation import validate
from aimass.store.base import ModelArtifact
from aimass.store.manifest import ModelManifest, read_manifest, verify_files


def check_folder(
    folder: Path, sessions: SessionFactory, *, memory_limit_mb: int | None = None
) -> tuple[ModelManifest, str]:
    """The folder's manifest once every check passed, and how far the checks went (for the operator)."""
    try:
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
    except ModelLoadError as exc:
        raise UnsupportedModel(f"folder {folder}: {exc.message}", param="file") from None
    what = f"'{manifest.engine.file}' of {folder}"
    check_memory(sum(entry.size for entry in manifest.files), memory_limit_mb, what=what)
    if manifest.engine.format == "onnx" and manifest.encryption is None:
        info = read_graph((folder / manifest.engine.file).read_bytes(), what=what)
        check_support(info, what=what)
    try:
        cls = runtime_class(manifest.domain, manifest.engine.format)
    except ModelLoadError as exc:
        return manifest, f"files verified; not loaded here ({exc.message})"
    if manifest.encryption is not None:
        return manifest, "files verified; encrypted, so not loaded here (the functions decrypt it in memory)"
    try:
        runtime = cls(ModelArtifact(manifest=manifest, directory=folder), sessions)
        runtime.load()
        validate(runtime)
    except ModelLoadError as exc:
        raise UnsupportedModel(f"folder {folder} cannot serve: {exc.message}", param="file") from None
    samples = "validation samples passed" if manifest.validation else "it has no validation samples"
    return manifest, f"files verified, loaded by the {manifest.domain} runtime, {samples}"
