"""A quantized version: compressed, loaded, measured against its base, validated, written for publishing."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime as ort

from aimass.errors import InvalidInput
from aimass.serving.domains import runtime_class
from aimass.serving.runtime import ModelRuntime
from aimass.serving.session import SessionFactory
from aimass.serving.validation import validate
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import ModelManifest, file_entry, write_manifest
from aimass_tools.quantize.evaluation import (
    Evaluation,
    Inputs,
    answer_recording,
    as_tensor,
    evaluation_inputs,
    samples_file,
)
from aimass_tools.quantize.graph import MODES, Compressor, Mode
from aimass_tools.quantize.measure import TARGETS, Targets, agreement, latency, per_class, quality_checks, rounded


def load_runtime(artifact: ModelArtifact, settings: Settings) -> ModelRuntime:
    manifest = artifact.manifest
    runtime = runtime_class(manifest.domain, manifest.engine.format)(artifact, SessionFactory(settings))
    runtime.load()
    return runtime


@dataclass(frozen=True)
class _Attempt:
    keep_float: list[str]
    engine: bytes
    method: str
    runtime: ModelRuntime
    artifact: ModelArtifact
    quality: dict[str, dict[str, Any]]

    def margin(self, targets: Targets) -> float:
        """The worst quality check's distance above its target (negative: a miss)."""
        return min((value - goal for _, goal, value in quality_checks(self.quality, targets)), default=0.0)


def quantize_version(
    artifact: ModelArtifact,
    target_dir: Path,
    mode: str,
    settings: Settings,
    *,
    evaluation: Sequence[Path] = (),
    latency_calls: int = 100,
) -> dict[str, Any]:
    """Write a ``mode``-compressed copy of ``artifact`` into the new folder ``target_dir``; return its report.

    The copy is a complete version folder (``store.publish`` numbers it): the engine file replaced, the
    samples' outputs recomputed by it, ``derived_from`` and ``compression`` set, ``quality`` carried over
    with the measured agreement added. It has been loaded through its domain runtime, measured, and has
    passed its validation samples when this returns.
    """
    base_manifest, targets = artifact.manifest, TARGETS.get(mode)
    if targets is None:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got '{mode}'", param="mode")
    if base_manifest.engine.format != "onnx":
        raise InvalidInput(
            f"model '{base_manifest.name}' is computed by {base_manifest.engine.format}, not an ONNX graph: only "
            "ONNX graphs are quantized",
            param="name",
        )
    if base_manifest.encryption is not None:
        raise InvalidInput(
            f"model '{base_manifest.name}' version {base_manifest.version} is encrypted: quantize the plain "
            "folder it was sealed from, then seal the result (aimass models encrypt)",
            param="version",
        )
    if target_dir.exists() and any(target_dir.iterdir()):
        raise InvalidInput(f"{target_dir} is not empty: quantize into a new folder", param="target_dir")
    target_dir.mkdir(parents=True, exist_ok=True)

    inputs = evaluation_inputs(artifact, evaluation)
    base = load_runtime(artifact, settings)
    base_outputs, feeds = answer_recording(base, inputs)
    classes = per_class(base_manifest, base)
    with tempfile.TemporaryDirectory(prefix="aimass-quantize-") as scratch:
        engine = artifact.read(base_manifest.engine.file)
        compressor = Compressor(engine, cast(Mode, mode), feeds, Path(scratch))
        best: _Attempt | None = None
        for keep_float in [[], *compressor.float_candidates()]:
            attempt = _attempt(artifact, target_dir, compressor, keep_float, settings, inputs, base_outputs, classes)
            if best is None or attempt.margin(targets) > best.margin(targets):
                best = attempt
            if attempt.margin(targets) >= 0:
                break
    assert best is not None
    # The folder holds the last attempt's graph; the best one's runtime holds its own session already.
    (target_dir / base_manifest.engine.file).write_bytes(best.engine)

    notes: dict[str, Any] = {}
    if (samples := samples_file(base_manifest)) is not None:
        (target_dir / samples).write_bytes(_rerecorded(best.artifact, best.runtime, samples))
        notes["samples"] = (
            f"{samples}: outputs recomputed by this version (version {base_manifest.version} has the base's)"
        )
    if best.keep_float:
        notes["kept_float"] = best.keep_float
    evaluated: dict[str, Any] = {"items": len(inputs.items), "sources": inputs.sources}
    if mode == "int8-static":
        evaluated["calibration"] = f"the {len(feeds)} engine feeds the base runtime sent for the evaluation inputs"
    report: dict[str, Any] = {
        "mode": mode,
        "method": best.method,
        "base_version": base_manifest.version,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "onnxruntime": ort.__version__,
        **notes,
        "evaluation": evaluated,
        "size": _sizes(base_manifest, _renewed(base_manifest, target_dir)),
        "latency": {
            **latency(base, best.runtime, inputs, calls=latency_calls),
            "intra_op_threads": settings.intra_op_threads,
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        },
        "quality": best.quality,
    }
    checks = [
        ("engine size ratio", targets.engine_ratio, report["size"]["engine_ratio"]),
        ("latency p50 ratio", targets.latency_ratio, report["latency"]["ratio"]),
        *quality_checks(best.quality, targets),
    ]
    report["targets"] = [
        {"metric": metric, "target": f">= {goal}", "value": value, "met": bool(value >= goal)}
        for metric, goal, value in checks
        if goal is not None
    ]
    report["targets_met"] = all(check["met"] for check in report["targets"])
    final = _renewed(base_manifest, target_dir, report=report)
    write_manifest(target_dir, final)
    validate(load_runtime(ModelArtifact(manifest=final, directory=target_dir), settings))
    return report


