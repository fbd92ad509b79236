"""Checking a build's reproducibility claim: rebuild a model into a scratch store and compare every file's hash.

    python -m models.buildkit.reproduce <model name> [--store model_store] [--keep DIR]

Rebuilds the catalogued model (``models/catalogue.py``) with its own ``build.py`` into an empty scratch store
and compares each file its manifest lists (sha256, as the manifest records it) with the version in
``--store``. The manifest itself is not compared byte for byte: it carries ``created_at`` and the figures a
build measures against the clock (training and build seconds, decode rate). Exits 0 when every listed file
is identical, 1 otherwise; prints which differ, and the manifest's ``quality`` entries that differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimass.store.manifest import read_manifest
from models.buildkit.cli import DEFAULT_STORE
from models.buildkit.errors import BuildError
from models.buildkit.steps import console
from models.catalogue import CatalogueEntry, catalogue


@dataclass(frozen=True)
class Comparison:
    """Two builds of one model version: the files whose hashes differ and the quality entries that differ."""

    files: dict[str, tuple[str, str]]  # path -> (sha256 in the first, sha256 in the second); "-" where absent
    quality: list[str]  # dotted keys of manifest.quality whose values differ
    seconds: float = 0.0  # how long the rebuild took

    @property
    def identical(self) -> bool:
        return not self.files


def compare(first: Path, second: Path) -> Comparison:
    """Compare two version directories of one model by their manifests' file hashes and quality."""
    a, b = read_manifest(first), read_manifest(second)
    if (a.name, a.version) != (b.name, b.version):
        raise BuildError(f"{first} holds {a.name} v{a.version}, {second} holds {b.name} v{b.version}")
    hashes_a = {entry.path: entry.sha256 for entry in a.files}
    hashes_b = {entry.path: entry.sha256 for entry in b.files}
    files = {
        path: (hashes_a.get(path, "-"), hashes_b.get(path, "-"))
        for path in sorted(hashes_a.keys() | hashes_b.keys())
        if hashes_a.get(path) != hashes_b.get(path)
    }
    return Comparison(files=files, quality=_differing(a.quality, b.quality))


def rebuild_and_compare(entry: CatalogueEntry, reference: Path, scratch: Path) -> Comparison:
    """Build ``entry`` into the empty store ``scratch`` and compare it with the version directory ``reference``."""
    started = time.perf_counter()
    built = load_build(entry).build(scratch, force=True)
    seconds = time.perf_counter() - started
    comparison = compare(reference, built)
    return Comparison(files=comparison.files, quality=comparison.quality, seconds=seconds)


def load_build(entry: CatalogueEntry) -> Any:
    """A model's build.py as a fresh module (build scripts are loaded by path; models/ is not a package)."""
    name = f"reproduce_{entry.domain}_{entry.build_script.parent.name}"
    spec = importlib.util.spec_from_file_location(name, entry.build_script)
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot load {entry.build_script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _differing(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(a.keys() | b.keys()):
        left, right = a.get(key), b.get(key)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            keys += _differing(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.append(f"{prefix}{key}")
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("model", help="a catalogued model's name, e.g. tensor-wine")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="the store holding the version to match")
    parser.add_argument("--keep", type=Path, help="build into this directory (kept) instead of a temporary one")
    args = parser.parse_args(argv)
    entries = {entry.name: entry for entry in catalogue()}
    if args.model not in entries:
        parser.error(f"unknown model {args.model!r}; catalogued: {', '.join(sorted(entries))}")
    entry = entries[args.model]
    reference = args.store / entry.name / entry.version
    if not (reference / "manifest.json").is_file():
        parser.error(f"{reference} holds no built version to compare with")
    try:
        if args.keep:
            comparison = rebuild_and_compare(entry, reference, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="reproduce-") as scratch:
                comparison = rebuild_and_compare(entry, reference, Path(scratch))
    except BuildError as exc:
        console.print(f"[red]the rebuild failed:[/red] {exc}")
        return 1
    console.print(f"{entry.name} v{entry.version}: rebuilt in {comparison.seconds:.1f} s")
    for path, (before, after) in comparison.files.items():
        console.print(f"[red]differs:[/red] {path} {before[:12]} -> {after[:12]}")
    if comparison.quality:
        console.print(f"quality entries that differ (clock-bound figures are expected to): {comparison.quality}")
    verdict = "every listed file is byte-identical" if comparison.identical else "NOT reproduced"
    console.print(f"{entry.name} v{entry.version}: {verdict}")
    return 0 if comparison.identical else 1


if __name__ == "__main__":
    sys.exit(main())
