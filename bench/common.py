"""Domain-independent benchmark helpers: timing statistics, the machine, free ports, results.json."""

from __future__ import annotations

import io
import json
import os
import platform
import socket
import sys
import time
import wave
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from models.buildkit.build_record import cpu_model


def make_console() -> Console:
    """A console for the tables; wide enough for them when the output is a file or a pipe."""
    return Console() if sys.stdout.isatty() else Console(width=140)


@dataclass(frozen=True)
class Stats:
    """Latency percentiles of one path, in milliseconds."""

    p50_ms: float
    p99_ms: float
    mean_ms: float
    count: int

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Stats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        p50, p99 = np.percentile(ms, [50, 99])
        return cls(p50_ms=float(p50), p99_ms=float(p99), mean_ms=float(ms.mean()), count=len(ms))


@contextmanager
def swapped(owner: object, name: str, value: object) -> Iterator[None]:
    """Replace ``owner.name`` with ``value`` for the duration of the block."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def sample_interleaved(
    paths: Mapping[str, Callable[[], object]],
    *,
    iterations: int,
    warmup: int,
    setups: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, list[int]]:
    """Time every path once per iteration, in a rotating order.

    Interleaving puts every path under the same machine conditions (frequency, neighbours, page cache), so
    the difference between two paths' percentiles measures the code, not the moment it ran; rotating the
    order stops one path from always running right after another. A path's set-up (``setups``) runs right
    before it, untimed: the state it starts from (caches the engine has just filled, say).
    """
    names = list(paths)
    before = setups or {}
    for _ in range(warmup):
        for name in names:
            if name in before:
                before[name]()
            paths[name]()
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for index in range(iterations):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            call = paths[name]
            if name in before:
                before[name]()
            start = clock()
            call()
            samples[name].append(clock() - start)
    return samples


def rate(call: Callable[[int], object], *, seconds: float, min_calls: int = 5) -> tuple[float, int]:
    """Calls per second of ``call(i)`` over at least ``seconds`` and ``min_calls`` calls."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        call(count)
        count += 1
        now = time.perf_counter()
        if now >= deadline and count >= min_calls:
            return count / (now - start), count


def free_port() -> int:
    # Bind to port 0 and release it: a tiny race with other processes, acceptable on a bench machine.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    """What the numbers were measured on, so that results from two machines are never compared blindly."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: _version(package) for package in packages},
    }


def load_average() -> float:
    """The 1-minute load average (it lags: it still counts work that ended up to a minute ago)."""
    return round(os.getloadavg()[0], 2)


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over the next ``seconds``, before the bench starts: other people's work.

    None where /proc/stat is missing (not Linux).
    """
    try:
        busy_before, total_before = _cpu_times()
        time.sleep(seconds)
        busy_after, total_after = _cpu_times()
    except OSError:
        return None
    return round((busy_after - busy_before) / max(1, total_after - total_before), 3)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def merge_results(path: Path, domain: str, results: Mapping[str, Any]) -> None:
    """Replace ``domain``'s entry of the results file, keeping every other domain's, and write atomically.

    Every entry is dated (``measured_at``, unless it brings its own): entries of one file may come from
    different runs, and a committed record says when each was measured.
    """
    document: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, dict):
            document = loaded
    document[domain] = {**results, "measured_at": results.get("measured_at") or now_utc()}
    write_json(path, document)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as indented JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(path.suffix + ".tmp")
    scratch.write_text(json.dumps(document, indent=2) + "\n")
    scratch.replace(path)


def wav_of(samples: np.ndarray[Any, Any], rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of ``samples`` (already in int16's range) at ``rate``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()
