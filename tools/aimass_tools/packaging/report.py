"""The size report, in MiB (the unit of Lambda's limits): the total and where it goes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.util import cache_from_source
from pathlib import Path

from aimass_tools.packaging.layout import ENV_FILE, MODEL_STORE_PREFIX, REPORT_FILE
from aimass_tools.packaging.platform import ARCH
from aimass_tools.packaging.recipe import Recipe
from aimass_tools.packaging.steps import Copy

MIB = 1024 * 1024


@dataclass
class Report:
    function: str
    base_image: str
    platform: str
    total_mb: float
    groups: dict[str, float]  # site-packages, core, function, models
    packages: list[dict[str, str | float]]  # site-packages per distribution, largest first
    seconds: float
    pip_cached: bool


def size_report(function: str, recipe: Recipe, out: Path, seconds: float, pip_cached: bool) -> Report:
    groups = {"site-packages": 0, "core": 0, "function": 0, "models": 0}
    for step in recipe.steps:
        if isinstance(step, Copy) and (out / step.dest).exists():  # the requirements file is gone
            groups[_group(step)] += _size(out / step.dest)
    total = sum(_size(p) for p in out.iterdir() if p.name not in (ENV_FILE, REPORT_FILE))
    # What no COPY put there came from pip.
    groups["site-packages"] = total - sum(groups.values())
    return Report(
        function=function,
        base_image=recipe.base,
        platform=f"{recipe.platform.os}, glibc {'.'.join(map(str, recipe.platform.glibc))}, "
        f"Python {recipe.platform.python}, {ARCH}",
        total_mb=_mb(total),
        groups={name: _mb(size) for name, size in groups.items()},
        packages=_distributions(out),
        seconds=round(seconds, 2),
        pip_cached=pip_cached,
    )


def print_report(report: Report) -> None:
    print(f"{report.function}: {report.total_mb:.1f} MiB payload for {report.base_image} ({report.platform})")
    for name, mb in report.groups.items():
        print(f"  {name:<14} {mb:8.1f} MiB")
    for row in report.packages:
        print(f"    {row['name']:<20} {row['version']:<12} {float(row['mb']):8.1f} MiB")
    cache = "pip step cached" if report.pip_cached else "pip step run"
    print(f"  built in {report.seconds:.1f} s ({cache})")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(size: int) -> float:
    return round(size / MIB, 2)


def _distributions(out: Path) -> list[dict[str, str | float]]:
    """Site-packages per distribution: the files its RECORD lists (package, .libs, dist-info), compiled too."""
    rows: list[dict[str, str | float]] = []
    for info in sorted(out.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        with (info / "RECORD").open(newline="") as handle:
            files = {out / row[0] for row in csv.reader(handle) if row and not row[0].startswith("..")}
        # The compiled modules, whether or not this pip version lists them in RECORD.
        files |= {Path(cache_from_source(str(f))) for f in files if f.suffix == ".py"}
        size = sum(f.stat().st_size for f in files if f.is_file())
        rows.append({"name": name, "version": version, "mb": _mb(size)})
    return sorted(rows, key=lambda row: -float(row["mb"]))


def _group(step: Copy) -> str:
    if step.dest.parts[:1] == (MODEL_STORE_PREFIX,):
        return "models"
    return "core" if all(source.startswith("layers/") for source in step.sources) else "function"
