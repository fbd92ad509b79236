"""The ``preprocessing`` block of an imported model's manifest: which task its shape matched, and how to feed it.

``aimass.importing`` writes it when a model is imported (``aimass models import``, ``POST /v1/admin/models``);
the runtime reads it here. ``mode`` is the task the graph's shape matched, or ``tensors`` for any other graph:

* ``tensors``: V2 only, the graph's own inputs and outputs;
* ``image-classification``: one float image input ``[n, C, H, W]`` (or ``[n, H, W, C]``) and a score output
  ``[n, labels]``: ``POST /v1/tensor/classify-images`` decodes images into it;
* ``tabular-classification``: one float table ``[n, features]`` and a score output ``[n, labels]``:
  ``POST /v1/tensor/classify-rows``;
* ``embedding``: token ids (``input_ids``, ``attention_mask``, ``token_type_ids``) and a tokenizer: strings
  in (``text``), one vector each out (``embedding``): ``/v1/embeddings`` and ``POST /v1/tensor/embed``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

# The names the importer writes and this runtime reads: one source.
from aimass.importing.fit import EMBEDDING_OUTPUT, TEXT_INPUT, TOKEN_INPUTS
from aimass.schema import Schema

__all__ = ["EMBEDDING_OUTPUT", "TEXT_INPUT", "TOKEN_INPUTS", "ImageInput", "Mode", "TensorPreprocessing", "TextInput"]

Mode = Literal["tensors", "image-classification", "tabular-classification", "embedding"]


class _Block(Schema):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageInput(_Block):
    """How an image becomes the graph's input: resized to ``height`` x ``width``, ``channels`` 3 (RGB) or 1 (grey),
    each value ``(pixel * scale - mean) / std`` per channel, laid out ``NCHW`` or ``NHWC``."""

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: Literal[1, 3]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    scale: float = Field(default=1 / 255, gt=0, description="maps 0-255 pixel values before mean and std")
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    max_pixels: int = Field(default=50_000_000, gt=0, description="most pixels (width x height) in one image")
    max_request_pixels: int = Field(default=100_000_000, gt=0, description="most pixels decoded for one request")


class TextInput(_Block):
    """How strings become token ids: the version's ``tokenizer`` file (Hugging Face tokenizers' JSON), the first
    ``max_length`` tokens of each, pooled over the mask where the graph answers one vector per token."""

    tokenizer: str = Field(description="tokenizer.json among the version's files")
    max_length: int = Field(default=256, gt=0)
    pooling: Literal["mean", "cls", "none"] = Field(
        default="mean", description="how a [n, tokens, d] output becomes one vector per string; none: it is [n, d]"
    )
    normalize: bool = Field(default=True, description="scale each vector to length 1")
    pad_id: int = 0


class TensorPreprocessing(_Block):
    mode: Mode = "tensors"
    scores: str | None = Field(default=None, description="the output a classifier ranks, one column per label")
    scores_are: Literal["probabilities", "logits"] = Field(
        default="probabilities", description="logits are turned into probabilities (softmax) before ranking"
    )
    image: ImageInput | None = None
    feature_names: tuple[str, ...] | None = Field(
        default=None, description="the table's columns, in order: rows may then be {feature: value} objects"
    )
    text: TextInput | None = None
