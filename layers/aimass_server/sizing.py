"""How many workers, and how many ONNX Runtime threads each: the cores this process may use, shared out."""

from __future__ import annotations

import math
import os
from pathlib import Path

from aimass.settings import Settings

# Rows of concurrent requests for one model run as one engine batch (aimass.serving.microbatch). The settings'
# default (0: each request alone) is a Lambda container's, which holds one request at a time; a server holds many.
MICRO_BATCH_ROWS = 32
CGROUP = Path("/sys/fs/cgroup")


def available_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity, capped by its cgroup's CPU quota where one is set.

    In a container the machine's core count says little: ``docker run --cpus 2`` and an ECS task's ``cpu`` set a
    quota, not an affinity, and one worker per host core under a two-core quota would only contend.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _quota(cgroup)
    return max(1, min(cores, quota)) if quota else cores


def _quota(cgroup: Path) -> int | None:
    """The quota in whole cores (rounded up), from cgroup v2's cpu.max or v1's cfs files; None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1") or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return math.ceil(int(quota) / int(period))


def worker_settings(settings: Settings, *, workers: int, cores: int) -> Settings:
    """Each worker's settings: ONNX Runtime gets the worker's share of the cores unless the settings name a count
    ("every core" for each of N processes would have them contend)."""
    if settings.intra_op_threads:
        return settings
    return settings.model_copy(update={"intra_op_threads": max(1, cores // workers)})
