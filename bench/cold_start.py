"""Cold starts: run the fresh-process probes of bench/text_probes.py and read their timestamps back."""

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

from aimass.settings import Settings
from aimass.store import ModelArtifact
from bench.text_workload import HANDLER_FILE, REPO, SENTENCES, SINGLE, V2, session_options_spec

PROBES = Path(__file__).resolve().parent / "text_probes.py"
HANDLER = "cold-handler"  # the Lambda handler as deployed (model load overlapping the imports)
HANDLER_SPLIT = "cold-handler-split"  # the same, imports first and then the load: each phase's own cost
FLOOR = "cold-floor"  # the raw engine


@dataclass(frozen=True)
class ColdRun:
    wall_s: float  # Popen to the answer read back: what the caller of a cold function waits for
    interpreter_s: float
    imports_s: float
    model_load_s: float
    first_run_s: float
    head: list[float]  # the first values of the embedding, to check every kind computed the same


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
    kinds: Sequence[str], specs: dict[str, Path], env: dict[str, str], scratch: Path, runs: int
) -> dict[str, list[ColdRun]]:
    """Alternate the kinds run by run, after one discarded round that warms the page cache."""
    for kind in kinds:
        cold_run(kind, specs[kind], env, scratch)
    results: dict[str, list[ColdRun]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind in kinds:
            results[kind].append(cold_run(kind, specs[kind], env, scratch))
    reference = results[kinds[0]][0].head
    for kind in kinds[1:]:
        head = results[kind][0].head
        if any(abs(a - b) > 1e-5 for a, b in zip(reference, head, strict=True)):
            raise RuntimeError(f"{kinds[0]} and {kind} computed different embeddings: {reference} vs {head}")
    return results


def median_breakdown(runs: list[ColdRun]) -> dict[str, float]:
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
    artifact: ModelArtifact, settings: Settings, scratch: Path, *, warmup: int, batches: int
) -> dict[str, Path]:
    """One JSON spec per probe: a probe must not import the project to learn what to do."""
    manifest = artifact.manifest
    pre = manifest.preprocessing
    event = V2.event(manifest, [SINGLE])
    handler = {"handler_dir": str(HANDLER_FILE.parent), "repo": str(REPO), "route": V2.name, "event": event}
    floor = {
        "model": str(artifact.directory / manifest.engine.file),
        "tokenizer": str(artifact.directory / pre["tokenizer"]),
        "max_length": pre["max_length"],
        "pad_id": pre.get("pad_id", 0),
        "pad_token": pre.get("pad_token", "[PAD]"),
        "options": session_options_spec(settings),
        "text": SINGLE,
        "output": manifest.engine.outputs[0].name,
        "feeds": [spec.name for spec in manifest.engine.inputs],
    }
    rss = {
        **handler,
        "batch_event": V2.event(manifest, list(SENTENCES[:32])),
        "warmup": warmup,
        "batches": batches,
    }
    return {
        HANDLER: _write(scratch, HANDLER, handler),
        HANDLER_SPLIT: _write(scratch, HANDLER_SPLIT, {**handler, "split": True}),
        FLOOR: _write(scratch, FLOOR, floor),
        "peak-rss": _write(scratch, "peak-rss", rss),
    }
