"""The development key ``make serve`` prints: one admin key for the local tenant ``dev``, kept between runs.

The clear key lives in ``<state_dir>/dev-key`` (owner-only, like the rest of the state folder, which git
ignores) so every run prints the same key and the README's examples keep working. A key in that file that
no longer checks out (revoked, expired, the database deleted, or on another plan) is replaced by a new one.

The key is on the ``development`` plan, which has no request rate limit (the monthly quota still applies):
the local server adds that plan to its own (``with_development_plan``). Real plans are tried locally with
keys made on them (``aimass keys create --plan default``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aimass.contract import DEVELOPMENT_PLAN, DEVELOPMENT_PLAN_TERMS
from aimass.metering.key_admin import create_key
from aimass.metering.keys import matches, parse
from aimass.metering.stores.key_factory import open_key_store
from aimass.private import new_private_file, private_folder
from aimass.settings import Plan, Settings

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
            if record.plan == DEVELOPMENT_PLAN:
                return kept, False
            store.revoke(record.key_id, now)  # made on a plan with a rate limit: replaced, not left valid
    issued = create_key(
        store,
        tenant=TENANT,
        scopes=("invoke", "admin"),
        plan=DEVELOPMENT_PLAN,
        plans=settings.plans,
        description="local development key (make serve)",
        now=now,
    )
    _write_private(path, issued.clear_text)
    return issued.clear_text, True


def with_development_plan(settings: Settings) -> Settings:
    """The settings with the development key's plan added (a plan of that name already set is kept)."""
    if DEVELOPMENT_PLAN in settings.plans:
        return settings
    plans = {**settings.plans, DEVELOPMENT_PLAN: Plan.model_validate(dict(DEVELOPMENT_PLAN_TERMS))}
    return settings.model_copy(update={"plans": plans})


def _write_private(path: Path, text: str) -> None:
    private_folder(path.parent)
    scratch = path.with_suffix(".tmp")
    scratch.unlink(missing_ok=True)
    with new_private_file(scratch) as stream:
        stream.write((text + "\n").encode())
    scratch.replace(path)
