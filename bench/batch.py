"""Batch throughput against the raw batched engine, per domain, on the same items and this machine.

    python bench/batch.py [--store model_store] [--out bench/records/batch.json] [--domains text vision ...]
                          [--items N] [--explore]

For each domain, its workload's items (``bench/workloads``) repeated to ``--items``:

* ``engine``: ``runtime.predict`` over every item, in their order, 256 a call (the runtime feeds the engine 32
  at a time, as the API does): what the engine does with no files, no JSON and no HTTP, run right before and
  after each batch run;
* ``batch``: the same items as a batch of V2 requests (``/v2/models/<name>/infer``, 32 items a line, 1,024
  observations for rl), from the moment it is created (its file read and sharded) until its output file is
  written, on one local worker: items per second, and its ratio to ``engine`` (target: at least 0.9 for text
  and vision, whose models cost milliseconds an item; speech's and rl's lines cost more to parse than their
  engine does, so their ratios are reported, not judged: bench/README.md, "Batches");
* speech also runs ``/v1/audio/transcriptions``, one 10-second WAV a line, against the runtime's own
  transcribe task on the same files: a batch of recordings, rather than of float arrays in JSON;
* text also runs OpenAI's ``/v1/embeddings`` with one sentence a line, the hardest case: a line's request
  would reach the engine alone, so the worker gathers consecutive lines into one engine batch
  (``aimass.batches.coalesce``), sorted by length, as OpenAI's own batch clients send them.

No GPU is used here; where one is at hand, the worker's CUDA provider figures go beside these. Exits 1 when a
target is missed (``--explore``: reports it, exits 0).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.batches.backends import open_batches, runner_factory  # noqa: E402
from aimass.batches.local import SQLiteBatchStore  # noqa: E402
from aimass.batches.pool import WorkerPool  # noqa: E402
from aimass.batches.service import BatchService, Endpoints  # noqa: E402
from aimass.files.factory import open_files  # noqa: E402
from aimass.http.app import batch_line_routes  # noqa: E402
from aimass.metering.keys import Caller  # noqa: E402
from aimass.serving.boot import load_models  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import cpu_busy, machine_info, make_console, merge_results  # noqa: E402
from bench.engine import silence_logs  # noqa: E402
from bench.targets import Target, add_explore_flag, at_least, exit_status, passed  # noqa: E402

CALLER = Caller(tenant="bench", key_id="bench", scopes=("invoke",), plan="default")
DEFAULT_ITEMS = {"text": 2048, "vision": 1024, "speech": 1024, "rl": 65536}
# Items a V2 line carries: 32 (a synchronous request's most) but for rl, whose policy answers in microseconds,
# so that a line's own cost is spread over enough observations to be seen against the engine's.
PER_LINE = {"text": 32, "vision": 32, "speech": 32, "rl": 1024}
AUDIO_FILES, AUDIO_SECONDS = 96, 10
ENGINE_CALL = 256
RATIO_TARGET = 0.9
JUDGED = ("text", "vision")  # the domains whose batches can reach the engine (see the docstring)


def targets(domain: str, result: dict[str, Any]) -> list[Target]:
    """Every run's ratio to the engine, for the domains judged."""
    if domain not in JUDGED:
        return []
    return [
        at_least(f"{domain} {name} ratio_to_engine", run["ratio_to_engine"], RATIO_TARGET)
        for name, run in batch_runs(result).items()
    ]


