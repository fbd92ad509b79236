"""Owner-only local state: folders 0700 and files 0600, for what no other local user may read.

The metering database (every tenant's usage, the hashes of every key) and tenants' uploaded files live in the
state folder. Folders are made 0700 and files created 0600 from the start, so they are never readable by
others, not even for an instant; existing ones with a looser mode (an older AI Mass made them 0755 and 0644)
are tightened. Only what this user owns is changed: a state folder put in a shared place (``/tmp`` itself,
say) is left to its owner.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path) -> None:
    """``folder`` (and its missing parents) made, and it tightened to 0700."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    tighten(folder, FOLDER_MODE)


def new_private_file(path: Path) -> BinaryIO:
    """A new file at ``path``, created 0600, open for writing; FileExistsError if there is one."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb")


def tighten(path: Path, allowed: int) -> None:
    """Take away every permission bit outside ``allowed``, if ``path`` exists and is this user's."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == os.geteuid() and mode & ~allowed:
        os.chmod(path, mode & allowed)
