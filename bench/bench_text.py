"""Measure the text domain on this machine: what the serving stack adds over the bare engine.

    python bench/bench_text.py [--store model_store] [--out bench/results.json] [--quick]

Warm latency of one sentence through the Lambda handler, the local HTTP server and the raw ONNX Runtime
session; cold start against a raw-engine floor; throughput at batch 1, 8 and 32; peak memory. Prints a
table and merges the ``"text"`` entry of the results file. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402

from aimass.errors import AimassError  # noqa: E402
from aimass.lambda_context import LocalLambdaContext  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from aimass.store import ModelArtifact  # noqa: E402
from bench import cold_start  # noqa: E402
from bench.common import (  # noqa: E402
    Stats,
    cpu_busy,
    free_port,
    load_average,
    machine_info,
    make_console,
    merge_results,
    rate,
    sample_interleaved,
)
from bench.text_workload import (  # noqa: E402
    DOMAIN,
    OPENAI,
    SENTENCES,
    SINGLE,
    V2,
    Handler,
    RawEngine,
    Route,
    find_model,
    handler_env,
    load_handler,
)

HEADLINE = V2  # the route whose numbers are the headline keys; see README "Which request"
BATCHES = (1, 8, 32)
TARGET_ADDED_P50_MS = 0.25
TARGET_COLD_RATIO = 1.3
BUSY_WARNING = 0.1  # share of the CPUs already busy before the start that makes the numbers suspect
console = make_console()


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
    warm: dict[str, Stats]
    cold: dict[str, list[cold_start.ColdRun]]
    memory: dict[str, float]
    throughput: tuple[dict[str, float], dict[str, float]]
    sentence_tokens: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store directory")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "results.json", help="results file")
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a smoke run, noisier numbers")
    return parser.parse_args(argv)


# --- Warm path ----------------------------------------------------------------------------------------


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, as a real client with connection reuse would hold."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> bytes:
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()  # read it all, or the connection cannot be reused
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}: {data[:500]!r}")
        return data

    def close(self) -> None:
        self.connection.close()


@contextmanager
def local_server(store: Path, env: dict[str, str], log: Path) -> Iterator[KeepAliveClient]:
    """`aimass serve` in its own process, as `make serve` runs it, and a keep-alive client to it."""
    port = free_port()
    command = [sys.executable, "-m", "aimass.cli", "serve", "--port", str(port), "--store", str(store)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(port, process, log)
        client = KeepAliveClient(port)
        try:
            yield client
        finally:
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s:\n{log.read_text()[-2000:]}")


def _check_same_answer(route: Route, body: bytes | str, expected: np.ndarray[Any, Any], where: str) -> None:
    """Refuse to time a path that does not compute the same embedding as the raw engine."""
    got = route.embeddings(body)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-5):
        raise RuntimeError(f"{where} answered a different embedding than the raw engine")


def _lambda_call(handler: Handler, event: dict[str, Any]) -> Callable[[], object]:
    context = LocalLambdaContext()

    def call() -> object:
        response = handler(event, context)
        if response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response['body'][:500]}")
        return response

    return call


def _server_call(client: KeepAliveClient, path: str, body: bytes) -> Callable[[], bytes]:
    return lambda: client.post(path, body)


def measure_warm(
    handler: Handler, engine: RawEngine, client: KeepAliveClient, artifact: ModelArtifact, plan: Plan
) -> dict[str, Stats]:
    """One sentence through every path, interleaved: raw engine, handler and server, both routes."""
    manifest = artifact.manifest
    feeds = engine.feeds([SINGLE])  # tokenised once: the floor is session.run alone
    expected = engine.run(feeds)
    paths: dict[str, Callable[[], object]] = {
        "raw": lambda: engine.run(feeds),  # the handler's own session
        "raw_separate_session": lambda: engine.run(feeds, engine.separate_session),
    }
    for route in (V2, OPENAI):
        event = route.event(manifest, [SINGLE])
        _check_same_answer(route, handler(event, LocalLambdaContext())["body"], expected, f"handler {route.name}")
        paths[f"handler_{route.name}"] = _lambda_call(handler, event)
        server_call = _server_call(client, route.path(manifest.name), route.body(manifest, [SINGLE]))
        _check_same_answer(route, server_call(), expected, f"server {route.name}")
        paths[f"server_{route.name}"] = server_call
    samples = sample_interleaved(paths, iterations=plan.iterations, warmup=plan.warmup)
    return {name: Stats.of(values) for name, values in samples.items()}


# --- Throughput ---------------------------------------------------------------------------------------


def _batches(size: int) -> list[list[str]]:
    """Rotating windows over the sentences, so that padding lengths vary from batch to batch."""
    count = len(SENTENCES)
    return [[SENTENCES[(start + i) % count] for i in range(size)] for start in range(0, count, max(1, size // 4))]


def measure_throughput(
    handler: Handler, engine: RawEngine, artifact: ModelArtifact, plan: Plan
) -> tuple[dict[str, float], dict[str, float]]:
    """Items per second through the handler and through the engine alone (tokenise + run)."""
    through_handler: dict[str, float] = {}
    through_engine: dict[str, float] = {}
    for size in BATCHES:
        batches = _batches(size)
        calls = [_lambda_call(handler, HEADLINE.event(artifact.manifest, batch)) for batch in batches]
        for call in calls:  # warm-up: the first run of a new shape is slower in ONNX Runtime
            call()

        def via_handler(i: int, calls: list[Callable[[], object]] = calls) -> object:
            return calls[i % len(calls)]()

        def via_engine(i: int, batches: list[list[str]] = batches) -> object:
            return engine.predict(batches[i % len(batches)])

        through_handler[str(size)] = rate(via_handler, seconds=plan.throughput_s)[0] * size
        through_engine[str(size)] = rate(via_engine, seconds=plan.throughput_s)[0] * size
    return through_handler, through_engine


# --- Fresh processes: cold start and peak memory -----------------------------------------------------


def measure_peak_rss(spec: Path, env: dict[str, str], scratch: Path) -> dict[str, float]:
    _, _, payload = cold_start.run_probe("peak-rss", spec, env, scratch)
    return {key: float(value) for key, value in payload.items()}


# --- Report -------------------------------------------------------------------------------------------


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits)


def assemble(measured: Measurements, context: dict[str, Any]) -> dict[str, Any]:
    """The "text" entry of results.json: the headline keys first, then what they were measured on."""
    warm, cold, memory = measured.warm, measured.cold, measured.memory
    raw = warm["raw"]
    handler, server = warm[f"handler_{HEADLINE.name}"], warm[f"server_{HEADLINE.name}"]
    handler_cold = cold_start.median_breakdown(cold[cold_start.HANDLER])
    floor_cold = cold_start.median_breakdown(cold[cold_start.FLOOR])
    split_cold = cold_start.median_breakdown(cold[cold_start.HANDLER_SPLIT])
    through_handler, through_engine = measured.throughput
    return {
        "handler_added_p50_ms": _r(handler.p50_ms - raw.p50_ms),
        "handler_added_p99_ms": _r(handler.p99_ms - raw.p99_ms),
        "server_added_p50_ms": _r(server.p50_ms - raw.p50_ms),
        "cold_start_s": _r(handler_cold["wall_s"]),
        "cold_start_floor_s": _r(floor_cold["wall_s"]),
        "cold_start_ratio": _r(handler_cold["wall_s"] / floor_cold["wall_s"]),
        "peak_rss_mb": _r(memory["peak_rss_mb"], 1),
        "throughput": {size: _r(value, 1) for size, value in through_handler.items()},
        # Context for the numbers above.
        "route": f"{HEADLINE.name}: POST {HEADLINE.path('<model>')} (HTTP API v2 event, one sentence)",
        "raw_p50_ms": _r(raw.p50_ms),
        "raw_p99_ms": _r(raw.p99_ms),
        # A second session of the same model and options, built after the handler's: not the floor.
        "raw_separate_session_p50_ms": _r(warm["raw_separate_session"].p50_ms),
        "handler_p50_ms": _r(handler.p50_ms),
        "handler_p99_ms": _r(handler.p99_ms),
        "server_p50_ms": _r(server.p50_ms),
        "server_p99_ms": _r(server.p99_ms),
        "openai": {
            "handler_p50_ms": _r(warm["handler_openai"].p50_ms),
            "handler_added_p50_ms": _r(warm["handler_openai"].p50_ms - raw.p50_ms),
            "handler_added_p99_ms": _r(warm["handler_openai"].p99_ms - raw.p99_ms),
            "server_p50_ms": _r(warm["server_openai"].p50_ms),
            "server_added_p50_ms": _r(warm["server_openai"].p50_ms - raw.p50_ms),
        },
        # Phases of the handler's cold start, measured one after another (the deployed handler overlaps
        # the model load with the imports, so its own run cannot be split): where the time goes.
        "cold_start_breakdown": {k: _r(v) for k, v in split_cold.items()},
        "cold_start_floor_breakdown": {k: _r(v) for k, v in floor_cold.items() if k != "wall_s"},
        "throughput_engine": {size: _r(value, 1) for size, value in through_engine.items()},
        "peak_rss_after_load_mb": _r(memory["peak_rss_after_load_mb"], 1),
        "rss_after_requests_mb": _r(memory["rss_after_requests_mb"], 1),
        "targets": {"handler_added_p50_ms": TARGET_ADDED_P50_MS, "cold_start_ratio": TARGET_COLD_RATIO},
        "passed": {
            "handler_added_p50_ms": handler.p50_ms - raw.p50_ms <= TARGET_ADDED_P50_MS,
            "cold_start_ratio": handler_cold["wall_s"] / floor_cold["wall_s"] <= TARGET_COLD_RATIO,
        },
        **context,
    }


def _verdict(passed: bool) -> str:
    return "[green]PASS[/]" if passed else "[red]FAIL[/]"


def print_report(results: dict[str, Any], warm: dict[str, Stats]) -> None:
    raw = warm["raw"]
    latency = Table(title=f"Warm latency, one sentence ({results['iterations']} interleaved samples per path)")
    for column in ("path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"):
        latency.add_column(column, justify="left" if column == "path" else "right")
    labels = {
        "raw": "raw session.run (floor: the handler's session)",
        "raw_separate_session": "raw session.run, a second session",
        "handler_v2": "Lambda handler, V2 infer",
        "handler_openai": "Lambda handler, /v1/embeddings",
        "server_v2": "local server, V2 infer",
        "server_openai": "local server, /v1/embeddings",
    }
    for name, label in labels.items():
        stats = warm[name]
        added = (
            ("-", "-") if name == "raw" else (f"{stats.p50_ms - raw.p50_ms:+.3f}", f"{stats.p99_ms - raw.p99_ms:+.3f}")
        )
        latency.add_row(label, f"{stats.p50_ms:.3f}", f"{stats.p99_ms:.3f}", *added)
    console.print(latency)

    cold = Table(title=f"Cold start, median of {results['cold_start_runs']} fresh processes (seconds)")
    for column in ("", "interpreter", "imports", "model load", "first run", "total"):
        cold.add_column(column, justify="left" if not column else "right")
    for label, key, total in (
        (
            "Lambda handler (phases one after another)",
            "cold_start_breakdown",
            results["cold_start_breakdown"]["wall_s"],
        ),
        ("Lambda handler as deployed (load beside imports)", None, results["cold_start_s"]),
        ("raw engine (floor)", "cold_start_floor_breakdown", results["cold_start_floor_s"]),
    ):
        if key is None:
            cold.add_row(label, "", "", "", "", f"{total:.3f}")
            continue
        parts = results[key]
        cold.add_row(
            label,
            *(f"{parts[k]:.3f}" for k in ("interpreter_s", "imports_s", "model_load_s", "first_run_s")),
            f"{total:.3f}",
        )
    console.print(cold)

    rates = Table(title=f"Throughput through the handler ({HEADLINE.name} route), items/s")
    for column in ("batch", "handler", "engine only (tokenise + run)", "handler / engine"):
        rates.add_column(column, justify="right")
    for size, value in results["throughput"].items():
        engine = results["throughput_engine"][size]
        rates.add_row(size, f"{value:.1f}", f"{engine:.1f}", f"{value / engine:.0%}")
    console.print(rates)

    summary = Table(title="Targets")
    for column in ("metric", "value", "target", "verdict"):
        summary.add_column(column, justify="left" if column == "metric" else "right")
    passed = results["passed"]
    summary.add_row(
        "handler added p50 (ms)", f"{results['handler_added_p50_ms']:.3f}", f"<= {TARGET_ADDED_P50_MS}",
        _verdict(passed["handler_added_p50_ms"]),
    )  # fmt: skip
    summary.add_row(
        "cold start / floor", f"{results['cold_start_ratio']:.2f}x", f"<= {TARGET_COLD_RATIO}x",
        _verdict(passed["cold_start_ratio"]),
    )  # fmt: skip
    summary.add_row("handler added p99 (ms)", f"{results['handler_added_p99_ms']:.3f}", "-", "")
    summary.add_row("server added p50 (ms)", f"{results['server_added_p50_ms']:.3f}", "-", "")
    summary.add_row("peak RSS (MB)", f"{results['peak_rss_mb']:.1f}", "-", "")
    console.print(summary)


# --- Main ---------------------------------------------------------------------------------------------


def measure_all(artifact: ModelArtifact, settings: Settings, store: Path, plan: Plan) -> Measurements:
    """Fresh processes first, while this one is still idle; then the warm paths in this process."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="aimass-bench-") as tmp:
        scratch = Path(tmp)
        specs = cold_start.write_specs(artifact, settings, scratch, warmup=plan.warmup, batches=plan.rss_batches)
        with console.status("cold start: fresh processes"):
            kinds = (cold_start.HANDLER, cold_start.FLOOR, cold_start.HANDLER_SPLIT)
            cold = cold_start.measure(kinds, specs, env, scratch, plan.cold_runs)
        with console.status("peak memory"):
            memory = measure_peak_rss(specs["peak-rss"], env, scratch)
        with console.status("warm latency: loading"):
            loaded = load_handler()
            handler = loaded.handler
            engine = RawEngine(artifact, settings, session=loaded.sessions[0])
        with local_server(store, env, scratch / "server.log") as client, console.status("warm latency"):
            warm = measure_warm(handler, engine, client, artifact, plan)
    with console.status("throughput"):
        throughput = measure_throughput(handler, engine, artifact, plan)
    tokens = int(engine.feeds([SINGLE])["attention_mask"].sum())
    return Measurements(warm=warm, cold=cold, memory=memory, throughput=throughput, sentence_tokens=tokens)