def _attempt(
    artifact: ModelArtifact,
    target_dir: Path,
    compressor: Compressor,
    keep_float: list[str],
    settings: Settings,
    inputs: Evaluation,
    base_outputs: list[Inputs],
    classes: set[str],
) -> _Attempt:
    """Write the version folder with this graph, load it through its runtime, compare its answers."""
    compressed, method = compressor.write(keep_float)
    engine = artifact.manifest.engine.file
    for entry in artifact.manifest.files:
        (target_dir / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (target_dir / entry.path).write_bytes(compressed if entry.path == engine else artifact.read(entry.path))
    new_artifact = ModelArtifact(manifest=_renewed(artifact.manifest, target_dir), directory=target_dir)
    runtime = load_runtime(new_artifact, settings)
    outputs = [runtime.predict(batch).outputs for batch in inputs.batches()]
    return _Attempt(keep_float, compressed, method, runtime, new_artifact, agreement(base_outputs, outputs, classes))


def _rerecorded(artifact: ModelArtifact, runtime: ModelRuntime, name: str) -> bytes:
    """The samples file with its outputs as the new version computes them: its validation runs against these."""
    document = json.loads(artifact.read(name))
    specs = {spec.name: spec for spec in artifact.manifest.inputs}
    inputs = {key: as_tensor(data, specs[key], f"{name}: {key}") for key, data in document["inputs"].items()}
    outputs = runtime.predict(inputs).outputs
    document["outputs"] = {key: np.asarray(outputs[key]).tolist() for key in document.get("outputs", outputs)}
    return (json.dumps(document) + "\n").encode()


def _renewed(base: ModelManifest, directory: Path, *, report: dict[str, Any] | None = None) -> ModelManifest:
    changes: dict[str, Any] = {
        "version": str(int(base.version) + 1),  # provisional: publish gives the version its number
        "files": tuple(file_entry(directory, entry.path) for entry in base.files),
        "derived_from": base.version,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if report is not None:
        changes["compression"] = report
        changes["quality"] = {**base.quality, "agreement_with_base": report["quality"]}
    return ModelManifest.model_validate({**base.model_dump(), **changes})


def _sizes(base: ModelManifest, new: ModelManifest) -> dict[str, Any]:
    engine_base, engine_new = base.file(base.engine.file).size, new.file(new.engine.file).size
    version_base, version_new = sum(f.size for f in base.files), sum(f.size for f in new.files)
    return {
        "engine_bytes_base": engine_base,
        "engine_bytes_new": engine_new,
        "engine_ratio": rounded(engine_base / engine_new, 4),
        "version_bytes_base": version_base,
        "version_bytes_new": version_new,
        "version_ratio": rounded(version_base / version_new, 4),
    }
