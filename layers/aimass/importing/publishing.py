"""An imported version into the store: the next version, unless the newest already holds exactly this import.

An import stamps its manifest with the time, so the store's own rule (publishing the bytes the newest version
holds is a no-op) would never hold for a retried import; here the time is left out of the comparison, so a
pipeline that sends the same checkpoint twice (a retry after a timeout) gets the version it made the first
time, not a copy.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from aimass.errors import InvalidInput
from aimass.store.base import ProgressCallback, WritableModelStore
from aimass.store.manifest import ModelManifest


def publish_imported(
    store: WritableModelStore,
    work: Path,
    manifest: ModelManifest,
    *,
    progress: ProgressCallback | None = None,
    reserved: Collection[str] = (),
) -> tuple[ModelManifest, bool]:
    """The published version's manifest, and whether it is new (False: the newest version is this import).

    A name in ``reserved`` (a model another function serves) or of a model of another domain is refused: an import
    never becomes a version of a model it is not."""
    name = manifest.name
    if name in reserved:
        raise InvalidInput(f"model name '{name}' is a catalogued model served by another function; choose another")
    versions = store.versions(name)
    if versions:
        newest = store.manifest(name, versions[-1])
        if newest.domain != manifest.domain or newest.tenant != manifest.tenant:
            owner = f"the {newest.domain} domain" + (f", for tenant {newest.tenant}" if newest.tenant else "")
            raise InvalidInput(
                f"model '{name}' exists, served by {owner}: an import may add versions only to a model it imported "
                "for the same tenants; choose another name",
                param="name",
            )
        if newest.model_copy(update={"created_at": manifest.created_at}) == manifest.model_copy(
            update={"version": newest.version}
        ):
            return newest, False
    return store.publish(work, progress=progress), True
