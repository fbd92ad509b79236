"""What ``aimass models import PATH`` reads, by what PATH is.

* ``model.onnx``: the graph itself;
* a folder with ``manifest.json``: a described version, checked and published as it is;
* a folder without one: its ``model.onnx``, and beside it ``labels.txt`` and ``tokenizer.json`` when present;
* ``.joblib``, ``.pkl``, ``.pickle``: a fitted scikit-learn estimator or pipeline, converted by skl2onnx
  (unpickling runs code from the file: import only your own);
* ``.pt``, ``.pth``: a TorchScript module (``torch.jit.save``), exported by ``torch.onnx.export`` on zeros of
  ``--input-shape``.

Anything else is read as ONNX, and refused as not ONNX if it is not.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

from aimass.errors import UnsupportedModel
from aimass.store.manifest import MANIFEST_FILE
from aimass_tools.importing.sklearn import from_sklearn
from aimass_tools.importing.torch_export import from_torch

SKLEARN_SUFFIXES = (".joblib", ".pkl", ".pickle")
TORCH_SUFFIXES = (".pt", ".pth")
LABELS_FILE = "labels.txt"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class Source:
    """A graph to import (with what its framework knew), or a described folder to publish as it is."""

    filename: str
    graph: bytes | None = None
    folder: Path | None = None
    labels: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    tokenizer: bytes | None = None
    source: str = ""


def load_source(path: Path, *, input_shape: tuple[int, ...] | None = None) -> Source:
    if path.is_dir():
        return _folder(path)
    suffix = path.suffix.lower()
    if suffix in SKLEARN_SUFFIXES:
        converted = from_sklearn(_unpickled(path))
        return Source(
            path.name,
            converted.graph,
            labels=converted.labels,
            feature_names=converted.feature_names,
            source=f"{converted.source}, from {path.name}",
        )
    if suffix in TORCH_SUFFIXES:
        return Source(path.name, _torchscript(path, input_shape), source=f"TorchScript module {path.name}")
    return Source(path.name, path.read_bytes())


def read_lines(path: Path) -> tuple[str, ...]:
    """One label (or feature name) a line; blank lines are left out."""
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _folder(path: Path) -> Source:
    if (path / MANIFEST_FILE).is_file():
        return Source(path.name, folder=path)
    graph = path / "model.onnx"
    if not graph.is_file():
        raise UnsupportedModel(
            f"folder {path} holds neither a {MANIFEST_FILE} (a described version) nor a model.onnx to import",
            param="file",
        )
    labels = path / LABELS_FILE
    tokenizer = path / TOKENIZER_FILE
    return Source(
        graph.name,
        graph.read_bytes(),
        labels=read_lines(labels) if labels.is_file() else None,
        tokenizer=tokenizer.read_bytes() if tokenizer.is_file() else None,
    )


def _unpickled(path: Path) -> object:
    try:
        if path.suffix.lower() == ".joblib":
            import joblib  # type: ignore[import-untyped]

            return joblib.load(path)
        with path.open("rb") as stream:
            return pickle.load(stream)
    except Exception as exc:  # unpickling raises whatever the pickled classes raise
        raise UnsupportedModel(f"{path.name} could not be unpickled as a scikit-learn model: {exc}") from None


def _torchscript(path: Path, input_shape: tuple[int, ...] | None) -> bytes:
    if not input_shape:
        raise UnsupportedModel(
            f"{path.name} is a PyTorch module: give the shape of one input batch, batch first "
            "(--input-shape 1,3,32,32)",
            param="input_shape",
        )
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, and still what users save
            module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:  # torch.jit raises RuntimeError with the reason, or others for foreign files
        raise UnsupportedModel(
            f"{path.name} is not a TorchScript module ({exc}); save the module with torch.jit.save(torch.jit.script("
            "module), path), or export it with aimass_tools.importing.from_torch",
        ) from None
    return from_torch(module, (torch.zeros(input_shape),))
