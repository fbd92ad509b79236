"""Where a warm text request's time goes between the API Gateway event and the ONNX Runtime session.

    python bench/profile_text.py [--store model_store] [--iterations 500] [--cprofile 25] [--cold]

The app is built the way ``functions/text/handler.py`` builds it, then its layers are wrapped with
timestamps (Mangum -> app -> data plane -> runtime -> session) and real requests are sent through it. The
stamps split every request into contiguous segments that add up to the whole, measured in place: right
after ``session.run`` has streamed ~90 MB of weights through the caches, the Python around it runs on
cold caches and costs several times what a tight loop of the same code suggests (the "hot loop" table
shows that view, and the cost of some alternatives). ``--cprofile`` lists the hottest Python functions;
``--cold`` breaks down a cold start's imports and model load.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import logging
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import json  # noqa: E402

import numpy as np  # noqa: E402
import pydantic_core  # noqa: E402
from mangum import Mangum  # noqa: E402
from rich.table import Table  # noqa: E402
from starlette.types import Receive, Scope, Send  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from aimass.http import offload  # noqa: E402
from aimass.http.app import create_app  # noqa: E402
from aimass.protocol import v2_dataplane  # noqa: E402
from aimass.protocol.openai import OpenAIService  # noqa: E402
from aimass.protocol.v2_dataplane import DataPlane  # noqa: E402
from aimass.registry import ModelRegistry  # noqa: E402
from aimass.session import SessionFactory  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from aimass.store import LocalModelStore  # noqa: E402
from aimass_text.runtime import TextEmbeddingRuntime  # noqa: E402
from bench import cold_start  # noqa: E402
from bench.common import LambdaContext, Stats, make_console, swapped  # noqa: E402
from bench.direct_adapter import direct_infer  # noqa: E402
from bench.text_workload import OPENAI, SINGLE, V2, find_model, handler_env, silence_logs  # noqa: E402

console = make_console()
Call = Callable[[], object]

# --- Building and wrapping the app -------------------------------------------------------------------


@dataclass
class Fixture:
    """The app as functions/text/handler.py builds it, with handles on its layers."""

    settings: Settings
    registry: ModelRegistry
    runtime: TextEmbeddingRuntime
    handler: Mangum


def build(store: Path) -> Fixture:
    os.environ.update(handler_env(store))
    settings = Settings()
    # The steps of build_app(in_lambda=True), keeping the registry to reach the runtime.
    silence_logs()
    registry = ModelRegistry(LocalModelStore(store), SessionFactory(settings), domains=settings.domains)
    registry.load_all()
    app = create_app(registry, settings, offload=offload.inline)
    runtime = registry.get(find_model(store).manifest.name)
    assert isinstance(runtime, TextEmbeddingRuntime)
    return Fixture(settings=settings, registry=registry, runtime=runtime, handler=Mangum(app, lifespan="off"))


@dataclass
class Trace:
    """Timestamps of one request, in the order the layers were entered and left."""

    stamps: list[tuple[str, int]] = field(default_factory=list)

    def mark(self, name: str) -> None:
        self.stamps.append((name, time.perf_counter_ns()))

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def traced(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name}>")
            try:
                return fn(*args, **kwargs)
            finally:
                self.mark(f"{name}<")

        return traced

    def wrap_asgi(self, app: Any) -> Any:
        async def traced(scope: Scope, receive: Receive, send: Send) -> None:
            self.mark("app>")
            try:
                await app(scope, receive, send)
            finally:
                self.mark("app<")

        return traced


@contextmanager
def instrumented(fx: Fixture, trace: Trace) -> Iterator[None]:
    """Stamp every layer boundary; each wrapper costs well under a microsecond."""
    session = fx.runtime.session
    traced_session = SimpleNamespace(run=trace.wrap("run", session.run))
    with ExitStack() as stack:
        stack.enter_context(swapped(fx.handler, "app", trace.wrap_asgi(fx.handler.app)))
        for method in ("infer", "_parse", "_decode_inputs", "_encode"):
            stack.enter_context(swapped(DataPlane, method, trace.wrap(method, getattr(DataPlane, method))))
        stack.enter_context(swapped(OpenAIService, "embeddings", trace.wrap("service", OpenAIService.embeddings)))
        stack.enter_context(swapped(fx.runtime, "predict", trace.wrap("predict", fx.runtime.predict)))
        stack.enter_context(swapped(fx.runtime, "session", traced_session))
        yield


# --- Segments ----------------------------------------------------------------------------------------

# Human names of the spans between consecutive stamps; spans not listed are data-plane glue.
SEGMENTS = {
    ("req>", "app>"): "Mangum: event -> ASGI scope, queue, task",
    ("app>", "infer>"): "middleware + FastAPI: routing, dependencies, body",
    ("app>", "service>"): "middleware + FastAPI: routing, body JSON, EmbeddingsRequest",
    ("_parse>", "_parse<"): "V2 parse: InferenceRequest.model_validate_json",
    ("_decode_inputs>", "_decode_inputs<"): "V2 decode: codec.from_json",
    ("service>", "predict>"): "OpenAI: registry, texts_of, bytes array",
    ("predict>", "run>"): "runtime: tokenise, input arrays",
    ("run>", "run<"): "ONNX Runtime session.run",
    ("run<", "predict<"): "runtime: Prediction, usage",
    ("predict<", "service<"): "OpenAI: Embedding models (384 floats each)",
    ("_encode>", "_encode<"): "V2 encode: to_json + json.dumps",
    ("infer<", "app<"): "FastAPI Response + middleware + Mangum send (access log)",
    ("service<", "app<"): "route: model_dump_json, Response, middleware, Mangum send (access log)",
    ("app<", "req<"): "Mangum: run_until_complete, response dict",
    ("req>", "infer>"): "direct adapter: event -> DataPlane.infer",
    ("infer<", "req<"): "direct adapter: response dict",
}
GLUE = "V2 data plane glue: registry.get, checks, WireResponse"


def segments(trace: Trace) -> dict[str, int]:
    spans: dict[str, int] = defaultdict(int)
    for (a, start), (b, end) in zip(trace.stamps, trace.stamps[1:], strict=False):
        spans[SEGMENTS.get((a, b), GLUE)] += end - start
    return spans


@dataclass
class Variant:
    """A request as sent, possibly with a change applied to the app while it runs."""

    name: str
    call: Call
    change: Callable[[], Any] | None = None  # returns a context manager


def run_traced(fx: Fixture, variants: Sequence[Variant], iterations: int) -> dict[str, list[dict[str, int]]]:
    """Send every variant's request once per iteration, rotating the order; keep each request's segments."""
    trace = Trace()
    results: dict[str, list[dict[str, int]]] = {v.name: [] for v in variants}
    with instrumented(fx, trace):
        for index in range(iterations + 50):
            shift = index % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                with variant.change() if variant.change else ExitStack():
                    trace.stamps.clear()
                    trace.mark("req>")
                    variant.call()
                    trace.mark("req<")
                if index >= 50:  # the first 50 rounds warm up
                    results[variant.name].append(segments(trace))
    return results


def p50_us(values: Sequence[int]) -> float:
    return Stats.of(values).p50_ms * 1000


# --- Changes worth trying ----------------------------------------------------------------------------


class _FastJson:
    """``json`` for v2_dataplane with dumps done by pydantic_core (already a dependency)."""

    @staticmethod
    def dumps(document: Any, **_: Any) -> str:
        return pydantic_core.to_json(document).decode()


def fast_json() -> Any:
    return swapped(v2_dataplane, "json", _FastJson)


def no_access_log() -> Any:
    return swapped(logging.getLogger("mangum.http"), "disabled", True)


@contextmanager
def both() -> Iterator[None]:
    with fast_json(), no_access_log():
        yield


# --- Reports -----------------------------------------------------------------------------------------


def report_segments(title: str, requests: list[dict[str, int]]) -> None:
    names = list(dict.fromkeys(name for request in requests for name in request))
    total = [sum(request.values()) for request in requests]
    overhead = [sum(v for k, v in request.items() if k != SEGMENTS[("run>", "run<")]) for request in requests]
    table = Table(title=title)
    table.add_column("segment, in the order a request crosses it")
    table.add_column("p50 us", justify="right")
    table.add_column("mean us", justify="right")
    for name in names:
        values = [request.get(name, 0) for request in requests]
        table.add_row(name, f"{p50_us(values):,.1f}", f"{statistics.fmean(values) / 1000:,.1f}")
    table.add_row("[bold]whole request[/]", f"[bold]{p50_us(total):,.1f}[/]", f"{statistics.fmean(total) / 1000:,.1f}")
    table.add_row(
        "[bold]everything but session.run[/]",
        f"[bold]{p50_us(overhead):,.1f}[/]",
        f"{statistics.fmean(overhead) / 1000:,.1f}",
    )
    console.print(table)


def report_variants(results: dict[str, list[dict[str, int]]], baseline: str, floor: str) -> None:
    """Each change's effect, and session.run in a request against session.run called alone."""
    run_name = SEGMENTS[("run>", "run<")]
    columns = ("variant", "overhead p50 us", "vs as is", "encode p50 us", "Mangum send p50 us", "session.run p50 us")
    table = Table(title="Changes tried in place, V2 request (overhead: p50 us of everything but session.run)")
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    base = p50_us([sum(v for k, v in r.items() if k != run_name) for r in results[baseline]])
    for name, requests in results.items():
        if not name.startswith("V2") and name != floor:
            continue
        overhead = p50_us([sum(v for k, v in r.items() if k != run_name) for r in requests])
        encode = p50_us([r.get(SEGMENTS[("_encode>", "_encode<")], 0) for r in requests])
        send = p50_us([r.get(SEGMENTS[("infer<", "app<")], 0) for r in requests])
        run = p50_us([r[run_name] for r in requests])
        cells = (f"{overhead:,.1f}", f"{overhead - base:+,.1f}", f"{encode:,.1f}", f"{send:,.1f}", f"{run:,.1f}")
        table.add_row(name, *cells)
    console.print(table)


