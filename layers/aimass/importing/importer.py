"""An ONNX file in, a version folder out (graph, samples, manifest), ready for the store to publish.

``import_graph`` runs every check an import makes, cheapest first, so that a file that cannot serve is refused
before anything is run: it is ONNX (``graph``), in one file, of opsets and operators the serving ONNX Runtime has
(``support``), small enough for the serving function (``memory``), with tensors the V2 protocol carries and a
batch axis (``signature``); then a session is built, the graph is run on two batches of sample inputs
(``samples``: the user's, or synthesized), its outputs are held to one row per input row, the task its shape
matches is found (``fit``), and the version is loaded by the tensor runtime exactly as a function loads it, which
computes the outputs the samples record. What serves is what was checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from aimass.errors import AimassError, InvalidInput, ModelLoadError, UnsupportedModel
from aimass.importing import samples as sampling
from aimass.importing.fit import TOKENIZER_FILE, Fit, ImageOptions, Task, fit
from aimass.importing.graph import GraphInfo, read_graph
from aimass.importing.memory import check_memory
from aimass.importing.signature import batch_check, served_tensors, settled_shape
from aimass.importing.support import check_support, runtime_version
from aimass.serving.domains import runtime_class
from aimass.serving.runtime import ModelRuntime, Tensor
from aimass.serving.session import SessionFactory
from aimass.store.base import ModelArtifact
from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest

log = logging.getLogger("aimass.importing")

DOMAIN = "tensor"  # the domain that serves imported models (functions/tensor)
GRAPH_FILE = "model.onnx"
SAMPLES_FILE = "samples.json"
# What an embedder's samples say: its served input is strings.
SAMPLE_TEXTS = ("A sample sentence to embed.", "Another one, a little longer, so that the two pad differently.")


@dataclass(frozen=True)
class ImportSpec:
    """What the importer is told beside the graph: the model's name and what its graph alone cannot say."""

    name: str
    task: Task = "auto"
    labels: tuple[str, ...] | None = None
    description: str = ""
    source: str = ""
    license: str = ""
    feature_names: tuple[str, ...] | None = None
    image: ImageOptions | None = None
    max_length: int = 256
    filename: str = GRAPH_FILE  # how messages name the file
    quality: dict[str, Any] = field(default_factory=dict)  # what its owner measured (an evaluation's accuracy)
    tenant: str | None = None  # the only tenant whose keys may call it; None: every tenant's


@dataclass(frozen=True)
class Imported:
    """The version folder's manifest, and what the import found (for the CLI's and the API's answers)."""

    manifest: ModelManifest
    needed_mb: int
    facts: dict[str, Any] = field(default_factory=dict)


def import_graph(
    graph: bytes,
    spec: ImportSpec,
    work: Path,
    sessions: SessionFactory,
    *,
    tokenizer: bytes | None = None,
    samples: Mapping[str, Any] | None = None,
    memory_limit_mb: int | None = None,
) -> Imported:
    """Check ``graph``, and write it into ``work`` as a version of ``spec.name``: ``model.onnx``, ``samples.json``
    (and ``tokenizer.json``) and their ``manifest.json``. Raises UnsupportedModel (400), ModelTooLarge (413) or
    InvalidInput (400, a wrong option) saying what to change."""
    _check_names(spec)
    what = f"'{spec.filename}'"
    info = read_graph(graph, what=what)
    if info.external_data:
        raise UnsupportedModel(
            f"{what} keeps the data of {len(info.external_data)} initializers in other files; save it as one file "
            "(onnx.save(model, path, save_as_external_data=False), up to 2 GB; torch.onnx.export(..., "
            "external_data=False))",
            param="file",
        )
    check_support(info, what=what)
    needed = check_memory(len(graph), memory_limit_mb, what=what)
    inputs, outputs = served_tensors(info, what=what)
    session = _session(sessions, graph, what)
    runs, fed = _runs(session, inputs, info, samples, what)
    batch_check(runs, what=what)
    first = min(runs)
    sampling.check_finite(runs[first], what=what)
    outputs = tuple(settled_shape(each, runs) for each in outputs)
    found = fit(
        spec.task,
        inputs,
        outputs,
        runs[first],
        labels=spec.labels,
        tokenizer=tokenizer is not None,
        feature_names=spec.feature_names,
        image=spec.image,
        max_length=spec.max_length,
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / GRAPH_FILE).write_bytes(graph)
    files = [GRAPH_FILE]
    if tokenizer is not None:
        (work / TOKENIZER_FILE).write_bytes(tokenizer)
        files.append(TOKENIZER_FILE)
    facts = _facts(info, spec, needed, found)
    draft = _manifest(spec, work, files, inputs, outputs, found, facts, validation=None)
    runtime = _loaded(draft, work, sessions, what)
    served = _served_samples(found, fed)
    try:
        answered = runtime.predict(served).outputs
    except AimassError as exc:
        raise UnsupportedModel(f"the tensor runtime refused the samples of {what}: {exc.message}") from None
    (work / SAMPLES_FILE).write_bytes(sampling.document(served, answered))
    manifest = _manifest(spec, work, [*files, SAMPLES_FILE], inputs, outputs, found, facts, validation=SAMPLES_FILE)
    write_manifest(work, manifest)
    log.info("imported %s as model '%s' (%s, %d MB needed)", what, spec.name, found.task, needed)
    return Imported(manifest, needed, facts)


