"""Putting a model version into the store: the up-to-date check, one build at a time, an atomic swap.

``make serve`` and the tests call a build on every run, so the up-to-date check reads only the manifest
and hashes the files it lists; it must never import a framework. A build writes into a temporary
directory beside the version and renames it into place only once every check has passed, so a failed or
killed build leaves the store as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aimass.errors import ModelLoadError
from aimass.store.local import model_lock
from aimass.store.manifest import read_manifest, verify_files
from models.buildkit.build_record import write_build_report
from models.buildkit.steps import console


def publish(store: Path, name: str, version: str, build_into: Callable[[Path], None], *, force: bool = False) -> Path:
    """Build ``name`` v``version`` into ``store`` unless it is already there; return the version directory.

    ``build_into(work)`` writes every file of the version into the empty directory ``work`` and raises
    BuildError if a check fails.
    """
    store = Path(store)
    model_root = store / name
    final = model_root / version
    if not force and is_up_to_date(final, name, version):
        console.print(f"{name} v{version}: up to date in {final}")
        return final

    # One writer per model at a time, builds and the store's own publishes alike: concurrent ones would race
    # on the final rename.
    with model_lock(model_root):
        # Another process (a parallel test worker, `make serve`) may have finished the build while we waited.
        if not force and is_up_to_date(final, name, version):
            console.print(f"{name} v{version}: up to date in {final} (built by another process)")
            return final
        _remove_leftovers(model_root)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=model_root))
        try:
            started = time.perf_counter()
            build_into(work)
            _swap_into_place(work, final)
            seconds = time.perf_counter() - started
            # The model card cites the build's time from this report (record.json takes it from here).
            write_build_report(store, name, version, seconds=seconds)
        finally:
            # After a successful swap `work` no longer exists; after a failure this removes the half-build.
            shutil.rmtree(work, ignore_errors=True)
    console.print(f"{name} v{version}: built in {seconds:.1f} s into {final}")
    return final


def is_up_to_date(version_dir: Path, name: str, version: str) -> bool:
    """A version is up to date when its manifest is valid, names this model, and every file checks out."""
    try:
        manifest = read_manifest(version_dir)
        if manifest.name != name or manifest.version != version:
            return False
        verify_files(version_dir, manifest)
    except ModelLoadError:
        return False
    return True


def _remove_leftovers(model_root: Path) -> None:
    # Temp dirs of builds that were killed outright; safe to delete because we hold the build lock.
    for leftover in [*model_root.glob(".build-*"), *model_root.glob(".old-*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(work: Path, final: Path) -> None:
    # rename() is atomic but will not replace a non-empty directory, so an old version moves aside first.
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        final.rename(old)
    work.chmod(0o755)  # mkdtemp makes it private; the server may run as another user (a container image)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
