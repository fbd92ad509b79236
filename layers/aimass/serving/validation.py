"""Validation samples: what a model version must reproduce here before it takes any traffic.

A build writes ``samples.json`` beside its graph (named by the manifest's ``validation``): served inputs, as
a V2 JSON client would send them, the outputs the build computed for them, and tolerances. Before a version
is swapped in, the serving process runs those inputs through the very runtime that would serve and compares.
A graph that loads but computes something else (a wrong export, a bad quantization, a mismatched codec) is
refused here, with the numbers, instead of answering clients.

Tolerances (``"tolerance"``): ``cosine`` is the least cosine similarity of each output row to the expected
row; ``max_abs`` the largest absolute difference of any output; a key naming an output is that output's
own largest absolute difference. Without one, outputs must match to 1e-4. A BYTES output (a transcript, say)
is held to its expected strings exactly.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from aimass.errors import AimassError, ModelLoadError
from aimass.protocol import v2_codec
from aimass.serving.runtime import ModelRuntime, Tensor

DEFAULT_MAX_ABS = 1e-4
# Spellings earlier builds used for "the largest absolute difference".
_MAX_ABS = ("max_abs", "max_abs_diff")


def validate(runtime: ModelRuntime) -> None:
    """Run the version's samples through ``runtime``; raise ModelLoadError saying which output is off, by how much."""
    manifest = runtime.manifest
    if manifest.validation is None:
        return
    label = f"{runtime.label}: validation samples ({manifest.validation})"
    try:
        document = json.loads(runtime.artifact.read(manifest.validation))
        inputs = {
            spec.name: _tensor(document["inputs"][spec.name], spec.datatype)
            for spec in manifest.inputs
            if spec.name in document["inputs"]
        }
        datatypes = {spec.name: spec.datatype for spec in manifest.outputs}
        expected = {
            name: np.asarray(value, dtype=object if datatypes.get(name) == "BYTES" else np.float64)
            for name, value in document["outputs"].items()
        }
        tolerance: dict[str, float] = {str(k): float(v) for k, v in document.get("tolerance", {}).items()}
    except ModelLoadError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, AimassError) as exc:
        raise ModelLoadError(f"{label} are unreadable: {exc}", public="its validation samples are unreadable") from None
    try:
        outputs = runtime.predict(inputs).outputs
    except AimassError as exc:
        raise ModelLoadError(
            f"{label}: the version refused its own samples: {exc.message}",
            public="it refused its own validation samples",
        ) from None
    for name, want in expected.items():
        if name not in outputs:
            raise ModelLoadError(f"{label}: the version returned no output '{name}'", public=_mismatch(name))
        if want.dtype == object:
            _compare_strings(label, name, np.asarray(outputs[name], dtype=object), want)
        else:
            _compare(label, name, np.asarray(outputs[name], dtype=np.float64), want, tolerance)


def _mismatch(name: str) -> str:
    return f"its validation samples did not match (output '{name}')"


def _tensor(data: Any, datatype: str) -> Tensor:
    shape = list(np.asarray(data, dtype=object if datatype == "BYTES" else None).shape)
    return v2_codec.from_json(data, datatype, shape, "sample")


def _compare_strings(label: str, name: str, got: np.ndarray[Any, Any], want: np.ndarray[Any, Any]) -> None:
    texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in got.ravel()]
    if got.shape != want.shape or texts != [str(v) for v in want.ravel()]:
        raise ModelLoadError(
            f"{label}: output '{name}' is {texts!r:.300} (shape {list(got.shape)}), expected "
            f"{want.ravel().tolist()!r:.300} (shape {list(want.shape)})",
            public=_mismatch(name),
        )


def _compare(
    label: str, name: str, got: np.ndarray[Any, Any], want: np.ndarray[Any, Any], tolerance: dict[str, float]
) -> None:
    if got.shape != want.shape:
        raise ModelLoadError(
            f"{label}: output '{name}' has shape {list(got.shape)}, expected {list(want.shape)}", public=_mismatch(name)
        )
    if "cosine" in tolerance and name not in tolerance:
        rows_got, rows_want = got.reshape(len(got), -1), want.reshape(len(want), -1)
        norms = np.linalg.norm(rows_got, axis=1) * np.linalg.norm(rows_want, axis=1)
        cosine = float(((rows_got * rows_want).sum(axis=1) / np.maximum(norms, 1e-12)).min())
        if not cosine >= tolerance["cosine"]:
            raise ModelLoadError(
                f"{label}: output '{name}' has cosine {cosine:.6f} to the expected values; at least "
                f"{tolerance['cosine']} is required",
                public=_mismatch(name),
            )
        return
    limit = tolerance.get(name, next((tolerance[k] for k in _MAX_ABS if k in tolerance), DEFAULT_MAX_ABS))
    worst = float(np.abs(got - want).max()) if got.size else 0.0
    if not worst <= limit:  # also refuses NaN
        raise ModelLoadError(
            f"{label}: output '{name}' differs from the expected values by up to {worst:.3g}; at most {limit:.3g} "
            "is allowed",
            public=_mismatch(name),
        )
