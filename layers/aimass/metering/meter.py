"""What one request consumed: reported where the protocol layer calls a model, read by the metering middleware.

The middleware opens a ``Meter`` for each request (a context variable); the protocol services run every
model call through ``measured``, which times it and notes the model, version and billable units there. A
context variable reaches the worker thread an inference is offloaded to (anyio copies the context), and the
meter itself is a mutable object, so what the thread notes is what the middleware reads.

Billable units come from the runtime's usage counts (``Prediction.usage`` / ``TaskResult.usage``): the one
named by the runtime's ``billing_unit``, or the only one it reports; a runtime reporting none is billed
one ``request``.

An answer streamed as it is written (server-sent events) cannot be held until it is settled: ``streaming``
marks its meter so the middleware sends the body as it comes and settles once it has ended, and ``note``
records what the stream consumed, however it ended (a client that leaves is billed for what was written).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aimass.errors import AimassError
from aimass.serving.runtime import ModelRuntime


class _Usage(Protocol):
    @property
    def usage(self) -> Mapping[str, int]: ...


R = TypeVar("R", bound=_Usage)


@dataclass(frozen=True)
class Metered:
    model: str
    version: str
    domain: str
    unit: str
    units: int
    inference_ms: float


class Meter:
    __slots__ = ("metered", "streaming")

    def __init__(self) -> None:
        self.metered: Metered | None = None
        self.streaming = False  # billed when its body ends, not before its answer starts


_current: ContextVar[Meter | None] = ContextVar("aimass_meter", default=None)


def open_meter() -> Meter:
    meter = Meter()
    _current.set(meter)
    return meter


def measured(runtime: ModelRuntime, call: Callable[[], R]) -> R:
    """Run one model call; note what it consumed on the request's meter, if metering is on, and how it went on
    the version's own record (``runtime.observed``: what a canary policy judges it by)."""
    started = time.perf_counter()
    try:
        result = call()
    except AimassError as exc:
        if exc.status_code >= 500:  # a client's bad input is not the version's failure
            runtime.observed.failed()
        raise
    except Exception:
        runtime.observed.failed()
        raise
    elapsed_ms = (time.perf_counter() - started) * 1e3
    runtime.observed.served(elapsed_ms)
    note(runtime, result.usage, elapsed_ms)
    return result


def streaming() -> None:
    """Mark the request's answer as a stream, billed by ``note`` when its body has ended."""
    meter = _current.get()
    if meter is not None:
        meter.streaming = True


def note(runtime: ModelRuntime, usage: Mapping[str, int], inference_ms: float) -> None:
    """Note what a model call consumed on the request's meter, if metering is on."""
    meter = _current.get()
    if meter is not None:
        unit, units = billable(runtime, usage)
        manifest = runtime.manifest
        meter.metered = Metered(manifest.name, manifest.version, manifest.domain, unit, units, inference_ms)


def billable(runtime: ModelRuntime, usage: Mapping[str, int]) -> tuple[str, int]:
    unit = runtime.billing_unit or (next(iter(usage)) if len(usage) == 1 else None)
    if unit is None:
        return "requests", 1
    return unit, int(usage.get(unit, 0))
