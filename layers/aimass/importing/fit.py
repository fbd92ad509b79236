"""Which task an imported graph's shape matches, and the tensors and preprocessing that serve it.

The tensor domain (``functions/tensor``) serves any graph over V2; a graph of a known shape also gets its task
endpoint, found here from its signature and its outputs on the samples:

* an **image classifier**: one float input ``[n, C, H, W]`` or ``[n, H, W, C]`` (C is 1 or 3, H and W fixed) and a
  score output ``[n, K]`` (K >= 2);
* a **tabular classifier**: one float input ``[n, F]`` (F fixed) and a score output ``[n, K]`` that is one row of
  probabilities per input row, or as many columns as labels were given;
* a **text embedder**, when a tokenizer is given: token id inputs (``input_ids``, and ``attention_mask``,
  ``token_type_ids`` if it takes them) and a float output ``[n, d]`` or ``[n, tokens, d]`` (pooled over the mask).

Anything else serves its own tensors (``tensors``). A task may be asked for by name; a graph that does not have
its shape is then refused with what it lacks, as are labels no output has the columns for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from aimass.errors import UnsupportedModel
from aimass.serving.runtime import Tensor
from aimass.store.manifest import TensorSpec

Task = Literal["auto", "tensors", "image-classification", "tabular-classification", "embedding"]
TASKS: tuple[Task, ...] = ("auto", "tensors", "image-classification", "tabular-classification", "embedding")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TEXT_INPUT, EMBEDDING_OUTPUT = "text", "embedding"
TOKENIZER_FILE = "tokenizer.json"
_FLOATS = ("FP32", "FP16", "FP64")


@dataclass(frozen=True)
class ImageOptions:
    """How images are scaled for an image classifier: ``(pixel * scale - mean) / std`` per channel."""

    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Fit:
    """The task found: the manifest's ``task``, its served tensors, labels and ``preprocessing`` block."""

    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None

    @property
    def mode(self) -> str:
        return str(self.preprocessing.get("mode", "tensors"))


def fit(
    task: Task,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    sample_outputs: Mapping[str, Tensor],
    *,
    labels: Sequence[str] | None = None,
    tokenizer: bool = False,
    feature_names: Sequence[str] | None = None,
    image: ImageOptions | None = None,
    max_length: int = 256,
) -> Fit:
    """The task ``task`` names (``auto``: the first whose shape the graph has), or UnsupportedModel saying why not."""
    if tokenizer and task not in ("auto", "embedding"):
        raise UnsupportedModel(f"a tokenizer was given for a {task} model; a tokenizer serves text embedders only")
    if tokenizer or task == "embedding":
        return _embedder(inputs, outputs, tokenizer=tokenizer, max_length=max_length)
    scores = _scores(outputs, sample_outputs, labels)
    if task in ("auto", "image-classification"):
        why = _image_misfit(inputs, scores)
        if why is None and scores is not None:
            return _classifier("image-classification", inputs, outputs, scores, sample_outputs, labels, image=image)
        if task == "image-classification":
            raise UnsupportedModel(f"the graph is not an image classifier: {why}")
    if task in ("auto", "tabular-classification"):
        why = _table_misfit(inputs, scores, sample_outputs, labels, feature_names)
        if why is None and scores is not None:
            return _classifier(
                "tabular-classification", inputs, outputs, scores, sample_outputs, labels, names=feature_names
            )
        if task == "tabular-classification":
            raise UnsupportedModel(f"the graph is not a tabular classifier: {why}")
    if labels:
        raise UnsupportedModel(
            f"{len(labels)} labels were given, but no output of the graph is a [n, {len(labels)}] score table "
            f"(its outputs: {_shapes(outputs)}); give as many labels as the classifier has classes, or none"
        )
    if feature_names:
        raise UnsupportedModel("feature names were given, but the graph is not a tabular classifier")
    return Fit("tensors", inputs, outputs, {"mode": "tensors"})


def _scores(
    outputs: tuple[TensorSpec, ...], sample_outputs: Mapping[str, Tensor], labels: Sequence[str] | None
) -> TensorSpec | None:
    """The output a classifier would rank: float ``[n, K]``, K >= 2 (K = the labels, if given); probabilities
    first, then an output named like them, then the first."""
    candidates = [
        spec
        for spec in outputs
        if spec.datatype in _FLOATS
        and len(spec.shape) == 2
        and spec.shape[1] >= 2
        and (not labels or spec.shape[1] == len(labels))
    ]
    candidates.sort(key=lambda s: (not _probabilities(sample_outputs.get(s.name)), "prob" not in s.name.lower()))
    return candidates[0] if candidates else None


def _probabilities(value: Tensor | None) -> bool:
    if value is None or value.ndim != 2 or value.size == 0:
        return False
    rows = np.asarray(value, dtype=np.float64)
    return bool((rows >= -1e-6).all() and (rows <= 1 + 1e-6).all() and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3))