def _check_names(spec: ImportSpec) -> None:
    try:
        ModelManifest.model_validate({**_EMPTY, "name": spec.name, "tenant": spec.tenant})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0])
        value = spec.name if field == "name" else spec.tenant
        raise InvalidInput(f"{field} '{value}' is not valid: {error['msg']}", param=field) from None


_EMPTY: dict[str, Any] = {
    "version": "1",
    "domain": DOMAIN,
    "task": "tensors",
    "files": [{"path": GRAPH_FILE, "sha256": "0" * 64, "size": 0}],
    "engine": {"file": GRAPH_FILE, "inputs": [], "outputs": []},
    "inputs": [],
    "outputs": [],
}


def _session(sessions: SessionFactory, graph: bytes, what: str) -> Any:
    try:
        return sessions.create(graph, label=what)
    except ModelLoadError as exc:
        reason = str(exc.__cause__ or exc.message).strip().splitlines()[0]
        raise UnsupportedModel(
            f"{runtime_version()} cannot load {what}: {reason}; export it again with the operators and opset the "
            "message names, or check it with onnx.checker.check_model",
            param="file",
        ) from None


def _runs(
    session: Any,
    inputs: tuple[TensorSpec, ...],
    info: GraphInfo,
    given: Mapping[str, Any] | None,
    what: str,
) -> tuple[dict[int, dict[str, Tensor]], dict[str, Tensor]]:
    """The graph's outputs on two batches of samples, by batch size, and the inputs of the first (the samples)."""
    if given is not None:
        first = sampling.given(given, inputs)
        rows = len(next(iter(first.values())))
        batches = [first] + ([{name: value[:1] for name, value in first.items()}] if rows > 1 else [])
    else:
        batches = [sampling.synthesize(inputs, info, run) for run in range(len(sampling.RUNS))]
    names = [node.name for node in session.get_outputs()]
    runs: dict[int, dict[str, Tensor]] = {}
    for feeds in batches:
        size = len(next(iter(feeds.values())))
        try:
            values = session.run(names, feeds)
        except Exception as exc:  # ONNX Runtime's own errors: a shape it cannot take, an index out of range
            made = "the samples given" if given is not None else "synthesized inputs"
            reason = str(exc).strip().splitlines()[0]
            raise UnsupportedModel(f"{what} failed on {made} ({reason}); {sampling.SAMPLES_HINT}") from None
        runs[size] = {name: np.asarray(value) for name, value in zip(names, values, strict=True)}
    return runs, batches[0]


def _served_samples(found: Fit, fed: dict[str, Tensor]) -> dict[str, Tensor]:
    if found.mode != "embedding":
        return fed
    texts = np.empty(len(SAMPLE_TEXTS), dtype=object)
    texts[:] = [text.encode() for text in SAMPLE_TEXTS]
    return {found.inputs[0].name: texts}


def _loaded(manifest: ModelManifest, work: Path, sessions: SessionFactory, what: str) -> ModelRuntime:
    try:
        runtime = runtime_class(DOMAIN)(ModelArtifact(manifest=manifest, directory=work), sessions)
        runtime.load()
    except ModelLoadError as exc:
        raise UnsupportedModel(f"the tensor runtime cannot serve {what}: {exc.message}") from None
    return runtime


def _facts(info: GraphInfo, spec: ImportSpec, needed: int, found: Fit) -> dict[str, Any]:
    dynamic = {
        value.name: {str(axis): dim.param or "?" for axis, dim in enumerate(value.dims or ()) if not dim.fixed}
        for value in (*info.inputs, *info.outputs)
    }
    return {
        "file": spec.filename,
        "producer": info.producer,
        "ir_version": info.ir_version,
        "opsets": {domain or "ai.onnx": version for domain, version in sorted(info.opsets.items())},
        "operators": sorted(f"{domain}:{op}" if domain else op for domain, op in info.operators),
        "nodes": info.nodes,
        "dynamic_axes": {name: axes for name, axes in dynamic.items() if axes},
        "memory_needed_mb": needed,
        "task": found.task,
        "runtime": runtime_version(),
    }


def _manifest(
    spec: ImportSpec,
    work: Path,
    files: list[str],
    engine_inputs: tuple[TensorSpec, ...],
    engine_outputs: tuple[TensorSpec, ...],
    found: Fit,
    facts: dict[str, Any],
    *,
    validation: str | None,
) -> ModelManifest:
    preprocessing = {**found.preprocessing, "graph": facts}
    return ModelManifest(
        name=spec.name,
        version="1",
        domain=DOMAIN,
        task=found.task,
        description=spec.description,
        source=spec.source or f"imported from {spec.filename} ({facts['producer'] or 'unknown producer'})",
        license=spec.license,
        files=tuple(file_entry(work, path) for path in files),
        engine=EngineSpec(file=GRAPH_FILE, inputs=engine_inputs, outputs=engine_outputs),
        inputs=found.inputs,
        outputs=found.outputs,
        preprocessing=preprocessing,
        labels=found.labels,
        quality=dict(spec.quality),
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        validation=validation,
        tenant=spec.tenant,
    )