def batch_runs(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entry's batch runs, each measured against the engine, by name."""
    return {
        name: run
        for name, run in result.items()
        if isinstance(run, dict) and "items_per_s" in run and "ratio_to_engine" in run
    }


def run_domain(domain: str, store: Path, items_wanted: int) -> dict[str, Any]:
    workload = workloads.load(domain)
    scratch = Path(tempfile.mkdtemp(prefix=f"aimass-batch-{domain}-"))
    settings = Settings(
        model_store=store,
        domains=(domain,),
        state_dir=scratch,
        metering="off",
        alias_check_s=0,
        batch_workers=0,
    )
    registry = load_models(settings)
    runtime = next(r for r in registry.runtimes() if workload.model in (None, r.manifest.name))
    manifest = runtime.manifest
    base = list(workload.items())
    items = [base[n % len(base)] for n in range(items_wanted)]

    # In calls of 256 items (the runtime feeds the engine 32 at a time): what one call may decode is bounded
    # (vision's pixel budget), and 256 is already many engine batches.
    feeds = [workload.predict_inputs(manifest, items[n : n + ENGINE_CALL]) for n in range(0, len(items), ENGINE_CALL)]
    per_line = PER_LINE[domain]
    runtime.predict(workload.predict_inputs(manifest, items[:per_line]))  # warm: sessions, arenas

    def engine() -> float:
        started = time.perf_counter()
        for feed in feeds:
            runtime.predict(feed)
        return time.perf_counter() - started

    lines = [
        {
            "url": f"/v2/models/{manifest.name}/infer",
            "body": json.loads(workload.v2_request(manifest, items[n : n + per_line]).body),
        }
        for n in range(0, len(items), per_line)
    ]
    kinds = {f"v2_per_{per_line}": lines}
    if domain == "text":
        kinds["embeddings_per_1"] = [
            {"url": "/v1/embeddings", "body": {"model": manifest.name, "input": text}} for text in items
        ]
    result: dict[str, Any] = {"model": f"{manifest.name}@{manifest.version}", "items": len(items)}
    engine_runs: list[float] = []
    for name, kind in kinds.items():
        # The engine right before and after each batch: the ratio is taken against their mean, so that a
        # machine that slows or speeds up during the run does not pass for the batch's cost or gain.
        before = engine()
        run = _batch(settings, registry, kind, len(items))
        after = engine()
        engine_runs += [before, after]
        engine_rate = len(items) / ((before + after) / 2)
        run["engine_items_per_s"] = round(engine_rate, 2)
        run["ratio_to_engine"] = round(run["items_per_s"] / engine_rate, 3)
        result[name] = run
    result["engine"] = {
        "seconds": [round(seconds, 3) for seconds in engine_runs],
        "items_per_s": round(len(items) * len(engine_runs) / sum(engine_runs), 2),
    }
    if domain == "speech":
        result["transcriptions_per_1"] = _transcriptions(settings, registry, runtime)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def _transcriptions(settings: Settings, registry: Any, runtime: Any) -> dict[str, Any]:
    """Audio files, one a line, to /v1/audio/transcriptions, against the runtime's own transcribe task on the
    same files (decode, windows, engine): what a batch of recordings is, rather than V2 float arrays."""
    from bench.workloads.speech import SAMPLE_RATE, clip

    files = [
        _wav(np.concatenate([clip(f * AUDIO_SECONDS + n) for n in range(AUDIO_SECONDS)])) for f in range(AUDIO_FILES)
    ]
    encoded = [base64.b64encode(data).decode() for data in files]
    spec = runtime.tasks()["transcribe"]

    def engine() -> float:
        started = time.perf_counter()
        for data in encoded:
            spec.run(spec.request.model_validate({"file": data}))
        return time.perf_counter() - started

    name = runtime.manifest.name
    lines = [{"url": "/v1/audio/transcriptions", "body": {"model": name, "file": data}} for data in encoded]
    engine()  # warm
    before = engine()
    run = _batch(settings, registry, lines, len(files))
    after = engine()
    rate = len(files) / ((before + after) / 2)
    run.update(
        audio_seconds_per_file=AUDIO_SECONDS,
        sample_rate=SAMPLE_RATE,
        engine_items_per_s=round(rate, 2),
        ratio_to_engine=round(run["items_per_s"] / rate, 3),
    )
    return run


def _wav(samples: Any) -> bytes:
    import wave

    from bench.workloads.speech import SAMPLE_RATE

    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def _batch(settings: Settings, registry: Any, lines: list[dict[str, Any]], items: int) -> dict[str, Any]:
    batches = open_batches(settings)
    files = open_files(settings)
    assert isinstance(batches.local, SQLiteBatchStore)
    make = runner_factory(settings, batch_line_routes(registry, settings), batches, files)
    runner, pool = make(), WorkerPool(batches.local, make, threads=0)
    service = BatchService(
        batches.store,
        batches.launcher,
        files,
        Endpoints(lambda: {r.manifest.name: r.manifest.domain for r in registry.runtimes()}),
        settings,
    )
    text = "\n".join(
        json.dumps({"custom_id": f"line-{n}", "method": "POST", **line}) for n, line in enumerate(lines)
    ).encode()
    source = files.put(CALLER.tenant, io.BytesIO(text), filename="bench.jsonl", purpose="batch", limit=len(text))
    started = time.perf_counter()
    batch = service.create(
        CALLER, input_file_id=source.id, endpoint=lines[0]["url"], completion_window="24h", metadata=None
    )
    while pool.step(runner):
        pass
    seconds = time.perf_counter() - started
    final = batches.store.get(CALLER.tenant, batch.id)
    assert final is not None and final.status == "completed" and final.failed == 0, final
    return {
        "lines": len(lines),
        "items_per_line": items // len(lines),
        "input_bytes": len(text),
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=Path("bench/records/batch.json"))
    parser.add_argument("--domains", nargs="*", default=list(DEFAULT_ITEMS))
    parser.add_argument("--items", type=int, default=0, help="items per domain (default: per domain)")
    add_explore_flag(parser)
    args = parser.parse_args()
    silence_logs()
    console = make_console()
    judged: list[Target] = []
    for domain in args.domains:
        busy = cpu_busy()
        result = run_domain(domain, args.store, args.items or DEFAULT_ITEMS[domain])
        result["machine"] = {**machine_info(["onnxruntime", "numpy"]), "cpu_busy_before": busy, "gpu": None}
        found = targets(domain, result)
        if found:
            result["targets"] = {"min_ratio_to_engine": RATIO_TARGET}
            result["passed"] = passed(found)
        judged += found
        merge_results(args.out, domain, result)
        runs = batch_runs(result)
        summary = ", ".join(f"{name} {run['items_per_s']}/s ({run['ratio_to_engine']}x)" for name, run in runs.items())
        console.print(f"[bold]{domain}[/]: engine {result['engine']['items_per_s']}/s; batch {summary}")
    console.print(f"saved {args.out}")
    return exit_status(judged, explore=args.explore, console=console, script="bench/batch.py")


if __name__ == "__main__":
    raise SystemExit(main())