def hot_loop(call: Call, iterations: int = 2000) -> float:
    """p50 in us of ``call`` repeated back to back: every cache warm, the best case."""
    for _ in range(100):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return p50_us(samples)


def report_hot(fx: Fixture) -> None:
    runtime, manifest = fx.runtime, fx.runtime.manifest
    plane = DataPlane(fx.registry, fx.settings)
    answer = json.loads(plane.infer(manifest.name, None, V2.body(manifest, [SINGLE]), None).body)
    big = {"outputs": [{"data": np.random.default_rng(0).standard_normal(32 * 384).astype(np.float32).tolist()}]}
    access_log = logging.getLogger("mangum.http")
    context = LambdaContext()
    event = V2.event(manifest, [SINGLE])
    output = runtime.session.run([runtime.engine_output], _feeds(runtime))[0]
    stub = SimpleNamespace(run=lambda *_: [output])  # the engine at zero cost

    def stubbed_handler() -> object:
        with swapped(runtime, "session", stub):
            return fx.handler(event, context)

    rows = [
        ("whole V2 handler, session.run replaced by its answer", stubbed_handler),
        ("json.dumps, V2 response of 1 x 384 floats", lambda: json.dumps(answer, separators=(",", ":")).encode()),
        ("pydantic_core.to_json, same document", lambda: pydantic_core.to_json(answer)),
        ("json.dumps, 32 x 384 floats", lambda: json.dumps(big, separators=(",", ":")).encode()),
        ("pydantic_core.to_json, 32 x 384 floats", lambda: pydantic_core.to_json(big)),
        ("tokenizer.encode_batch, one sentence", lambda: runtime.tokenizer.encode_batch([SINGLE])),
        ("tokenizer.encode, one sentence", lambda: runtime.tokenizer.encode(SINGLE)),
        ("Mangum access log line (to /dev/null)", lambda: access_log.info("%s %s %s", "POST", "/v2", 200)),
    ]  # fmt: skip
    table = Table(title="Hot loop (back to back, caches warm): p50 us")
    table.add_column("code")
    table.add_column("p50 us", justify="right")
    for label, call in rows:
        table.add_row(label, f"{hot_loop(call):,.1f}")
    console.print(table)


