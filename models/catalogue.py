"""The model catalogue: every model this repository builds, found from source, without importing or building.

Each model lives in ``models/<domain>/<model>/`` with a ``build.py`` and a ``spec.py`` that assigns
``NAME`` and ``VERSION`` as string literals. The local tooling builds from this list and the CDK app
routes from it, so a new model directory is picked up by both with no list to edit.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

MODELS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CatalogueEntry:
    domain: str
    name: str
    version: str
    build_script: Path


class CatalogueError(Exception):
    """A model directory does not say what it builds."""


def catalogue(root: Path = MODELS) -> list[CatalogueEntry]:
    entries = [_entry(spec.parent, root) for spec in sorted(root.glob("*/*/spec.py")) if _is_model(spec.parent)]
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CatalogueError(f"model names must be unique across domains: {duplicates} appear more than once")
    return entries


def domains(root: Path = MODELS) -> list[str]:
    return sorted({entry.domain for entry in catalogue(root)})


def _is_model(directory: Path) -> bool:
    return (directory / "build.py").is_file()


def _entry(directory: Path, root: Path) -> CatalogueEntry:
    spec = directory / "spec.py"
    constants: dict[str, str] = {}
    for node in ast.parse(spec.read_text(), str(spec)).body:
        match node:
            case ast.Assign(targets=[ast.Name(id=key)], value=ast.Constant(value=str() as value)):
                constants[key] = value
    missing = [key for key in ("NAME", "VERSION") if key not in constants]
    if missing:
        raise CatalogueError(f"{spec}: assign {' and '.join(missing)} as string literals")
    return CatalogueEntry(
        domain=directory.relative_to(root).parts[0],
        name=constants["NAME"],
        version=constants["VERSION"],
        build_script=directory / "build.py",
    )
