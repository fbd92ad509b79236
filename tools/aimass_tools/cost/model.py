"""What a request costs on Lambda at each memory size, from what the bench measured, and on paper elsewhere.

Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB, a share of one below it, more
above. A warm request's duration at a size is modelled from two measurements on a quiet machine:

* the serving stack's time (the Lambda handler path minus the raw engine, bench/run.py), single-threaded
  Python, and the engine's time for the same request at 1 and 2 intra-op threads (bench/sizing.py);
* below one vCPU both run time-sliced, so their sum stretches by ``1,769 / memory``; at one vCPU or more the
  stack runs at full speed and the engine as fast as on ``floor(memory / 1,769)`` whole cores, at most the
  threads measured (a third vCPU is not assumed to help: this machine has two cores to measure on).

A size fits when the function's peak resident memory, with the sizing rules' headroom, is below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aimass.contract import MB_PER_VCPU
from aimass_tools.cost import prices

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Measured:
    """One domain's measurements, as the bench records them."""

    domain: str
    model: str
    stack_ms: float  # the serving stack's share of a warm request on the Lambda handler path
    engine_ms: Mapping[int, float]  # the engine's time for the same request by intra-op threads
    peak_rss_mb: float
    rss_headroom: float  # the sizing rule's margin over the peak (Lambda kills a function at its memory limit)


@dataclass(frozen=True)
class SizeCost:
    memory_mb: int
    fits: bool
    warm_ms: float
    billed_ms: int
    lambda_per_million: float  # the function's duration and requests
    total_per_million: float  # with API Gateway and the key authorizer


@dataclass(frozen=True)
class PaperCost:
    """SageMaker Serverless Inference for the same request, at one of its sizes."""

    memory_mb: int
    fits: bool
    warm_ms: float
    endpoint_per_million: float  # inference time (its data charge, per GB in and out, comes on top)
    behind_api_gateway_per_million: float  # the same, behind a REST API as AI Mass is


def warm_ms(measured: Measured, memory_mb: int) -> float:
    vcpus = memory_mb / MB_PER_VCPU
    if vcpus < 1:
        return (measured.stack_ms + measured.engine_ms[1]) / vcpus
    # Only whole vCPUs count: a second thread on 1.2 vCPUs mostly waits for its fifth of a core.
    threads = min(math.floor(vcpus), max(measured.engine_ms))
    return measured.stack_ms + measured.engine_ms[threads]


def fits(measured: Measured, memory_mb: int) -> bool:
    return measured.peak_rss_mb * measured.rss_headroom <= memory_mb


def lambda_request_cost(billed_ms: float, memory_mb: int) -> float:
    """USD for one invocation: its billed duration at the size, and the request."""
    duration = billed_ms / 1000 * memory_mb / 1024 * prices.LAMBDA_PER_GB_SECOND
    return duration + prices.LAMBDA_PER_MILLION_REQUESTS / PER_MILLION


def authorizer_per_million(memory_mb: int, decision_ms: float = 0.0) -> float:
    """The key authorizer API Gateway invokes for every request: Lambda's minimum billed duration at its size."""
    billed = max(prices.LAMBDA_BILLING_MS, math.ceil(decision_ms))
    return lambda_request_cost(billed, memory_mb) * PER_MILLION


def lambda_costs(
    measured: Measured, sizes: Sequence[int] = prices.LAMBDA_SIZES_MB, *, authorizer_mb: int, authorizer_ms: float = 0.0
) -> list[SizeCost]:
    edge = prices.API_GATEWAY_REST_PER_MILLION + authorizer_per_million(authorizer_mb, authorizer_ms)
    table = []
    for memory_mb in sizes:
        warm = warm_ms(measured, memory_mb)
        billed = max(prices.LAMBDA_BILLING_MS, math.ceil(warm))
        function = lambda_request_cost(billed, memory_mb) * PER_MILLION
        table.append(SizeCost(memory_mb, fits(measured, memory_mb), warm, billed, function, function + edge))
    return table


Sized = TypeVar("Sized", SizeCost, PaperCost)


def cheapest(table: Sequence[Sized], latency_ms: float, price: Callable[[Sized], float]) -> Sized | None:
    """The size with the lowest ``price`` whose warm duration meets the bound and that fits; None if none."""
    meeting = [size for size in table if size.fits and size.warm_ms <= latency_ms]
    return min(meeting, key=lambda size: (price(size), size.memory_mb), default=None)


def sagemaker_costs(
    measured: Measured, per_second: Mapping[int, float] = prices.SAGEMAKER_SERVERLESS_PER_SECOND
) -> list[PaperCost]:
    """On paper: the same warm duration at the same memory (its CPU share by memory is assumed like Lambda's)."""
    table = []
    for memory_mb, price in sorted(per_second.items()):
        warm = warm_ms(measured, memory_mb)
        endpoint = math.ceil(warm) / 1000 * price * PER_MILLION  # billed by the millisecond
        table.append(
            PaperCost(
                memory_mb, fits(measured, memory_mb), warm, endpoint, endpoint + prices.API_GATEWAY_REST_PER_MILLION
            )
        )
    return table
