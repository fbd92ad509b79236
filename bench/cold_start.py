"""Cold starts: run the fresh-process probes of bench/probes.py and read their timestamps back."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimass.serving.runtime import ModelRuntime
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from bench.engine import handler_file, session_options_spec
from bench.workload import REPO, Workload, api_gateway_event

PROBES = Path(__file__).resolve().parent / "probes.py"
HANDLER = "cold-handler"  # the Lambda handler as deployed (model load overlapping the imports)
HANDLER_SPLIT = "cold-handler-split"  # the same, imports first and then the load: each phase's own cost
FLOOR = "cold-floor"  # the raw engine
PEAK_RSS = "peak-rss"
KINDS = (HANDLER, FLOOR, HANDLER_SPLIT)


@dataclass(frozen=True)
class ColdRun:
    wall_s: float  # Popen to the answer read back: what the caller of a cold function waits for
    interpreter_s: float
    imports_s: float
    model_load_s: float
    first_run_s: float
    head: list[float]  # the first values of the first numeric output, to check every kind computed the same


def run_probe(kind: str, spec: Path, env: dict[str, str], scratch: Path) -> tuple[float, float, dict[str, Any]]:
    """Run one probe; return the perf_counter stamps around it and its JSON line."""
    errors = scratch / f"{kind}.stderr"
    with errors.open("wb") as stderr:
        popened = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(PROBES), kind, str(spec)], stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        answered = time.perf_counter()
        process.stdout.close()
        code = process.wait(timeout=120)
    if code != 0 or not line:
        raise RuntimeError(f"probe {kind} failed ({code}):\n{errors.read_text()[-3000:]}")
    payload: dict[str, Any] = json.loads(line)
    return popened, answered, payload


def cold_run(kind: str, spec: Path, env: dict[str, str], scratch: Path) -> ColdRun:
    popened, answered, stamps = run_probe(kind, spec, env, scratch)
    return ColdRun(
        wall_s=answered - popened,
        interpreter_s=stamps["started"] - popened,
        imports_s=stamps["imported"] - stamps["started"],
        model_load_s=stamps["loaded"] - stamps["imported"],
        first_run_s=stamps["answered"] - stamps["loaded"],
        head=stamps["head"],
    )


def measure(
    workload: Workload[Any], specs: dict[str, Path], env: dict[str, str], scratch: Path, runs: int
) -> dict[str, list[ColdRun]]:
    """Alternate the kinds run by run, after one discarded round that warms the page cache."""
    for kind in KINDS:
        cold_run(kind, specs[kind], env, scratch)
    results: dict[str, list[ColdRun]] = {kind: [] for kind in KINDS}
    for _ in range(runs):
        for kind in KINDS:
            results[kind].append(cold_run(kind, specs[kind], env, scratch))
    reference = results[KINDS[0]][0].head
    for kind in KINDS[1:]:
        head = results[kind][0].head
        if len(head) != len(reference) or any(
            abs(a - b) > workload.atol + workload.rtol * abs(b) for a, b in zip(head, reference, strict=True)
        ):
            raise RuntimeError(f"{KINDS[0]} and {kind} computed different answers: {reference} vs {head}")
    return results


def median_breakdown(runs: Sequence[ColdRun]) -> dict[str, float]:
    """Each phase's median on its own: the phases need not add up exactly to the median wall time."""
    return {
        "wall_s": statistics.median(r.wall_s for r in runs),
        "interpreter_s": statistics.median(r.interpreter_s for r in runs),
        "imports_s": statistics.median(r.imports_s for r in runs),
        "model_load_s": statistics.median(r.model_load_s for r in runs),
        "first_run_s": statistics.median(r.first_run_s for r in runs),
    }


def _write(scratch: Path, name: str, spec: dict[str, Any]) -> Path:
    path = scratch / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def write_specs(
    workload: Workload[Any],
    artifact: ModelArtifact,
    runtime: ModelRuntime,
    settings: Settings,
    scratch: Path,
    *,
    warmup: int,
    batches: int,
) -> dict[str, Path]:
    """One JSON spec per probe: a probe must not import the project to learn what to do."""
    manifest = artifact.manifest
    items = workload.items()
    route = workload.v2_route()
    handler = {
        "domain": workload.domain,
        "handler_dir": str(handler_file(workload.domain).parent),
        "model": manifest.name,
        "event": api_gateway_event(route.template, route.request(manifest, items[:1])),
    }
    floor = {
        "domain": workload.domain,
        "repo": str(REPO),
        "model": str(artifact.directory / manifest.engine.file),
        "options": session_options_spec(settings),
        "outputs": [spec.name for spec in manifest.engine.outputs],
        "input": workload.floor_spec(artifact, runtime, items[0], scratch),
    }
    rss = {
        **handler,
        "batch_event": api_gateway_event(route.template, route.request(manifest, items[:32])),
        "warmup": warmup,
        "batches": batches,
    }
    return {
        HANDLER: _write(scratch, HANDLER, handler),
        HANDLER_SPLIT: _write(scratch, HANDLER_SPLIT, {**handler, "split": True}),
        FLOOR: _write(scratch, FLOOR, floor),
        PEAK_RSS: _write(scratch, PEAK_RSS, rss),
    }
