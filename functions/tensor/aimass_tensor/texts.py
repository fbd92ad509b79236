"""Strings in, one vector each out: an imported encoder's tokenizer, the graph, and the pooling it needs.

The tokenizer (Hugging Face ``tokenizers``, imported with the first embedder loaded) keeps each string's first
``max_length`` tokens; each string is first cut to 16 characters a token, since tokenizing a megabyte only to keep
256 tokens would cost seconds. Batches are padded to their longest string, in chunks of 32 strings
(``aimass.serving.batching``), so no row pays for a long one elsewhere in the request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aimass.errors import InvalidInput
from aimass.serving.batching import in_chunks
from aimass.serving.runtime import Tensor
from aimass_tensor.preprocessing import TextInput

CHARS_PER_TOKEN = 16
Run = Callable[[dict[str, Tensor]], Tensor]


class Embedder:
    """The tokenizer of ``spec``, feeding ``feeds`` (graph input names) and pooling what ``run`` answers."""

    def __init__(self, tokenizer_json: str, spec: TextInput, feeds: Sequence[str]) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(tokenizer_json)
        tokenizer.enable_truncation(max_length=spec.max_length)
        tokenizer.enable_padding(pad_id=spec.pad_id)
        self.tokenizer = tokenizer
        self.spec = spec
        self.feeds = tuple(feeds)

    def embed(self, texts: list[str], run: Run) -> tuple[Tensor, list[int]]:
        """One vector per text, and each text's tokens."""
        tokens: list[int] = []

        def chunk(items: list[str]) -> Tensor:
            encodings = self.tokenizer.encode_batch(items)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            available: dict[str, Tensor] = {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(ids),
            }
            tokens.extend(mask.sum(axis=1).tolist())
            return self._pooled(run({name: available[name] for name in self.feeds}), mask)

        return in_chunks(texts, chunk), tokens

    def _pooled(self, output: Tensor, mask: Tensor) -> Tensor:
        values = np.asarray(output, dtype=np.float32)
        if values.ndim == 3:
            if self.spec.pooling == "cls":
                values = values[:, 0, :]
            else:
                weights = mask[:, :, np.newaxis].astype(np.float32)
                values = (values * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.spec.normalize:
            values = values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
        return values.astype(np.float32)


def texts_of(tensor: Tensor, *, name: str, limit: int) -> list[str]:
    """A BYTES tensor's strings, each checked and cut to ``limit`` characters."""
    texts = []
    for index, item in enumerate(np.asarray(tensor, dtype=object).ravel().tolist()):
        text = _decoded(item, name, index)
        if not text.strip():
            raise InvalidInput(f"'{name}'[{index}] is an empty string; every string needs some text", param=name)
        texts.append(text[:limit])
    return texts


def _decoded(item: Any, name: str, index: int) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"'{name}'[{index}] is not valid UTF-8 text", param=name) from None
    return str(item)
