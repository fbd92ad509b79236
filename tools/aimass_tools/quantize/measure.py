"""How a compressed version compares with its base: agreement of outputs, latency, the quality targets."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aimass.serving.runtime import ModelRuntime
from aimass.store.manifest import ModelManifest
from aimass_tools.quantize.evaluation import Evaluation, Inputs

CLASS_OUTPUTS = ("logits", "probabilities")  # output names that mark per-class scores


@dataclass(frozen=True)
class Targets:
    """What a mode must reach to be worth serving; ``None``: no target for that number."""

    engine_ratio: float | None  # base engine bytes / new engine bytes
    latency_ratio: float | None  # base p50 / new p50 of one-item predict calls
    cosine_mean: float = 0.99  # each float output that does not score classes, to the base's
    top1_agreement: float = 0.99  # each output that scores classes


# fp16 has no latency target: ONNX Runtime's CPU kernels are mostly FP32, so fp16 saves bytes, not time, here.
TARGETS: dict[str, Targets] = {
    "int8-dynamic": Targets(engine_ratio=3.5, latency_ratio=1.5),
    "int8-static": Targets(engine_ratio=3.5, latency_ratio=1.5),
    "fp16": Targets(engine_ratio=1.9, latency_ratio=None),
}


def per_class(manifest: ModelManifest, runtime: ModelRuntime) -> set[str]:
    """Float outputs that score classes: one column per label, named so, or served beside (class) tasks."""
    labels = len(manifest.labels or ())
    return {
        spec.name
        for spec in manifest.outputs
        if spec.datatype in ("FP16", "FP32", "FP64")
        and len(spec.shape) >= 2
        and ((labels > 1 and spec.shape[-1] == labels) or spec.name in CLASS_OUTPUTS or bool(runtime.tasks()))
    }


def agreement(base: Sequence[Inputs], new: Sequence[Inputs], classes: set[str]) -> dict[str, dict[str, Any]]:
    """Per float output: each row's cosine to the base row (mean, min), the largest difference, top-1 agreement."""
    report: dict[str, dict[str, Any]] = {}
    for name in base[0]:
        want = np.concatenate([np.asarray(outputs[name]) for outputs in base])
        got = np.concatenate([np.asarray(outputs[name]) for outputs in new])
        if want.dtype.kind != "f":
            continue
        want, got = want.astype(np.float64), got.astype(np.float64)
        rows_want, rows_got = want.reshape(len(want), -1), got.reshape(len(got), -1)
        norms = np.linalg.norm(rows_want, axis=1) * np.linalg.norm(rows_got, axis=1)
        cosine = (rows_want * rows_got).sum(axis=1) / np.maximum(norms, 1e-12)
        entry: dict[str, Any] = {
            "cosine_mean": rounded(cosine.mean()),
            "cosine_min": rounded(cosine.min()),
            "max_abs_diff": rounded(np.abs(got - want).max()),
        }
        if name in classes and want.shape[-1] > 1:
            same = want.argmax(axis=-1) == got.argmax(axis=-1)
            ranked = np.sort(want, axis=-1)
            gaps = (ranked[..., -1] - ranked[..., -2])[~same]
            entry["top1_agreement"] = rounded(same.mean())
            entry["top1_changed"] = int((~same).sum())
            # How near a tie the base's own best two classes were where the answer changed.
            entry["changed_max_base_gap"] = rounded(gaps.max()) if gaps.size else None
        report[name] = entry
    return report


def quality_checks(quality: dict[str, dict[str, Any]], targets: Targets) -> list[tuple[str, float, float]]:
    """(metric, target, value) for each output: top-1 agreement where it scores classes, else mean cosine."""
    return [
        (f"{name} top-1 agreement", targets.top1_agreement, entry["top1_agreement"])
        if "top1_agreement" in entry
        else (f"{name} cosine mean", targets.cosine_mean, entry["cosine_mean"])
        for name, entry in quality.items()
    ]


def latency(base: ModelRuntime, new: ModelRuntime, evaluation: Evaluation, *, calls: int) -> dict[str, Any]:
    """Median one-item ``predict`` time of each version: every item in turn, the two interleaved, order alternated."""
    rounds = max(1, math.ceil(calls / len(evaluation.items)))
    runtimes = {"base": base, "new": new}
    times: dict[str, list[float]] = {"base": [], "new": []}
    for runtime in (base, new):  # the first calls allocate; a warm function does not pay that
        runtime.predict(evaluation.items[0])
    for turn in range(rounds):
        for index, item in enumerate(evaluation.items):
            for which in ("base", "new") if (turn + index) % 2 == 0 else ("new", "base"):
                started = time.perf_counter()
                runtimes[which].predict(item)
                times[which].append(time.perf_counter() - started)
    base_ms, new_ms = (float(np.median(times[which])) * 1e3 for which in ("base", "new"))
    return {
        "p50_ms_base": rounded(base_ms, 4),
        "p50_ms_new": rounded(new_ms, 4),
        "ratio": rounded(base_ms / new_ms, 3),
        "calls_each": len(times["base"]),
        "items_per_call": 1,
    }


def rounded(value: Any, digits: int = 6) -> float:
    return float(f"{float(value):.{digits}g}")
