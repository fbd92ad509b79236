"""Where a warm handler's time over the raw engine goes: the serving code itself, or refilling the CPU's caches.

    python bench/warm_breakdown.py [--domains text vision ...] [--store model_store]
                                   [--out bench/records/warm_breakdown.json] [--quick]

``bench/run.py`` times one item through the Lambda handler against ``session.run`` on ready feeds, in a loop.
In that loop the engine runs back to back and nothing else runs between; in the handler, the serving code runs
right after the engine, which has just streamed its weights through the caches (text's: 90 MB of fp32).
This splits the handler's added p50. Per domain, interleaved, each timing taken after a set-up step it excludes:

* ``raw``: ``session.run`` on the feeds, as in ``bench/run.py``, timed right after another;
* ``handler``: the V2 event through the handler, timed right after a ``session.run``;
* ``stack_*``: the same event with the engine answering from a recording of its own answer (the serving code,
  the codec and the encoding run as ever; the engine's ``run`` returns at once), timed
  * ``stack_warm``: right after the same call (the caches as it leaves them),
  * ``stack_after_engine``: right after ``session.run`` (as in a request),
  * ``stack_after_sweep``: right after summing a 64 MB array (every cache level evicted).

There is no target: the record explains ``bench/run.py``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script, the repository root is not on sys.path
    sys.path.insert(0, str(_REPO))

from aimass.lambda_context import LocalLambdaContext  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import (  # noqa: E402
    Stats,
    load_average,
    machine_info,
    make_console,
    merge_results,
    sample_interleaved,
    swapped,
)
from bench.engine import RawEngine, environment, find_model, handler_env, load_handler  # noqa: E402
from bench.workload import Workload, api_gateway_event  # noqa: E402

SWEEP_BYTES = 64 * 2**20  # larger than any cache level of a server CPU's core share
PLANS = {"full": (1000, 100), "quick": (200, 20)}  # iterations, warm-up
console = make_console()


def recording(run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` once per distinct request of outputs; then its recorded answer, at once."""
    answers: dict[tuple[str, ...], Any] = {}

    def recorded(output_names: Sequence[str], feeds: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        key = tuple(output_names)
        if key not in answers:
            answers[key] = run(output_names, feeds, *args, **kwargs)
        return answers[key]

    return recorded


def measure(workload: Workload[Any], store: Path, iterations: int, warmup: int) -> dict[str, Any]:
    artifact = find_model(store, workload)
    with environment(handler_env(store, workload.domain)):
        loaded = load_handler(workload.domain)
        engine = RawEngine(artifact, Settings(), loaded.sessions)
    single = workload.items()[:1]
    feeds = workload.engine_feeds(engine.runtime, single)
    route = workload.v2_route()
    event = api_gateway_event(route.template, route.request(artifact.manifest, single))
    context = LocalLambdaContext()
    sweep_area = np.ones(SWEEP_BYTES // 8)

    def handler() -> None:
        response = loaded.handler(event, context)
        if response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response['body'][:300]}")

    def sweep() -> None:
        sweep_area.sum()

    session = engine.session
    stack_run = recording(session.run)

    def stack() -> None:
        with swapped(session, "run", stack_run):
            handler()

    def raw() -> None:
        engine.run(feeds)

    paths = {
        "raw": raw,
        "handler": handler,
        "stack_warm": stack,
        "stack_after_engine": stack,
        "stack_after_sweep": stack,
    }
    # What each starts from. raw and handler both follow an engine run, as in a loop of requests.
    setups = {"raw": raw, "handler": raw, "stack_warm": stack, "stack_after_engine": raw, "stack_after_sweep": sweep}
    samples = sample_interleaved(paths, iterations=iterations, warmup=warmup, setups=setups)
    stats = {name: Stats.of(values) for name, values in samples.items()}
    p50 = {name: s.p50_ms for name, s in stats.items()}
    return {
        "model": f"{artifact.manifest.name}/{artifact.manifest.version}",
        "route": "V2 infer, one item, HTTP API (v2) event",
        "handler_added_p50_ms": round(p50["handler"] - p50["raw"], 3),
        "p50_ms": {name: round(value, 3) for name, value in p50.items()},
        "iterations": iterations,
        "sweep_mb": SWEEP_BYTES // 2**20,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["text", "vision", "speech", "rl", "tensor"])
    parser.add_argument("--store", type=Path, default=_REPO / "model_store")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "warm_breakdown.json")
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a smoke run, noisier numbers")
    args = parser.parse_args(argv)
    iterations, warmup = PLANS["quick" if args.quick else "full"]
    for domain in args.domains:
        load = load_average()  # as this domain's turn begins
        entry = measure(workloads.load(domain), args.store.resolve(), iterations, warmup)
        entry["machine"] = {**machine_info(("onnxruntime", "numpy")), "load_average_start": load}
        p50 = entry["p50_ms"]
        console.print(
            f"{domain:7s} handler added {entry['handler_added_p50_ms']:.3f} ms; the serving code alone "
            f"{p50['stack_warm']:.3f} ms with warm caches, {p50['stack_after_engine']:.3f} ms after an engine run, "
            f"{p50['stack_after_sweep']:.3f} ms after a cache sweep"
        )
        merge_results(args.out.resolve(), domain, entry)
    console.print(f"wrote {args.out} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