def run_context(
    args: argparse.Namespace, plan: Plan, artifact: ModelArtifact, settings: Settings, tokens: int
) -> dict[str, Any]:
    return {
        "mode": "quick" if args.quick else "full",
        "sentence": SINGLE,
        "sentence_tokens": tokens,
        "iterations": plan.iterations,
        "cold_start_runs": plan.cold_runs,
        "throughput_seconds_per_batch": plan.throughput_s,
        "intra_op_threads": settings.intra_op_threads,
        "inter_op_threads": settings.inter_op_threads,
        "model": f"{artifact.manifest.name}/{artifact.manifest.version}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    store = args.store.resolve()
    try:
        artifact = find_model(store)  # verifies every file's sha256 once, up front
    except AimassError as exc:
        console.print(f"[red]{exc.message}[/]")
        return 2
    # The handler reads its settings from the environment, as in Lambda; every process here inherits it.
    os.environ.update(handler_env(store))
    settings = Settings()
    busy, load = cpu_busy(), load_average()
    busy_text = "unknown" if busy is None else f"{busy:.0%}"
    console.print(
        f"[bold]text bench[/] ({'quick' if args.quick else 'full'}): {artifact.manifest.name} "
        f"v{artifact.manifest.version}, {os.cpu_count()} CPUs, {busy_text} busy before the start"
    )

    measured = measure_all(artifact, settings, store, plan)
    context = run_context(args, plan, artifact, settings, measured.sentence_tokens)
    context["machine"] = {
        **machine_info(["onnxruntime", "numpy", "tokenizers", "fastapi", "starlette", "mangum", "pydantic"]),
        "cpu_busy_before": busy,
        "load_average_start": load,
        "load_average_end": load_average(),
    }
    results = assemble(measured, context)
    print_report(results, measured.warm)
    if busy is not None and busy > BUSY_WARNING:
        console.print(f"[yellow]the CPUs were {busy_text} busy before the start: expect noisier numbers[/]")
    merge_results(args.out, DOMAIN, results)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
