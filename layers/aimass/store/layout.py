"""A store's layout on disk, with the standard library alone: ``<name>/<version>/manifest.json`` beside
``<name>/aliases.json``, and which folders of a model are its versions.

Read by the local store and, before pydantic or the store's other modules are imported, by a cold start's head
start (``aimass.serving.head_start``): one rule for both.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from pathlib import Path

MANIFEST_FILE = "manifest.json"
ALIASES_FILE = "aliases.json"


def version_names(model_dir: Path) -> list[str]:
    """The versions of the model at ``model_dir``: its folders named by a number that hold a manifest, in order."""
    if not model_dir.is_dir():
        return []
    found = [p.name for p in model_dir.iterdir() if p.name.isdigit() and (p / MANIFEST_FILE).is_file()]
    return sorted(found, key=int)


def sha256_beside(data: bytes) -> Future[str]:
    """The hex sha256 of ``data``, computed on a thread of its own: hashlib releases the GIL over a large buffer,
    so a model's graph is hashed while its session is built from the same bytes. A failure is the result's."""
    digest: Future[str] = Future()

    def run() -> None:
        try:
            digest.set_result(hashlib.sha256(data).hexdigest())
        except BaseException as exc:  # handed to the caller of result()
            digest.set_exception(exc)

    threading.Thread(target=run, name="aimass-sha256", daemon=True).start()
    return digest
