"""Model files as paths that never touch a disk, for engines that open their files by name.

ONNX Runtime takes a graph's bytes, but most engines (PocketSphinx among them) open their files by path. A
version's files are read through ``ModelArtifact.read`` (checked against their sha256 and, when sealed,
decrypted in memory), each is written into an anonymous in-memory file (``memfd_create``), and the engine is
given ``/proc/self/fd/<n>``: decrypted bytes never reach a disk, and the files vanish with the process.
Close them once the engine has read them: what it keeps (its own copy, or a mapping) stays valid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType

from aimass.errors import ModelLoadError


class MemoryFiles:
    """In-memory files by key, each opened by path (``paths``); closed by ``close`` or on leaving ``with``."""

    def __init__(self, contents: Mapping[str, Callable[[], bytes]], *, label: str) -> None:
        if not hasattr(os, "memfd_create"):
            raise ModelLoadError(f"{label}: its engine reads files by path, and in-memory files need Linux")
        self._fds: list[int] = []
        self.paths: dict[str, str] = {}
        try:
            for key, read in contents.items():
                # One file read at a time: a file's bytes are released once the in-memory file holds them.
                self.paths[key] = self._write(key, read())
        except BaseException:
            self.close()
            raise

    def _write(self, key: str, data: bytes) -> str:
        fd = os.memfd_create(key, os.MFD_CLOEXEC)
        self._fds.append(fd)
        view = memoryview(data)
        while view:  # os.write may write less than it is given
            view = view[os.write(fd, view) :]
        return f"/proc/self/fd/{fd}"

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.pop())
        self.paths = {}

    def __enter__(self) -> MemoryFiles:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