def _feeds(runtime: TextEmbeddingRuntime) -> dict[str, Any]:
    (encoding,) = runtime.tokenizer.encode_batch([SINGLE])
    tensors = {
        "input_ids": np.array([encoding.ids], dtype=np.int64),
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
    }
    tensors["token_type_ids"] = np.zeros_like(tensors["input_ids"])
    return {name: tensors[name] for name in runtime.feeds}


def hottest(call: Call, calls: int, top: int) -> None:
    """The Python functions that cost most, by own time, over ``calls`` requests (profiler-inflated)."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        call()
    profile.disable()
    console.print(f"[bold]cProfile[/], {calls} V2 requests through the handler, by own time:")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(top)


# --- Cold start ---------------------------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")


def import_costs(modules: Sequence[str]) -> dict[str, float]:
    """Own import time per top-level package (ms), from ``python -X importtime`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import " + ", ".join(modules)],
        capture_output=True,
        text=True,
        check=True,
    )
    costs: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            costs[match[2].split(".")[0]] += int(match[1]) / 1000
    return costs


def _median_s(call: Call, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report_cold_probes(store: Path, fx: Fixture, runs: int) -> None:
    """The handler, the direct prototype and the floor, each in fresh processes."""
    artifact = find_model(store)
    kinds = (cold_start.HANDLER, cold_start.DIRECT, cold_start.FLOOR)
    labels = {
        cold_start.HANDLER: "Lambda handler (as deployed)",
        cold_start.DIRECT: "direct adapter (prototype: no Mangum/FastAPI)",
        cold_start.FLOOR: "raw engine (floor)",
    }
    with tempfile.TemporaryDirectory(prefix="aimass-profile-") as tmp:
        scratch = Path(tmp)
        specs = cold_start.write_specs(artifact, fx.settings, scratch, warmup=1, batches=1)
        with console.status("cold starts"):
            results = cold_start.measure(kinds, specs, dict(os.environ), scratch, runs)
    floor = cold_start.median_breakdown(results[cold_start.FLOOR])["wall_s"]
    table = Table(title=f"Cold start, median of {runs} fresh processes (s)")
    for column in ("", "interpreter", "imports", "model load", "first run", "total", "/ floor"):
        table.add_column(column, justify="right" if column else "left")
    for kind in kinds:
        parts = cold_start.median_breakdown(results[kind])
        phases = (parts[k] for k in ("interpreter_s", "imports_s", "model_load_s", "first_run_s"))
        table.add_row(
            labels[kind], *(f"{v:.3f}" for v in phases), f"{parts['wall_s']:.3f}", f"{parts['wall_s'] / floor:.2f}x"
        )
    console.print(table)


def report_cold(store: Path, fx: Fixture) -> None:
    handler_costs = import_costs(["fastapi", "mangum", "aimass.http.app", "aimass_text"])
    floor_costs = import_costs(["numpy", "onnxruntime", "tokenizers"])
    table = Table(title="Cold start: own import time by package (ms, one fresh process each)")
    for column in ("package", "handler", "raw-engine floor"):
        table.add_column(column, justify="left" if column == "package" else "right")
    for package, ms in sorted(handler_costs.items(), key=lambda item: -item[1])[:16]:
        table.add_row(package, f"{ms:.1f}", f"{floor_costs[package]:.1f}" if package in floor_costs else "-")
    table.add_row("[bold]all imports[/]", f"{sum(handler_costs.values()):.1f}", f"{sum(floor_costs.values()):.1f}")
    console.print(table)

    artifact = find_model(store)
    manifest = artifact.manifest
    engine = artifact.directory / manifest.engine.file
    local = LocalModelStore(store)
    model_bytes = engine.read_bytes()
    sessions = SessionFactory(fx.settings)
    steps: list[tuple[str, Call]] = [
        ("Settings() from the environment", Settings),
        ("store.fetch: manifest + sha256 of every file", lambda: local.fetch(manifest.name, manifest.version)),
        ("  of which sha256 of model.onnx", lambda: hashlib.sha256(model_bytes).hexdigest()),
        ("read model.onnx (again) for the session", engine.read_bytes),
        ("SessionFactory.create (ONNX Runtime session)", lambda: sessions.create(model_bytes, label="m")),
        ("Tokenizer.from_file", lambda: Tokenizer.from_file(str(artifact.directory / "tokenizer.json"))),
        ("create_app (FastAPI app and routes)", lambda: create_app(fx.registry, fx.settings, offload=offload.inline)),
    ]  # fmt: skip
    table = Table(title="Cold start: model load steps (s, median of 3, page cache warm)")
    table.add_column("step")
    table.add_column("s", justify="right")
    for label, call in steps:
        table.add_row(label, f"{_median_s(call):.3f}")
    console.print(table)


# --- Main ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store")
    parser.add_argument("--iterations", type=int, default=500, help="requests per variant")
    parser.add_argument("--cprofile", type=int, default=0, metavar="TOP", help="print the TOP hottest functions")
    parser.add_argument("--cold", action="store_true", help="also break down a cold start")
    args = parser.parse_args(argv)
    store = args.store.resolve()
    fx = build(store)
    manifest, context = fx.runtime.manifest, LambdaContext()
    v2_event, openai_event = V2.event(manifest, [SINGLE]), OPENAI.event(manifest, [SINGLE])

    def v2() -> object:
        return fx.handler(v2_event, context)

    def openai() -> object:
        return fx.handler(openai_event, context)

    plane = DataPlane(fx.registry, fx.settings)

    def v2_direct() -> object:
        return direct_infer(plane, v2_event)

    feeds = _feeds(fx.runtime)

    def engine_alone() -> object:
        return fx.runtime.session.run([fx.runtime.engine_output], feeds)

    variants = [
        Variant("session.run alone, same session", engine_alone),
        Variant("V2 as is", v2),
        Variant("V2, json.dumps -> pydantic_core.to_json", v2, fast_json),
        Variant("V2, Mangum access log off", v2, no_access_log),
        Variant("V2, both", v2, both),
        Variant("V2, direct adapter (prototype)", v2_direct),
        Variant("V2, direct adapter + to_json", v2_direct, fast_json),
        Variant("OpenAI as is", openai),
    ]
    with console.status("tracing requests in place"):
        results = run_traced(fx, variants, args.iterations)
    report_segments(f"V2 infer, one sentence, in place ({args.iterations} requests)", results["V2 as is"])
    report_segments(f"/v1/embeddings, one sentence, in place ({args.iterations} requests)", results["OpenAI as is"])
    report_segments(
        f"V2 infer through the direct adapter prototype with to_json, in place ({args.iterations} requests)",
        results["V2, direct adapter + to_json"],
    )
    report_variants(results, "V2 as is", "session.run alone, same session")
    report_hot(fx)
    if args.cprofile:
        hottest(v2, 1000, args.cprofile)
    if args.cold:
        report_cold(store, fx)
        report_cold_probes(store, fx, runs=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
