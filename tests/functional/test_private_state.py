"""The local state is owner-only: the app makes the state folder 0700 and the metering database 0600, and
tightens them (journals included) when an older run left them open to other local users."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from aimass.http.app import build_app
from aimass.settings import Settings
from aimass.store.sealing.keys import LocalKeyProvider

DATABASE = "metering.db"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def settings_in(state: Path, tiny_store: Path) -> Settings:
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=state)


def test_the_app_creates_the_state_owner_only(tiny_store: Path, tmp_path: Path) -> None:
    # GIVEN a umask that would leave new files readable by everyone
    state = tmp_path / "state"
    previous = os.umask(0o022)
    try:
        # WHEN the app opens its metering database in a new state folder
        build_app(settings_in(state, tiny_store))
        master = LocalKeyProvider.create_or_open(state / "master.key")
    finally:
        os.umask(previous)
    # THEN only the owner can read the folder and the database, as the master key beside them
    assert mode(state) == 0o700
    database = state / DATABASE
    assert mode(database) == 0o600
    for journal in state.glob(f"{DATABASE}-*"):
        assert mode(journal) == 0o600, journal
    assert mode(master.path) == 0o600


def test_the_app_tightens_state_left_open_by_an_older_run(tiny_store: Path, tmp_path: Path) -> None:
    # GIVEN a state folder 0755 and a database with its WAL journals 0644, open in another connection
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    older = sqlite3.connect(state / DATABASE)
    try:
        older.execute("PRAGMA journal_mode = WAL")
        older.execute("CREATE TABLE leftover (x)")
        files = [state / DATABASE, state / f"{DATABASE}-wal", state / f"{DATABASE}-shm"]
        for file in files:
            file.chmod(0o644)
        # WHEN the app opens it
        build_app(settings_in(state, tiny_store))
        # THEN the folder is 0700 and every database file 0600
        assert mode(state) == 0o700
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
    finally:
        older.close()
