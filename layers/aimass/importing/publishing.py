"""An imported version into the store: the next version, unless the newest already holds exactly this import.

An import stamps its manifest with the time, so the store's own rule (publishing the bytes the newest version
holds is a no-op) would never hold for a retried import; here the time is left out of the comparison, so a
pipeline that sends the same checkpoint twice (a retry after a timeout) gets the version it made the first
time, not a copy.
"""

from __future__ import annotations

from pathlib import Path

from aimass.store.base import ProgressCallback, WritableModelStore
from aimass.store.manifest import ModelManifest


def publish_imported(
    store: WritableModelStore, work: Path, manifest: ModelManifest, *, progress: ProgressCallback | None = None
) -> tuple[ModelManifest, bool]:
    """The published version's manifest, and whether it is new (False: the newest version is this import)."""
    versions = store.versions(manifest.name)
    if versions:
        newest = store.manifest(manifest.name, versions[-1])
        if newest.model_copy(update={"created_at": manifest.created_at}) == manifest.model_copy(
            update={"version": newest.version}
        ):
            return newest, False
    return store.publish(work, progress=progress), True
