"""Sentence embeddings: strings → tokens → ONNX encoder (pooling and normalisation in the graph).

The tokenizer keeps each string's first ``max_length`` tokens, but it tokenises the whole string before it
truncates: one 5.9 MB string took 4.5 s for the 256 tokens it was billed. So each string is first cut to
``max_length x chars_per_token`` characters (``head``), at a whitespace, which costs the tokenizer nothing
that counts: the tokens of a string cut at a whitespace are the first tokens of the whole string (the
tokenizers served split words at whitespace), so every string whose head holds ``max_length`` tokens gets
exactly the tokens it got before. Only a head of more than ``chars_per_token`` characters per token on
average (runs of thousands of spaces, say) is embedded from fewer tokens than the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field
from tokenizers import Tokenizer

from aimass.errors import InvalidInput, ModelLoadError
from aimass.schema import Schema
from aimass.serving.batching import in_chunks
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor

# Characters a token is assumed to span at most, on average, when strings are cut before tokenising. Text
# runs 3 to 4.5 characters per token (bench/budgets.py: 3.38 in the README's English, 2.99 in Python
# source, 3.01 in JSON); 16 leaves a factor of 4 or more for long words and numbers.
CHARS_PER_TOKEN = 16
# A cut looks this far back for a whitespace. A stretch that long without one is most often one word (a
# URL, a number, base64), and WordPiece makes a word over 100 characters a single [UNK], cut or not.
WORD_CHARS = 128


class TextPreprocessing(Schema):
    """The ``preprocessing`` block of a text model's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tokenizer: str = Field(description="tokenizer.json among the model's files")
    max_length: int = Field(gt=0, description="tokens kept per string; longer strings are truncated")
    chars_per_token: int = Field(
        default=CHARS_PER_TOKEN,
        gt=0,
        description="each string is cut at max_length x this many characters (at a whitespace) before tokenising",
    )
    pad_token: str = "[PAD]"
    pad_id: int = 0


class TextEmbeddingRuntime(ModelRuntime):
    def load(self) -> None:
        self.pre = self.preprocessing(TextPreprocessing)
        tokenizer = Tokenizer.from_str(self.artifact.read(self.pre.tokenizer).decode("utf-8"))
        tokenizer.enable_truncation(max_length=self.pre.max_length)
        # No fixed length: pad each batch to its longest string only. The shipped tokenizer.json pads
        # every batch to 128 tokens, which costs several times the compute on short sentences.
        tokenizer.enable_padding(pad_id=self.pre.pad_id, pad_token=self.pre.pad_token)
        self.tokenizer = tokenizer

        self.session = self.engine_session()
        engine = self.manifest.engine
        self.feeds = [spec.name for spec in engine.inputs]
        unknown = set(self.feeds) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ModelLoadError(f"{self.label}: the text runtime cannot feed graph inputs {sorted(unknown)}")
        self.needs_token_types = "token_type_ids" in self.feeds
        self.engine_output = engine.outputs[0].name
        self.text_input = self.manifest.inputs[0].name
        self.served_output = self.manifest.outputs[0].name

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        texts = self._texts(inputs[self.text_input])
        tokens: list[int] = []

        def embed(chunk: list[str]) -> Tensor:
            # Each chunk is padded to its own longest text: no row pays for a long one elsewhere in the request.
            # One text alone skips the batch call's parallel dispatch: a third of its cost, the same tokens.
            encodings = [self.tokenizer.encode(chunk[0])] if len(chunk) == 1 else self.tokenizer.encode_batch(chunk)
            masks = [e.attention_mask for e in encodings]
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array(masks, dtype=np.int64)
            feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if self.needs_token_types:  # graphs exported without it make the zeros themselves
                feeds["token_type_ids"] = np.zeros_like(ids)
            tokens.extend(map(sum, masks))  # numpy's reduction costs more than the sum itself at these sizes
            (embeddings,) = self.session.run([self.engine_output], {name: feeds[name] for name in self.feeds})
            return embeddings  # type: ignore[no-any-return]

        embeddings = in_chunks(texts, embed)
        return Prediction(
            outputs={self.served_output: embeddings},
            usage={"prompt_tokens": sum(tokens)},
            per_item={"prompt_tokens": tokens},
        )

    def _texts(self, tensor: Tensor) -> list[str]:
        limit = self.pre.max_length * self.pre.chars_per_token
        texts = []
        for index, item in enumerate(tensor.ravel().tolist()):
            try:
                text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"'{self.text_input}'[{index}] is not valid UTF-8 text", param=self.text_input
                ) from None
            if not text.strip():
                raise InvalidInput(f"'{self.text_input}'[{index}] is an empty string", param=self.text_input)
            texts.append(head(text, limit))
        return texts


def head(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters; else its start, cut at the last whitespace at or
    before ``limit`` (within WORD_CHARS of it), or at ``limit`` when that stretch has none."""
    if len(text) <= limit:
        return text
    for end in range(limit, max(0, limit - WORD_CHARS), -1):
        if text[end].isspace():
            return text[:end]
    return text[:limit]
