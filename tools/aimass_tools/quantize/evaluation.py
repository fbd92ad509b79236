"""Evaluation inputs of a version (its samples and any evaluation files) and the feeds its engine is run with."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from aimass.errors import InvalidInput, ModelLoadError
from aimass.protocol import v2_codec
from aimass.serving.runtime import ModelRuntime, Tensor
from aimass.store.base import ModelArtifact
from aimass.store.manifest import ModelManifest, TensorSpec

Inputs = dict[str, Tensor]

BATCH = 16  # evaluation items per predict call when comparing outputs and recording feeds
# tools/aimass_tools/quantize/evaluation.py -> the checkout root, where models/<domain>/<model>/ keep the builds.
CHECKOUT = Path(__file__).resolve().parents[3]


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
        tensors = {name: as_tensor(data, specs[name], f"{source}: {name}") for name, data in given if name in specs}
        rows = {len(tensor) for tensor in tensors.values()}
        if len(rows) != 1:
            raise InvalidInput(f"{source}: inputs must name served inputs with one row count each, got {rows}")
        return [{name: tensor[i : i + 1] for name, tensor in tensors.items()} for i in range(rows.pop())]
    spec = manifest.inputs[0]
    return [{spec.name: as_tensor([value], spec, source)} for value in _fitting(document, spec)]


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


def as_tensor(data: Any, spec: TensorSpec, where: str) -> Tensor:
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
