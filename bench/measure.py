"""Measure one domain: fresh processes (cold start, memory), then the warm paths and throughput in this one."""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from aimass.lambda_context import LocalLambdaContext
from aimass.serving.domains import runtime_class
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from bench import cold_start
from bench.common import Stats, rate, sample_interleaved
from bench.engine import Handler, RawEngine, load_handler
from bench.server import KeepAliveClient, local_server
from bench.workload import Outputs, Request, Route, Workload, api_gateway_event

BATCHES = (1, 8, 32)


@dataclass(frozen=True)
class Plan:
    iterations: int  # warm-path samples per path
    warmup: int  # untimed calls per path first
    cold_runs: int  # fresh processes per cold-start kind (median taken)
    throughput_s: float  # seconds per batch size
    rss_batches: int  # batch-32 requests before reading peak memory


FULL = Plan(iterations=500, warmup=50, cold_runs=5, throughput_s=3.0, rss_batches=20)
QUICK = Plan(iterations=100, warmup=20, cold_runs=2, throughput_s=1.0, rss_batches=5)


@dataclass(frozen=True)
class Measurements:
    warm: dict[str, Stats]  # by path: raw, raw_separate_session, codec, handler_<route>, server_<route>
    cold: dict[str, list[cold_start.ColdRun]]
    memory: dict[str, float]
    throughput: dict[str, float]  # items/s through the handler, by batch size
    throughput_engine: dict[str, float]  # items/s through the runtime alone (codec + run)
    item: dict[str, Any]  # the workload's description of the item every latency request carries


def _lambda_call(handler: Handler, event: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    context = LocalLambdaContext()

    def call() -> dict[str, Any]:
        response = handler(event, context)
        if response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response['body'][:500]}")
        return response

    return call


def _server_call(client: KeepAliveClient, request: Request) -> Callable[[], bytes]:
    return lambda: client.post(request)


def _check(route: Route[Any], body: bytes | str, expected: Outputs, where: str) -> None:
    """Refuse to time a path that does not compute what the raw engine computes."""
    if not route.agrees(body, expected):
        raise RuntimeError(f"{where} {route.name} answered differently from the raw engine: {str(body)[:300]}")


def measure_warm(
    workload: Workload[Any], handler: Handler, engine: RawEngine, client: KeepAliveClient, plan: Plan
) -> dict[str, Stats]:
    """One item through every path, interleaved: raw engine, codec, handler and server on every route."""
    manifest = engine.runtime.manifest
    single = workload.items()[:1]
    feeds = workload.engine_feeds(engine.runtime, single)  # made once: the floor is session.run alone
    expected = engine.run(feeds)
    paths: dict[str, Callable[[], object]] = {
        "raw": lambda: engine.run(feeds),  # the handler's own session
        "raw_separate_session": lambda: engine.run(feeds, engine.separate_session),
        "codec": lambda: workload.engine_feeds(engine.runtime, single),
    }
    for route in (workload.v2_route(), *workload.routes()):
        request = route.request(manifest, single)
        call = _lambda_call(handler, api_gateway_event(route.template, request))
        _check(route, call()["body"], expected, "handler")
        paths[f"handler_{route.name}"] = call
        _check(route, client.post(request), expected, "server")
        paths[f"server_{route.name}"] = _server_call(client, request)
    samples = sample_interleaved(paths, iterations=plan.iterations, warmup=plan.warmup)
    return {name: Stats.of(values) for name, values in samples.items()}


def _batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Rotating windows over the items, so that batches differ (text: padding lengths vary)."""
    count = len(items)
    return [[items[(start + i) % count] for i in range(size)] for start in range(0, count, max(1, size // 4))]


def measure_throughput(
    workload: Workload[Any], handler: Handler, engine: RawEngine, plan: Plan
) -> tuple[dict[str, float], dict[str, float]]:
    """Items per second through the handler (V2 route) and through the runtime alone (codec + run)."""
    manifest, route = engine.runtime.manifest, workload.v2_route()
    through_handler: dict[str, float] = {}
    through_engine: dict[str, float] = {}
    for size in BATCHES:
        batches = _batches(workload.items(), size)
        calls = [_lambda_call(handler, api_gateway_event(route.template, route.request(manifest, b))) for b in batches]
        inputs = [workload.predict_inputs(manifest, batch) for batch in batches]
        for call in calls:  # warm-up: the first run of a new shape is slower in ONNX Runtime
            call()

        def via_handler(i: int, calls: list[Callable[[], dict[str, Any]]] = calls) -> object:
            return calls[i % len(calls)]()

        def via_engine(i: int, inputs: list[dict[str, Any]] = inputs) -> object:
            return engine.predict(inputs[i % len(inputs)])

        through_handler[str(size)] = rate(via_handler, seconds=plan.throughput_s)[0] * size
        through_engine[str(size)] = rate(via_engine, seconds=plan.throughput_s)[0] * size
    return through_handler, through_engine


def measure_peak_rss(spec: Path, env: dict[str, str], scratch: Path) -> dict[str, float]:
    _, _, payload = cold_start.run_probe(cold_start.PEAK_RSS, spec, env, scratch)
    return {key: float(value) for key, value in payload.items()}


def _write_specs(
    workload: Workload[Any], artifact: ModelArtifact, settings: Settings, scratch: Path, plan: Plan
) -> dict[str, Path]:
    """The probes' specs, from a runtime of the model that is dropped again before anything is timed."""
    runtime = runtime_class(workload.domain)(artifact, SessionFactory(settings))
    runtime.load()
    specs = cold_start.write_specs(
        workload, artifact, runtime, settings, scratch, warmup=plan.warmup, batches=plan.rss_batches
    )
    del runtime
    gc.collect()
    return specs


def measure_all(
    workload: Workload[Any], artifact: ModelArtifact, settings: Settings, store: Path, plan: Plan, console: Console
) -> Measurements:
    """Fresh processes first, while this one holds no model; then the warm paths in this process."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix=f"aimass-bench-{workload.domain}-") as tmp:
        scratch = Path(tmp)
        specs = _write_specs(workload, artifact, settings, scratch, plan)
        with console.status("cold start: fresh processes"):
            cold = cold_start.measure(workload, specs, env, scratch, plan.cold_runs)
        with console.status("peak memory"):
            memory = measure_peak_rss(specs[cold_start.PEAK_RSS], env, scratch)
        with console.status("warm latency: loading"):
            loaded = load_handler(workload.domain)
            engine = RawEngine(artifact, settings, loaded.sessions)
        with local_server(store, env, scratch / "server.log") as client, console.status("warm latency"):
            warm = measure_warm(workload, loaded.handler, engine, client, plan)
    with console.status("throughput"):
        through_handler, through_engine = measure_throughput(workload, loaded.handler, engine, plan)
    return Measurements(
        warm=warm,
        cold=cold,
        memory=memory,
        throughput=through_handler,
        throughput_engine=through_engine,
        item=workload.describe(engine.runtime, workload.items()[0]),
    )
