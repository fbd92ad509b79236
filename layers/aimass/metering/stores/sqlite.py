"""The local metering database: one SQLite file in the state folder, kept owner-only, for keys and usage alike.

Both SQLite stores (``keys_sqlite``, ``usage_sqlite``) keep their tables in ``<state_dir>/metering.db``
(``METERING_DB``), call ``private_database`` before they connect and connect with ``connect``: autocommit
mode (every transaction is opened and closed explicitly, or is one statement), WAL so that readers run beside
a writer, and a busy timeout so that concurrent writers, from threads or processes, wait for each other
instead of failing. ``Database`` is one connection shared by threads under a lock, with write transactions.

The database holds every tenant's usage and the hashes of every key, so no other local user may read it: the
state folder is made 0700 and the database 0600, and both are tightened when they already exist with a
looser mode (``aimass.private``).

The database file is created 0600 before SQLite opens it, so it is never readable by others, not even for an
instant; SQLite gives the journal files it makes beside it (``-wal``, ``-shm``, ``-journal``) the database
file's mode, and journals left from before are tightened here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aimass.metering.usage import Unavailable
from aimass.private import FILE_MODE, private_folder, tighten

T = TypeVar("T")

METERING_DB = "metering.db"
JOURNALS = ("-wal", "-shm", "-journal")


def private_database(path: Path) -> None:
    """Make ``path``'s folder 0700 and the database and its journals 0600, creating the folder and file if need be."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):  # SQLite takes an empty file for a new database
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in JOURNALS)):
        tighten(file, FILE_MODE)


def connect(path: Path, *, busy_timeout_ms: int, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection to the database at ``path`` in autocommit mode, WAL, waiting ``busy_timeout_ms`` for locks."""
    connection = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=check_same_thread
    )
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    connection.execute("PRAGMA journal_mode = WAL")
    return connection


class Database:
    """One connection to the metering database, shared by this object's threads under a lock.

    The lock only keeps one connection's statements apart; what makes a charge atomic across processes is
    the conditional UPDATE inside a ``BEGIN IMMEDIATE`` transaction (SQLite's write lock). A subclass names
    the tables it keeps in ``schema``, created if missing. Errors are ``Unavailable`` naming the database.
    """

    schema = ""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            private_database(path)  # every tenant's usage and the key hashes: owner-only
            self._connection = connect(path, busy_timeout_ms=busy_timeout_ms, check_same_thread=False)
            # In WAL mode a commit survives a process crash without an fsync per commit.
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._connection.executescript(self.schema)
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(f"metering database {path}: {exc}") from exc

    def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Run the statements in one write transaction; the row count of the last one."""

        def run(db: sqlite3.Connection) -> tuple[bool, int]:
            rowcount = 0
            for sql, parameters in statements:
                rowcount = db.execute(sql, parameters).rowcount
            return True, rowcount

        return self.transact(run)

    def transact(self, body: Callable[[sqlite3.Connection], tuple[bool, T]]) -> T:
        """Run ``body`` in one write transaction; it returns (commit?, result): False rolls everything back."""
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    commit, result = body(self._connection)
                    self._connection.execute("COMMIT" if commit else "ROLLBACK")
                except BaseException:
                    # SQLite rolls some failures back itself; a second ROLLBACK would hide the first error.
                    if self._connection.in_transaction:
                        self._connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise Unavailable(f"metering database {self.path}: {exc}") from exc
        return result

    def read(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise Unavailable(f"metering database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()
