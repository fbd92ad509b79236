"""API keys made as an operator makes them: ``aimass keys create`` over a local state folder's key store."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from aimass.metering.keys import parse
from aimass_tools.cli import app as cli

_CLEAR_KEY = re.compile(r"am_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def state_environment(state_dir: Path) -> dict[str, str]:
    """The settings of a process metering on SQLite in ``state_dir`` (its keys and usage)."""
    return {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(state_dir)}


def cli_key(state_dir: Path, tenant: str, scopes: str) -> str:
    """A key of ``tenant`` with ``scopes`` (comma-separated), made by the CLI in ``state_dir``'s key store; its
    clear text, as the command prints it once."""
    env = {**state_environment(state_dir), "COLUMNS": "200"}  # one line per printed value
    made = CliRunner().invoke(cli, ["keys", "create", "--tenant", tenant, "--scopes", scopes], env=env)
    assert made.exit_code == 0, made.output
    found = _CLEAR_KEY.search(made.output)
    assert found is not None and parse(found[0]) is not None, made.output
    return found[0]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
