"""Validation samples for an imported model: inputs synthesized from its signature (or the user's), outputs run.

The samples are what every later load of the version must reproduce (``aimass.serving.validation``) before it
serves, as a model build's are. Synthesized inputs are seeded, so the same file imports to the same samples:
floats from a normal distribution, integers 0 or 1 (any index or token id a graph takes), masks all ones,
booleans at random, strings a word. Each dynamic dimension is drawn the same across the inputs that name it, and
differently between two runs, so that ``signature.batch_check`` sees the batch, and ``settled_shape`` the other
dynamic axes, move.

A graph that answers synthesized inputs with NaN or an error needs inputs of its own: the message says how to give
them (``--samples`` on the command line, ``samples`` in the management API).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from aimass.errors import UnsupportedModel
from aimass.importing.graph import GraphInfo
from aimass.serving.runtime import Tensor
from aimass.store.manifest import TensorSpec

SEED = 20_260_101
# (batch, every other dynamic dimension) of the two runs; the first is the one kept as the samples.
RUNS = ((2, 8), (3, 16))
_NUMPY = {
    "FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT8": np.int8, "INT16": np.int16,
    "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "BOOL": np.bool_,
}  # fmt: skip
SAMPLES_HINT = (
    "give inputs it accepts as samples (aimass models import --samples samples.json, or 'samples' in the management "
    'API: {"inputs": {"<input>": [[...], ...]}}, two rows or more)'
)


def synthesize(specs: tuple[TensorSpec, ...], info: GraphInfo, run: int) -> dict[str, Tensor]:
    """Inputs for ``specs``, batch and dynamic sizes of ``RUNS[run]``, seeded by the run."""
    batch, other = RUNS[run]
    rng = np.random.default_rng(SEED + run)
    declared = {value.name: value.dims or () for value in info.inputs}
    named: dict[str, int] = {}
    feeds: dict[str, Tensor] = {}
    for spec in specs:
        dims = declared.get(spec.name, ())
        shape: list[int] = []
        for axis, want in enumerate(spec.shape):
            if axis == 0:
                shape.append(batch)
            elif want != -1:
                shape.append(want)
            else:
                param = dims[axis].param if axis < len(dims) else None
                shape.append(named.setdefault(param, other) if param else other)
        feeds[spec.name] = _values(spec, tuple(shape), rng)
    return feeds


def _values(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator) -> Tensor:
    if spec.datatype == "BYTES":
        words = np.empty(shape, dtype=object)
        words[...] = "sample"
        return words
    dtype = _NUMPY[spec.datatype]
    if spec.datatype.startswith("FP"):
        return rng.standard_normal(shape).astype(dtype)
    if "mask" in spec.name.lower():
        return np.ones(shape, dtype=dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)


def given(document: Mapping[str, Any], specs: tuple[TensorSpec, ...]) -> dict[str, Tensor]:
    """The user's sample inputs (``{"inputs": {name: nested lists}}``), checked against the served inputs."""
    inputs = document.get("inputs") if isinstance(document, Mapping) else None
    if not isinstance(inputs, Mapping):
        raise UnsupportedModel(f'the samples must be a JSON object {{"inputs": {{name: values}}}}; {SAMPLES_HINT}')
    names = [spec.name for spec in specs]
    if missing := sorted(set(names) - set(inputs)):
        raise UnsupportedModel(f"the samples lack the input(s) {missing}; the model's inputs are {names}")
    if unknown := sorted(set(inputs) - set(names)):
        raise UnsupportedModel(f"the samples hold unknown input(s) {unknown}; the model's inputs are {names}")
    feeds: dict[str, Tensor] = {}
    for spec in specs:
        try:
            if spec.datatype == "BYTES":
                value = np.asarray(inputs[spec.name], dtype=object)
            else:
                value = np.asarray(inputs[spec.name], dtype=_NUMPY[spec.datatype])
        except (TypeError, ValueError) as exc:
            raise UnsupportedModel(f"sample input '{spec.name}' is not a {spec.datatype} array: {exc}") from None
        fits = value.ndim == len(spec.shape) and all(w in (-1, g) for w, g in zip(spec.shape, value.shape, strict=True))
        if not fits or value.size == 0:
            raise UnsupportedModel(
                f"sample input '{spec.name}' has shape {list(value.shape)}; the model takes {list(spec.shape)} "
                "(-1: any size)"
            )
        feeds[spec.name] = value
    return feeds


def parse_samples(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsupportedModel(f"the samples are not JSON ({exc}); {SAMPLES_HINT}") from None
    if not isinstance(document, dict):
        raise UnsupportedModel(f"the samples must be a JSON object; {SAMPLES_HINT}")
    return document


def check_finite(outputs: Mapping[str, Tensor], *, what: str) -> None:
    for name, value in outputs.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise UnsupportedModel(
                f"{what} answered its sample inputs with NaN or infinity in output '{name}', so they cannot check "
                f"later loads; {SAMPLES_HINT}"
            )


def document(inputs: Mapping[str, Tensor], outputs: Mapping[str, Tensor]) -> bytes:
    """samples.json: inputs as a V2 JSON client sends them, expected outputs, and a tolerance per output.

    Each output may differ from its reference by 1e-3 of its largest value (at least 1e-4): what another CPU's
    kernels (AVX-512 against AVX2) change in float32 sums, far below what a wrong export changes.
    """
    tolerance: dict[str, float] = {}
    written: dict[str, Any] = {}
    for name, value in outputs.items():
        if value.dtype == object or value.dtype.kind in "SU":
            written[name] = [_text(v) for v in value.ravel()] if value.ndim == 1 else _texts(value)
            continue
        floats = value.astype(np.float64)
        scale = float(np.abs(floats).max()) if floats.size else 0.0
        tolerance[name] = float(f"{max(1e-4, 1e-3 * scale):.3g}")
        written[name] = _listed(value) if value.ndim else floats.tolist()
    return (
        json.dumps(
            {
                "inputs": {name: _listed(value) for name, value in inputs.items()},
                "outputs": written,
                "tolerance": tolerance,
            }
        )
        + "\n"
    ).encode()


def _listed(value: Tensor) -> Any:
    if value.dtype == object:
        return _texts(value)
    if value.dtype in (np.float32, np.float16):
        return _shortest(value)
    return value.tolist()


def _shortest(value: Tensor) -> Any:
    # str() of a float32 is its shortest exact form: compact, and it reads back to the same float32.
    if value.ndim == 1:
        return [float(str(v)) for v in value]
    return [_shortest(row) for row in value]


def _texts(value: Tensor) -> Any:
    return np.vectorize(_text, otypes=[object])(value).tolist()


def _text(item: object) -> str:
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
