"""Quantized versions: a model version's engine graph made smaller, measured against the version it came from.

``quantize_version`` writes a new version folder (for ``store.publish``) whose engine is compressed in one of
three modes, and returns the report its manifest carries as ``compression``:

- ``int8-dynamic``: int8 weights (per output channel) of MatMul (Gemm too, rewritten as MatMul), Gather and
  the other ops ONNX Runtime's ``quantize_dynamic`` has fast kernels for; activations quantized on the fly.
  The mode for transformers. Convolutions stay float; a graph with no weights it quantizes is refused.
- ``int8-static``: int8 weights and activations (QDQ, per-channel int8 weights, uint8 activations), activation
  ranges calibrated on the very feeds the base version's runtime sends ONNX Runtime for the evaluation inputs.
- ``fp16``: float16 weights and arithmetic, with FP32 graph inputs and outputs: the served contract holds.

When an int8 graph misses a quality target, the earliest weighted nodes are kept in float one at a time
(at most ``MAX_FLOAT_NODES``, holding at most ``FLOAT_BUDGET`` of the weights) until the targets hold: early
layers see the raw input and pass their error to every later one. The report names the nodes kept.

Evaluation inputs are the version's samples plus any evaluation files given (``evaluation_inputs``). Both
versions answer them through their domain runtimes: quality compares the new outputs to the base ones,
latency is the median one-item ``predict`` call, base and new interleaved. Targets are stated and checked in
the report; a miss is reported with its numbers.

Operator tooling: the CLI and the bench import it; serving code never does (``onnx`` is a build dependency).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import onnxruntime as ort

from aimass.domains import runtime_class
from aimass.errors import InvalidInput, ModelLoadError
from aimass.manifest import ModelManifest, TensorSpec, file_entry, write_manifest
from aimass.protocol import v2_codec
from aimass.runtime import ModelRuntime, Tensor
from aimass.session import SessionFactory
from aimass.settings import Settings
from aimass.store import ModelArtifact
from aimass.validation import validate

Mode = Literal["int8-dynamic", "int8-static", "fp16"]
MODES: tuple[str, ...] = get_args(Mode)
Inputs = dict[str, Tensor]

BATCH = 16  # evaluation items per predict call when comparing outputs and recording feeds
CLASS_OUTPUTS = ("logits", "probabilities")  # output names that mark per-class scores
# quantize_dynamic can also do Conv (ConvInteger), which is slow on CPU and inaccurate: use int8-static there.
DYNAMIC_OPS = ("MatMul", "Gather", "Attention", "LSTM", "EmbedLayerNormalization")
# int8-static: weighted ops, the activations and pools that fuse with them, and data movement. Not Where, Add,
# Softmax or LayerNormalization: their inputs can span ranges int8 cannot hold (attention masks at the float
# minimum beside scores near zero), which wrecks a transformer.
STATIC_OPS = (
    "Conv", "Gemm", "MatMul", "Gather", "Clip", "Relu", "Pad", "GlobalAveragePool", "AveragePool", "MaxPool",
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Resize", "Concat", "Split", "Slice",
)  # fmt: skip
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul", "Gather")
MAX_FLOAT_NODES = 4
FLOAT_BUDGET = 0.01  # share of the weight bytes the nodes kept in float may hold
# layers/aimass/quantize.py -> the checkout root, where models/<domain>/<model>/ keep the builds.
CHECKOUT = Path(__file__).resolve().parents[2]


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


# --- evaluation inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Evaluation items (each a dict of served inputs, one row each) and where they came from."""

    items: list[Inputs]
    sources: list[str]

    def batches(self) -> list[Inputs]:
        """Runs of up to BATCH consecutive items that send the same inputs with the same item shapes."""
        groups: list[list[Inputs]] = []
        for item in self.items:
            if groups and len(groups[-1]) < BATCH and _form(groups[-1][0]) == _form(item):
                groups[-1].append(item)
            else:
                groups.append([item])
        return [{name: np.concatenate([item[name] for item in group]) for name in group[0]} for group in groups]


