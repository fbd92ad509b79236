"""The local state folder and the SQLite metering database, kept owner-only.

The database holds every tenant's usage and the hashes of every key, so no other local user may read it: the
state folder is made 0700 and the database 0600, and both are tightened when they already exist with a
looser mode (an older AI Mass created them 0755 and 0644). Both SQLite stores call ``private_database``
before they connect.

The database file is created 0600 before SQLite opens it, so it is never readable by others, not even for an
instant; SQLite gives the journal files it makes beside it (``-wal``, ``-shm``, ``-journal``) the database
file's mode, and journals left from before are tightened here. Only what this user owns is changed: a state
folder put in a shared place (``/tmp`` itself, say) is left to its owner.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
JOURNALS = ("-wal", "-shm", "-journal")


def private_database(path: Path) -> None:
    """Make ``path``'s folder 0700 and the database and its journals 0600, creating the folder and file if need be."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):  # SQLite takes an empty file for a new database
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in JOURNALS)):
        _tighten(file, FILE_MODE)


def private_folder(folder: Path) -> None:
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _tighten(folder, FOLDER_MODE)


def _tighten(path: Path, allowed: int) -> None:
    """Take away every permission bit outside ``allowed``, if ``path`` exists and is this user's."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == os.geteuid() and mode & ~allowed:
        os.chmod(path, mode & allowed)
