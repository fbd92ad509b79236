"""The local cache of files a remote store fetched, keyed by checksum (``aimass.store.s3`` fills it).

``<root>/blobs/<sha256>`` holds each file once, renamed into place only after its writer is done (the S3
backend checks the digest first), and ``<root>/<name>/<version>/`` holds hard links to the blobs beside the
manifest. A cached blob is reused without a download (its sha256 is checked again as the model reads it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO

from aimass.errors import ModelLoadError
from aimass.store.manifest import ModelManifest, check_sizes, read_manifest, write_manifest


class DownloadCache:
    """A cache directory of blobs by sha256 and version folders linking to them; one per process or shared."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"

    def get(self, sha256: str, size: int) -> Path | None:
        """The cached blob with this digest, if there is one of this size."""
        blob = self.blobs / sha256
        return blob if blob.is_file() and blob.stat().st_size == size else None

    @contextlib.contextmanager
    def put(self, sha256: str) -> Iterator[IO[bytes]]:
        """A stream to write the blob ``sha256`` into: it becomes ``blobs/<sha256>`` only if the block ends
        without an error (the writer checks the digest inside it), and nothing is left behind otherwise."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".part-", dir=self.blobs)
        temporary = Path(name)
        kept = False
        try:
            with os.fdopen(handle, "wb") as stream:
                yield stream
                stream.flush()
                os.fsync(stream.fileno())
            temporary.chmod(0o644)
            os.replace(temporary, self.blobs / sha256)
            kept = True
        finally:
            if not kept:
                temporary.unlink(missing_ok=True)

    def link(self, manifest: ModelManifest) -> Path:
        """``<root>/<name>/<version>/``: hard links to the blobs and the manifest, swapped in whole."""
        final = self.root / manifest.name / manifest.version
        if _holds(final, manifest):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".link-", dir=final.parent))
        try:
            for entry in manifest.files:
                (work / entry.path).parent.mkdir(parents=True, exist_ok=True)
                os.link(self.blobs / entry.sha256, work / entry.path)
            write_manifest(work, manifest)
            work.chmod(0o755)
            if final.exists():  # another bucket's version under this number, or a damaged one
                stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=final.parent))
                final.rename(stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            try:
                work.rename(final)
            except OSError:
                if not _holds(final, manifest):  # else another process linked the same version first
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return final

    def evict(self, name: str, keep: Collection[str]) -> None:
        """Remove cached versions of ``name`` not in ``keep``, then every blob no cached version links to.

        Lambda's /tmp is small (512 MB unless configured), and every new version of a model would otherwise
        stay there. A blob's hard-link count says whether a version directory still uses it.
        """
        model_dir = self.root / name
        if model_dir.is_dir():
            for version_dir in model_dir.iterdir():
                if version_dir.is_dir() and version_dir.name not in keep:
                    shutil.rmtree(version_dir, ignore_errors=True)
        if self.blobs.is_dir():
            for blob in self.blobs.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if blob.is_file() and blob.stat().st_nlink == 1:
                        blob.unlink()


def _holds(directory: Path, manifest: ModelManifest) -> bool:
    try:
        if read_manifest(directory) != manifest:
            return False
        check_sizes(directory, manifest)
    except ModelLoadError:
        return False
    return True
