"""One module per domain, ``bench/workloads/<domain>.py``, each assigning a ``Workload`` to ``WORKLOAD``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench.workload import Workload

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """The domains that have a workload module."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def load(domain: str) -> Workload[Any]:
    module = importlib.import_module(f"bench.workloads.{domain}")
    workload = getattr(module, "WORKLOAD", None)
    if not isinstance(workload, Workload) or workload.domain != domain:
        raise TypeError(f"bench/workloads/{domain}.py must assign WORKLOAD, a Workload of domain '{domain}'")
    return workload