def _form(item: Inputs) -> list[tuple[str, tuple[int, ...]]]:
    return sorted((name, tensor.shape[1:]) for name, tensor in item.items())


def samples_file(manifest: ModelManifest) -> str | None:
    """The version's samples: its validation file, else a listed ``samples.json``."""
    listed = {entry.path for entry in manifest.files}
    return manifest.validation or ("samples.json" if "samples.json" in listed else None)


def evaluation_inputs(artifact: ModelArtifact, extra: Sequence[Path] = ()) -> Evaluation:
    """The version's sample inputs, then each ``extra`` JSON file's, without repeats.

    An extra file is samples-shaped (``{"inputs": {name: data}}``) or any JSON document whose lists hold
    values of the model's first served input: strings for BYTES, rows of the item shape for numbers (a
    build's ``eval.json`` of sentences and sentence pairs, say).
    """
    manifest, items, sources, seen = artifact.manifest, list[Inputs](), list[str](), set[str]()
    documents: list[tuple[str, Any]] = []
    if (samples := samples_file(manifest)) is not None:
        documents.append((samples, json.loads(artifact.read(samples))))
    documents += [(_shown(path), json.loads(path.read_text())) for path in extra]
    for source, document in documents:
        fresh = [item for item in _items(manifest, document, source) if _key(item) not in seen]
        seen.update(_key(item) for item in fresh)
        items += fresh
        sources.append(f"{source} ({len(fresh)} items)")
    if not items:
        raise InvalidInput(
            f"model '{manifest.name}' version {manifest.version} has no evaluation inputs: it lists no samples "
            "file and no evaluation file was given",
            param="evaluation",
        )
    return Evaluation(items, sources)


def build_evaluation(name: str, checkout: Path = CHECKOUT) -> list[Path]:
    """The ``eval.json`` the model's build keeps beside it (``models/<domain>/<model>/``), if any."""
    if not (checkout / "models" / "catalogue.py").is_file():
        return []  # not a checkout: no builds here
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    from models.catalogue import catalogue

    found = [entry.build_script.parent / "eval.json" for entry in catalogue(checkout / "models") if entry.name == name]
    return [path for path in found if path.is_file()]


def _shown(path: Path) -> str:
    return str(path.resolve().relative_to(CHECKOUT)) if path.resolve().is_relative_to(CHECKOUT) else str(path)


def _items(manifest: ModelManifest, document: Any, source: str) -> list[Inputs]:
    if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
        specs = {spec.name: spec for spec in manifest.inputs}
        given = document["inputs"].items()
        tensors = {name: _tensor(data, specs[name], f"{source}: {name}") for name, data in given if name in specs}
        rows = {len(tensor) for tensor in tensors.values()}
        if len(rows) != 1:
            raise InvalidInput(f"{source}: inputs must name served inputs with one row count each, got {rows}")
        return [{name: tensor[i : i + 1] for name, tensor in tensors.items()} for i in range(rows.pop())]
    spec = manifest.inputs[0]
    return [{spec.name: _tensor([value], spec, source)} for value in _fitting(document, spec)]


def _fitting(document: Any, spec: TensorSpec) -> Iterator[Any]:
    """The values inside the document's lists that are one item of ``spec``."""
    values = document.values() if isinstance(document, dict) else document if isinstance(document, list) else []
    for value in values:
        if isinstance(document, list) and _fits(value, spec):
            yield value
        elif isinstance(value, list | dict):
            yield from _fitting(value, spec)


def _fits(value: Any, spec: TensorSpec) -> bool:
    if spec.datatype == "BYTES":
        return isinstance(value, str) and bool(value.strip())
    try:
        shape = np.asarray(value, dtype=np.float64).shape
    except (ValueError, TypeError):
        return False
    item = spec.shape[1:]
    return len(shape) == len(item) and all(want in (-1, got) for want, got in zip(item, shape, strict=True))


