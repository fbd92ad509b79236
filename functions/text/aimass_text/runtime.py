"""Sentence embeddings: strings → tokens → ONNX encoder (pooling and normalisation in the graph)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tokenizers import Tokenizer

from aimass.batching import in_chunks
from aimass.errors import InvalidInput, ModelLoadError
from aimass.runtime import ModelRuntime, Prediction, Tensor
from aimass.session import check_signature


class TextPreprocessing(BaseModel):
    """The ``preprocessing`` block of a text model's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tokenizer: str = Field(description="tokenizer.json among the model's files")
    max_length: int = Field(gt=0, description="tokens kept per string; longer strings are truncated")
    pad_token: str = "[PAD]"
    pad_id: int = 0


class TextEmbeddingRuntime(ModelRuntime):
    def load(self) -> None:
        try:
            self.pre = TextPreprocessing.model_validate(self.manifest.preprocessing)
        except ValidationError as exc:
            raise ModelLoadError(f"{self.label}: invalid preprocessing: {exc}") from None
        tokenizer = Tokenizer.from_str(self.artifact.read(self.pre.tokenizer).decode("utf-8"))
        tokenizer.enable_truncation(max_length=self.pre.max_length)
        # No fixed length: pad each batch to its longest string only. The shipped tokenizer.json pads
        # every batch to 128 tokens, which costs several times the compute on short sentences.
        tokenizer.enable_padding(pad_id=self.pre.pad_id, pad_token=self.pre.pad_token)
        self.tokenizer = tokenizer

        engine = self.manifest.engine
        self.session = self.sessions.create(self.artifact.read(engine.file), label=self.label)
        check_signature(self.session, engine.inputs, engine.outputs, self.label)
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
        tokens = 0

        def embed(chunk: list[str]) -> Tensor:
            # Each chunk is padded to its own longest text: no row pays for a long one elsewhere in the request.
            nonlocal tokens
            encodings = self.tokenizer.encode_batch(chunk)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if self.needs_token_types:  # graphs exported without it make the zeros themselves
                feeds["token_type_ids"] = np.zeros_like(ids)
            tokens += int(mask.sum())
            (embeddings,) = self.session.run([self.engine_output], {name: feeds[name] for name in self.feeds})
            return embeddings  # type: ignore[no-any-return]

        embeddings = in_chunks(texts, embed)
        return Prediction(outputs={self.served_output: embeddings}, usage={"prompt_tokens": tokens})

    def _texts(self, tensor: Tensor) -> list[str]:
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
            texts.append(text)
        return texts
