"""The development key ``make serve`` prints: one admin key for the local tenant ``dev``, kept between runs.

The clear key lives in ``<state_dir>/dev-key`` (owner-only, like the rest of the state folder, which git
ignores) so every run prints the same key and the README's examples keep working. A key in that file that
no longer checks out (revoked, expired, the database deleted) is replaced by a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aimass.metering.key_admin import create_key
from aimass.metering.keys import matches, parse
from aimass.metering.stores.key_factory import open_key_store
from aimass.private import new_private_file, private_folder
from aimass.settings import Settings

TENANT = "dev"
FILE = "dev-key"


def development_key(settings: Settings) -> tuple[str, bool]:
    """(the key, whether it was created now)."""
    store = open_key_store(settings)
    path = settings.state_dir / FILE
    now = datetime.now(UTC)
    if path.is_file():
        kept = path.read_text().strip()
        parsed = parse(kept)
        record = store.get(parsed[0]) if parsed else None
        if parsed and record is not None and matches(record, parsed[1]) and record.valid_at(now):
            return kept, False
    issued = create_key(
        store,
        tenant=TENANT,
        scopes=("invoke", "admin"),
        plan="default",
        plans=settings.plans,
        description="local development key (make serve)",
        now=now,
    )
    _write_private(path, issued.clear_text)
    return issued.clear_text, True


def _write_private(path: Path, text: str) -> None:
    private_folder(path.parent)
    scratch = path.with_suffix(".tmp")
    scratch.unlink(missing_ok=True)
    with new_private_file(scratch) as stream:
        stream.write((text + "\n").encode())
    scratch.replace(path)
