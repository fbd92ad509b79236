"""Text: English sentences in, embeddings out. An item is one sentence."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from tokenizers import Tokenizer

from bench.workload import Array, Feeds, Outputs, Request, Route, Workload, close

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.base import ModelArtifact
    from aimass.store.manifest import ModelManifest
    from aimass_text.runtime import TextEmbeddingRuntime

# Varied English sentences of 8-20 words: what an embedding endpoint sees, not one repeated string.
SENTENCES: tuple[str, ...] = (
    "A man is playing a guitar on the corner of a busy street.",
    "The quarterly report shows revenue grew by twelve percent compared with last year.",
    "Please remind me to call the dentist tomorrow morning before nine.",
    "The new library opens on Saturday with a reading for children.",
    "Heavy rain is expected across the north of the country this weekend.",
    "She finished the marathon in under four hours despite a sore knee.",
    "How do I reset my password if I no longer have access to my email?",
    "The committee postponed its decision on the bridge until the spring.",
    "Our flight was delayed because of a technical problem with the engine.",
    "Fresh basil and ripe tomatoes make the simplest summer pasta sauce.",
    "The museum has added a gallery of photographs from the early twentieth century.",
    "Researchers found that the enzyme breaks down plastic faster at higher temperatures.",
    "Can you recommend a quiet hotel near the train station?",
    "The striker scored twice in the second half to win the match.",
    "Interest rates were left unchanged at the central bank's meeting on Thursday.",
    "My laptop battery drains quickly when several browser tabs are open.",
    "The old lighthouse was converted into a small guest house last year.",
    "Children learn a second language more easily when they start young.",
    "The software update fixes a bug that caused the app to crash on start.",
    "A gentle breeze carried the smell of the sea through the open window.",
    "Volunteers planted two hundred trees along the river on Sunday afternoon.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Traffic on the motorway was slow after an accident near the junction.",
    "He apologised for missing the meeting and asked for the notes.",
    "The telescope captured detailed images of a distant spiral galaxy.",
    "Customers can return unused items within thirty days for a full refund.",
    "The orchestra will perform a new symphony by a young local composer.",
    "Drinking enough water during the day helps you stay focused at work.",
    "The startup raised money to expand its delivery service to three more cities.",
    "Snow closed the mountain pass, so the hikers turned back early.",
    "The contract must be signed by both parties before work can begin.",
    "A small cat sat on the windowsill watching the birds in the garden.",
)


def _tensors(ids: Array, mask: Array, feeds: Sequence[str]) -> Feeds:
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: tensors[name] for name in feeds}


def _openai_request(manifest: ModelManifest, texts: Sequence[str]) -> Request:
    document = {"input": texts[0] if len(texts) == 1 else list(texts), "model": manifest.name}
    return Request("/v1/embeddings", json.dumps(document).encode())


class TextWorkload(Workload[str]):
    domain = "text"
    noun = "sentence"
    codec_label = "tokenise"
    v2_template = "apigw_http_v2_text_infer"

    def items(self) -> Sequence[str]:
        return SENTENCES

    def v2_input(self, manifest: ModelManifest, items: Sequence[str]) -> dict[str, Any]:
        name = manifest.inputs[0].name
        return {"name": name, "shape": [len(items)], "datatype": "BYTES", "data": list(items)}

    def predict_inputs(self, manifest: ModelManifest, items: Sequence[str]) -> dict[str, Array]:
        batch = np.empty(len(items), dtype=object)
        batch[:] = [text.encode() for text in items]
        return {manifest.inputs[0].name: batch}

    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[str]) -> Feeds:
        """Tokenised as the runtime does: its tokenizer (dynamic padding, same truncation), its feeds."""
        text = cast("TextEmbeddingRuntime", runtime)
        encodings = text.tokenizer.encode_batch(list(items))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return _tensors(ids, mask, text.feeds)

    def routes(self) -> tuple[Route[str], ...]:
        return (
            Route("openai", "/v1/embeddings", "apigw_http_v2_text_embeddings", _openai_request, self._openai_agrees),
        )

    def _openai_agrees(self, body: bytes | str, expected: Outputs) -> bool:
        got = np.asarray([item["embedding"] for item in json.loads(body)["data"]], dtype=np.float32)
        return close(got, next(iter(expected.values())), atol=self.atol, rtol=self.rtol)

    def describe(self, runtime: ModelRuntime, item: str) -> dict[str, Any]:
        tokens = int(self.engine_feeds(runtime, [item])["attention_mask"].sum())
        return {"sentence": item, "sentence_tokens": tokens}

    def floor_spec(self, artifact: ModelArtifact, runtime: ModelRuntime, item: str, scratch: Path) -> dict[str, Any]:
        pre = cast("TextEmbeddingRuntime", runtime).pre
        return {
            "tokenizer": str(artifact.directory / pre.tokenizer),
            "max_length": pre.max_length,
            "pad_id": pre.pad_id,
            "pad_token": pre.pad_token,
            "text": item,
            "feeds": [spec.name for spec in artifact.manifest.engine.inputs],
        }

    @staticmethod
    def floor_prepare(spec: dict[str, Any]) -> Callable[[], Feeds]:
        """Load the same tokenizer with the same padding and truncation; tokenise the sentence on demand."""
        tokenizer = Tokenizer.from_file(spec["tokenizer"])
        tokenizer.enable_truncation(max_length=spec["max_length"])
        tokenizer.enable_padding(pad_id=spec["pad_id"], pad_token=spec["pad_token"])

        def feeds() -> Feeds:
            (encoding,) = tokenizer.encode_batch([spec["text"]])
            ids = np.array([encoding.ids], dtype=np.int64)
            return _tensors(ids, np.array([encoding.attention_mask], dtype=np.int64), spec["feeds"])

        return feeds


WORKLOAD = TextWorkload()