def _tensor(data: Any, spec: TensorSpec, where: str) -> Tensor:
    shape = list(np.asarray(data, dtype=object if spec.datatype == "BYTES" else None).shape)
    return v2_codec.from_json(data, spec.datatype, shape, where)


def _key(item: Inputs) -> str:
    return repr(sorted((name, tensor.tolist()) for name, tensor in item.items()))


# --- the engine's own feeds, recorded ---------------------------------------------------------------------


class _Recorder:
    """Stands in for a runtime's ONNX Runtime session and keeps a copy of every feed it is run with."""

    def __init__(self, session: ort.InferenceSession, feeds: list[Inputs]) -> None:
        self._session, self._feeds = session, feeds

    def run(self, output_names: Any, feeds: Mapping[str, Tensor], *args: Any, **kwargs: Any) -> Any:
        self._feeds.append({name: np.array(value, copy=True) for name, value in feeds.items()})
        return self._session.run(output_names, feeds, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def answer_recording(runtime: ModelRuntime, evaluation: Evaluation) -> tuple[list[Inputs], list[Inputs]]:
    """The runtime's outputs for every evaluation batch, and the feeds its session was run with meanwhile."""
    held = [name for name, value in vars(runtime).items() if isinstance(value, ort.InferenceSession)]
    if len(held) != 1:
        raise ModelLoadError(f"{runtime.label}: quantizing needs a runtime with one ONNX Runtime session, has {held}")
    session, feeds = getattr(runtime, held[0]), list[Inputs]()
    setattr(runtime, held[0], _Recorder(session, feeds))
    try:
        outputs = [runtime.predict(batch).outputs for batch in evaluation.batches()]
    finally:
        setattr(runtime, held[0], session)
    return outputs, feeds


# --- the graph ----------------------------------------------------------------------------------------------


class _Feeds:
    """A CalibrationDataReader over recorded feeds (duck-typed: the calibrator only calls ``get_next``)."""

    def __init__(self, feeds: Sequence[Inputs]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> Inputs | None:
        return next(self._feeds, None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The quantizers log advice on the root logger ("consider pre-processing"); it is not the operator's."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


class Compressor:
    """Writes the engine graph in one mode, optionally with some weighted nodes kept in float."""

    def __init__(self, engine: bytes, mode: Mode, feeds: Sequence[Inputs], scratch: Path) -> None:
        import onnx
        from onnxruntime import quantization

        self.mode, self._feeds, self._scratch = mode, feeds, scratch
        self._source = scratch / "base.onnx"
        self._source.write_bytes(engine)
        self.prepared = False
        if mode == "int8-static":
            try:  # shape inference and fusions put the quantize/dequantize pairs where they belong
                # In the scratch folder: a failed symbolic shape inference leaves the model in the working one.
                with _quiet(), contextlib.chdir(scratch):
                    quantization.quant_pre_process(self._source, scratch / "prepared.onnx")
                self._source, self.prepared = scratch / "prepared.onnx", True
            except Exception:  # a graph the symbolic shape inference cannot follow is quantized as it is
                pass
        model = onnx.load(self._source)
        weights = {t.name: t for t in model.graph.initializer}
        sizes = {
            node.name: sum(_nbytes(weights[name]) for name in node.input if name in weights)
            for node in model.graph.node
            if node.op_type in WEIGHTED_OPS and any(name in weights for name in node.input)
        }
        self.weighted = list(sizes)  # in graph order: ONNX keeps nodes topologically sorted
        self._sizes, self._total = sizes, sum(_nbytes(t) for t in weights.values())

    def float_candidates(self) -> list[list[str]]:
        """Growing sets of the earliest weighted nodes, within MAX_FLOAT_NODES and FLOAT_BUDGET."""
        if self.mode == "fp16":
            return []
        kept: list[str] = []
        sets = []
        for node in self.weighted:
            if len(kept) == MAX_FLOAT_NODES:
                break
            if sum(self._sizes[n] for n in [*kept, node]) <= FLOAT_BUDGET * self._total:
                kept.append(node)
                sets.append(list(kept))
        return sets

    def write(self, keep_float: Sequence[str] = ()) -> tuple[bytes, str]:
        """The compressed graph and a line saying how it was made."""
        import onnx

        target = self._scratch / "new.onnx"
        with _quiet():
            method = self._write(target, list(keep_float))
        compressed = target.read_bytes()
        if self.mode != "fp16" and not _has_int8_weights(onnx.load_from_string(compressed)):
            raise InvalidInput(f"{self.mode} found no weights to quantize ({method}); try another mode", param="mode")
        return compressed, method

    def _write(self, target: Path, keep_float: list[str]) -> str:
        import onnx
        from onnxruntime import quantization as q

        if self.mode == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            onnx.save(convert_float_to_float16(onnx.load(self._source), keep_io_types=True), target)
            return "onnxruntime float16 converter; FP32 graph inputs and outputs kept (keep_io_types)"
        if self.mode == "int8-dynamic":
            ops = list(DYNAMIC_OPS)
            q.quantize_dynamic(
                self._source, target, op_types_to_quantize=ops, per_channel=True, nodes_to_exclude=keep_float
            )
            return f"onnxruntime quantize_dynamic: per-channel int8 weights of {', '.join(ops)}, uint8 activations"
        q.quantize_static(
            self._source,
            target,
            _Feeds(self._feeds),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            op_types_to_quantize=list(STATIC_OPS),
            nodes_to_exclude=keep_float,
        )
        prepared = "pre-processed (shape inference, fusions)" if self.prepared else "not pre-processed"
        return (
            f"onnxruntime quantize_static: QDQ, per-channel int8 weights, uint8 activations with MinMax ranges "
            f"over {len(self._feeds)} recorded engine feeds; graph {prepared}"
        )


def _nbytes(tensor: Any) -> int:
    from onnx import helper

    itemsize: int = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return int(math.prod(tensor.dims)) * itemsize


def _has_int8_weights(model: Any) -> bool:
    from onnx import TensorProto

    return any(t.data_type in (TensorProto.INT8, TensorProto.UINT8) and t.dims for t in model.graph.initializer)


# --- measuring ----------------------------------------------------------------------------------------------


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
            "cosine_mean": _round(cosine.mean()),
            "cosine_min": _round(cosine.min()),
            "max_abs_diff": _round(np.abs(got - want).max()),
        }
        if name in classes and want.shape[-1] > 1:
            same = want.argmax(axis=-1) == got.argmax(axis=-1)
            ranked = np.sort(want, axis=-1)
            gaps = (ranked[..., -1] - ranked[..., -2])[~same]
            entry["top1_agreement"] = _round(same.mean())
            entry["top1_changed"] = int((~same).sum())
            # How near a tie the base's own best two classes were where the answer changed.
            entry["changed_max_base_gap"] = _round(gaps.max()) if gaps.size else None
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
        "p50_ms_base": _round(base_ms, 4),
        "p50_ms_new": _round(new_ms, 4),
        "ratio": _round(base_ms / new_ms, 3),
        "calls_each": len(times["base"]),
        "items_per_call": 1,
    }


def _round(value: Any, digits: int = 6) -> float:
    return float(f"{float(value):.{digits}g}")


# --- the new version ----------------------------------------------------------------------------------------


def load_runtime(artifact: ModelArtifact, settings: Settings) -> ModelRuntime:
    runtime = runtime_class(artifact.manifest.domain)(artifact, SessionFactory(settings))
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
    inputs = {key: _tensor(data, specs[key], f"{name}: {key}") for key, data in document["inputs"].items()}
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
        "engine_ratio": _round(engine_base / engine_new, 4),
        "version_bytes_base": version_base,
        "version_bytes_new": version_new,
        "version_ratio": _round(version_base / version_new, 4),
    }
