"""COPY, replayed: files and directories from the build context into the payload, as Docker lays them out."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aimass_tools.packaging.dockerignore import Rule, is_ignored
from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.layout import MODEL_STORE_PREFIX
from aimass_tools.packaging.steps import Copy


@dataclass(frozen=True)
class Sources:
    """Where COPY sources come from: the build context, with model_store/ optionally elsewhere."""

    context: Path
    model_store: Path | None
    ignore: list[Rule]

    def resolve(self, source: str) -> Path:
        relative = PurePosixPath(source.lstrip("/"))
        if self.model_store is not None and relative.parts[:1] == (MODEL_STORE_PREFIX,):
            return self.model_store.joinpath(*relative.parts[1:])
        return self.context.joinpath(*relative.parts)


def copy_step(step: Copy, out: Path, sources: Sources, where: str) -> None:
    for source in step.sources:
        origin = sources.resolve(source)
        logical = PurePosixPath(source.lstrip("/"))
        if not origin.exists() or is_ignored(logical, sources.ignore):
            raise PackagingError(f"{where}: COPY source {source!r} is not in the build context ({origin})")
        target = out / step.dest
        if origin.is_file():
            target = target / origin.name if step.into_dir else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
        else:
            _copy_tree(origin, logical, target, sources.ignore)


def _copy_tree(origin: Path, logical: PurePosixPath, target: Path, ignore: Sequence[Rule]) -> None:
    # Docker copies a directory's contents into the destination, minus what .dockerignore excludes
    # (__pycache__ and *.pyc among them).
    for file in sorted(p for p in origin.rglob("*") if p.is_file()):
        relative = file.relative_to(origin)
        if is_ignored(logical / relative.as_posix(), ignore):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target / relative)