def _image_misfit(inputs: tuple[TensorSpec, ...], scores: TensorSpec | None) -> str | None:
    if len(inputs) != 1:
        return f"it has {len(inputs)} inputs; an image classifier has one"
    (spec,) = inputs
    if spec.datatype not in _FLOATS or len(spec.shape) != 4:
        shape = f"{spec.datatype} {list(spec.shape)}"
        return f"its input '{spec.name}' is {shape}; an image is float [n, C, H, W] or [n, H, W, C]"
    if _layout(spec) is None:
        dims = list(spec.shape)
        return f"its input '{spec.name}' {dims} has no fixed channel axis of 1 or 3 beside fixed height and width"
    if scores is None:
        return "no output is a float [n, classes] score table with two classes or more"
    return None


def _layout(spec: TensorSpec) -> tuple[str, int, int, int] | None:
    _, a, b, c = spec.shape
    if a in (1, 3) and b > 0 and c > 0:
        return "NCHW", a, b, c
    if c in (1, 3) and a > 0 and b > 0:
        return "NHWC", c, a, b
    return None


def _table_misfit(
    inputs: tuple[TensorSpec, ...],
    scores: TensorSpec | None,
    sample_outputs: Mapping[str, Tensor],
    labels: Sequence[str] | None,
    feature_names: Sequence[str] | None,
) -> str | None:
    if len(inputs) != 1:
        return f"it has {len(inputs)} inputs; a table is one"
    (spec,) = inputs
    if spec.datatype not in _FLOATS or len(spec.shape) != 2 or spec.shape[1] < 1:
        return f"its input '{spec.name}' is {spec.datatype} {list(spec.shape)}; a table is float [n, features]"
    if feature_names is not None and len(feature_names) != spec.shape[1]:
        return f"{len(feature_names)} feature names were given for its {spec.shape[1]} columns"
    if scores is None:
        return "no output is a float [n, classes] score table with two classes or more"
    if not labels and not _probabilities(sample_outputs.get(scores.name)):
        return f"its output '{scores.name}' is not one row of probabilities per row; give its labels to rank it"
    return None


def _classifier(
    task: str,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    scores: TensorSpec,
    sample_outputs: Mapping[str, Tensor],
    labels: Sequence[str] | None,
    *,
    image: ImageOptions | None = None,
    names: Sequence[str] | None = None,
) -> Fit:
    count = scores.shape[1]
    preprocessing: dict[str, Any] = {
        "mode": task,
        "scores": scores.name,
        "scores_are": "probabilities" if _probabilities(sample_outputs.get(scores.name)) else "logits",
    }
    if task == "image-classification":
        layout = _layout(inputs[0])
        assert layout is not None
        order, channels, height, width = layout
        options = image or ImageOptions()
        preprocessing["image"] = {
            "height": height, "width": width, "channels": channels, "layout": order,
            "scale": options.scale, "mean": list(options.mean), "std": list(options.std),
        }  # fmt: skip
    if names is not None:
        preprocessing["feature_names"] = list(names)
    chosen = tuple(labels) if labels else tuple(str(i) for i in range(count))
    return Fit(task, inputs, outputs, preprocessing, chosen)


def _embedder(
    inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], *, tokenizer: bool, max_length: int
) -> Fit:
    names = [spec.name for spec in inputs]
    if not tokenizer:
        raise UnsupportedModel("a text embedder needs its tokenizer (tokenizer.json of Hugging Face tokenizers)")
    if "input_ids" not in names or set(names) - set(TOKEN_INPUTS):
        raise UnsupportedModel(
            f"a tokenizer was given, but the graph's inputs {names} are not token ids: a text encoder takes "
            f"input_ids and, if it needs them, attention_mask and token_type_ids"
        )
    if wrong := [spec.name for spec in inputs if spec.datatype != "INT64" or len(spec.shape) != 2]:
        raise UnsupportedModel(f"token inputs {wrong} must be INT64 [n, tokens], as tokenizers give them")
    first = outputs[0]
    if first.datatype not in _FLOATS or len(first.shape) not in (2, 3) or first.shape[-1] < 1:
        raise UnsupportedModel(
            f"the graph's first output '{first.name}' is {first.datatype} {list(first.shape)}; a text encoder answers "
            "float [n, d] (one vector per string) or [n, tokens, d] (one per token, mean-pooled here)"
        )
    preprocessing = {
        "mode": "embedding",
        "text": {
            "tokenizer": TOKENIZER_FILE,
            "max_length": max_length,
            "pooling": "mean" if len(first.shape) == 3 else "none",
            "normalize": True,
        },
    }
    served_in = (TensorSpec(name=TEXT_INPUT, datatype="BYTES", shape=(-1,)),)
    served_out = (TensorSpec(name=EMBEDDING_OUTPUT, datatype="FP32", shape=(-1, first.shape[-1])),)
    return Fit("embedding", served_in, served_out, preprocessing)


def _shapes(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"'{s.name}' {s.datatype} {list(s.shape)}" for s in specs)
