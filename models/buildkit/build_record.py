"""The build record: what a built model version is, committed beside its build as ``record.json``.

A model card's figures are rendered from this file (``models.buildkit.card``), so every figure a card states
was written by a script. The record holds:

- the version's manifest, as the build sealed it (every key at the top level: ``quality``, ``files`` with
  sizes and sha256, ``engine``, ``source`` with the framework versions it names, ``created_at``);
- ``build``: what the build reported beyond the manifest (its time and the machine), from the report
  ``publish`` writes beside the version directory (``<store>/<name>/.<version>.build.json``, hidden like the
  build lock, so no image copies it), or null where the version was built before builds reported it;
- ``constants``: the constants the build's own modules set, by module (``constants.spec.SEED``,
  ``constants.train.EPOCHS``; a settings dataclass as its fields' defaults, ``constants.train.PPOConfig.gamma``):
  the seeds, gates, sizes and training settings it ran with, as they are when
  the record is written (every module beside ``build.py`` imports its heavy packages inside functions, so
  reading them is cheap);
- ``recorded_at``.

The report sits beside the version directory, not in it, because a version directory holds exactly the
files its manifest lists, and a build's time is not part of the model: two builds of the same version give
the same files but different times.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.buildkit.errors import BuildError
from models.buildkit.record import timestamp
from models.catalogue import CatalogueEntry, catalogue

RECORD_FILE = "record.json"
_RESERVED = ("recorded_at", "build", "constants")


def report_path(store: Path, name: str, version: str) -> Path:
    return store / name / f".{version}.build.json"


def this_machine() -> dict[str, Any]:
    """What a trained model's bytes depend on beyond its code and seeds: the CPU (its kernels' instruction set
    and reduction order), how many, and the platform."""
    return {
        "system": platform.system(),
        "architecture": platform.machine(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    """The CPU's model name, as Linux reports it (what the bench records and build reports name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_build_report(store: Path, name: str, version: str, *, seconds: float) -> Path:
    """Called by ``publish`` once a version is in place: the build's time and the machine it ran on."""
    path = report_path(store, name, version)
    report = {
        "built_at": timestamp(),
        "seconds": round(seconds, 1),
        "machine": this_machine(),
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def entry_for(model_dir: Path) -> CatalogueEntry:
    """The catalogue's entry for ``models/<domain>/<model>/``."""
    wanted = model_dir.resolve()
    for entry in catalogue():
        if entry.build_script.parent.resolve() == wanted:
            return entry
    raise BuildError(f"{model_dir} is not a catalogued model directory (one with build.py and spec.py)")


def make_record(model_dir: Path, store: Path) -> dict[str, Any]:
    entry = entry_for(model_dir)
    version_dir = store / entry.name / entry.version
    manifest_path = version_dir / "manifest.json"
    if not manifest_path.is_file():
        raise BuildError(
            f"{entry.name} v{entry.version} is not built in {store}; build it first: python {entry.build_script}"
        )
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    clash = [key for key in _RESERVED if key in manifest]
    if clash:
        raise BuildError(f"{manifest_path} has keys the record reserves for itself: {clash}")
    report_file = report_path(store, entry.name, entry.version)
    report = json.loads(report_file.read_text()) if report_file.is_file() else None
    # The report is only this version's if it was written after the manifest it describes.
    if report is not None and report.get("built_at", "") < manifest.get("created_at", ""):
        report = None
    return {
        **manifest,
        "build": report,
        "constants": {module.stem: module_constants(model_dir, module.stem) for module in _modules(model_dir)},
        "recorded_at": timestamp(),
    }


def write_record(model_dir: Path, store: Path) -> Path:
    path = model_dir / RECORD_FILE
    record = make_record(model_dir, store)
    # recorded_at dates what the record says: a record that would say the same again keeps its date.
    if path.is_file():
        old = json.loads(path.read_text())
        if {**old, "recorded_at": None} == {**record, "recorded_at": None}:
            return path
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def _modules(model_dir: Path) -> list[Path]:
    # build.py sets the process up for training (thread settings before torch loads): it is run, not read.
    return sorted(path for path in model_dir.glob("*.py") if path.name not in ("build.py", "__init__.py"))


def module_constants(model_dir: Path, module: str) -> dict[str, Any]:
    """A module's public UPPER_CASE constants that JSON can hold; a range becomes its first, last and count."""
    models_root = Path(__file__).resolve().parents[1]
    parts = model_dir.resolve().relative_to(models_root).parts
    namespace = vars(importlib.import_module(".".join(("models", *parts, module))))
    constants: dict[str, Any] = {}
    for key, value in namespace.items():
        public = not key.startswith("_") and key != "TYPE_CHECKING"
        if public and key.isupper() and (plain := _plain(value)) is not None:
            constants[key] = plain
        elif public and isinstance(value, type) and dataclasses.is_dataclass(value) and _defined_in(value, namespace):
            # A settings dataclass (training hyperparameters): its defaults are the values the build runs with.
            defaults = {field.name: _plain(field.default) for field in dataclasses.fields(value)}
            constants[key] = {name: default for name, default in defaults.items() if default is not None}
    return constants


def _defined_in(cls: type, namespace: Mapping[str, Any]) -> bool:
    return bool(cls.__module__ == namespace["__name__"])


def _plain(value: object) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, range):
        return {"first": value[0], "last": value[-1], "count": len(value)} if value else None
    if isinstance(value, tuple | list):
        items = [_plain(item) for item in value]
        return items if all(item is not None for item in items) else None
    if isinstance(value, Mapping):
        pairs = {str(key): _plain(item) for key, item in value.items()}
        return pairs if all(item is not None for item in pairs.values()) else None
    return None
