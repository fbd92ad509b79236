"""pip install, replayed: the pinned requirements for the base image's platform, through a cache.

The install is the slow step; its result is kept under ``build/pip-cache/<key>/``, keyed by the sha256
of the requirements file and the target platform, so a rebuild takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.platform import ARCH, Platform
from aimass_tools.packaging.steps import PipInstall


def pip_install(step: PipInstall, out: Path, platform: Platform, cache_root: Path) -> bool:
    """Install the requirements into ``out`` from the cache, filling it first; True if it was cached."""
    requirements = out / step.requirements
    if not requirements.is_file():
        raise PackagingError(f"pip install -r {step.requirements}: no earlier COPY put that file there")
    args = platform.pip_args()
    key = hashlib.sha256(requirements.read_bytes() + json.dumps(args).encode()).hexdigest()[:16]
    cached = cache_root / key
    hit = cached.is_dir()
    if not hit:
        _fill_cache(requirements, args, cached, platform)
    # Hard links: the cache is never modified in place, and linking takes milliseconds where copying
    # a few hundred MB would not. pip --target leaves an entry that is already there as it is (a warning, no
    # --upgrade): a later stage's install into the task root does not replace the first one's (its bin/).
    for entry in sorted(cached.iterdir()):
        if (out / entry.name).exists():
            continue
        if entry.is_dir():
            shutil.copytree(entry, out / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(out / entry.name))
    return hit


def _fill_cache(requirements: Path, args: list[str], cached: Path, platform: Platform) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{cached.name}.partial-", dir=cached.parent))
    try:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
        command += ["--target", str(work), "-r", str(requirements), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PackagingError(
                f"pip could not install {requirements.name} for the base image's platform "
                f"({platform.os}, glibc {platform.glibc[0]}.{platform.glibc[1]}, Python {platform.python}, "
                f"{ARCH}); a wheel built for a newer glibc (manylinux_2_N above it) cannot load there.\n"
                + "\n".join(line for line in result.stderr.splitlines() if line.startswith("ERROR"))
            )
        try:
            work.rename(cached)  # atomic: a concurrent build sees the whole cache entry or none
        except OSError:
            if not cached.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)
    return target
