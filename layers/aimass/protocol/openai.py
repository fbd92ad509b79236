"""OpenAI-shaped endpoints over the runtime interface: embeddings and the model list.

Any model whose manifest task is ``embedding`` answers ``/v1/embeddings``: its first served input takes
the strings as a BYTES tensor and its first output holds one vector per string.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput
from aimass.metering.meter import measured
from aimass.protocol import wire
from aimass.schema import Schema
from aimass.serving.cost import TEXT_PIECE_CHARS, Schedule, Work
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime
from aimass.settings import Settings


class EmbeddingsRequest(Schema):
    # Strict: dimensions is a JSON integer, not "384", 384.0 or true.
    model_config = ConfigDict(extra="forbid", strict=True)

    input: Any = Field(description="a string or a list of strings", examples=["A cat sits on the mat."])
    model: str = Field(min_length=1, examples=["all-minilm-l6-v2"])
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, description="only the model's own size is accepted")
    user: str | None = None


class Embedding(Schema):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(Schema):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(Schema):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(Schema):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "aimass"


class ModelList(Schema):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def texts_of(value: object) -> list[str]:
    """The strings of ``input``, each checked; how many a request may carry is the schedule's (``work``)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput(f"input must be a string or a list of strings, got {type(value).__name__}", param="input")
    if not value:
        raise InvalidInput("input must not be an empty list", param="input")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            kind = "token arrays are not accepted" if isinstance(item, (int, list)) else type(item).__name__
            raise InvalidInput(f"input[{index}] must be a string ({kind})", param="input")
        if not item.strip():
            raise InvalidInput(f"input[{index}] is empty; every string needs some text", param="input")
    return [str(item) for item in value]


@dataclass(frozen=True)
class EmbeddingsCall:
    """A validated /v1/embeddings request: the model that answers it, its texts and how vectors are encoded."""

    runtime: ModelRuntime
    texts: list[str]
    encoding_format: str
    work: Work


class OpenAIService:
    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.schedule = Schedule(settings)

    def embeddings(self, body: bytes) -> tuple[bytes, ModelRuntime]:
        """Answer a raw /v1/embeddings body with the encoded response and the runtime that produced it."""
        call = self.prepare_embeddings(body)
        runtime = call.runtime
        manifest = runtime.manifest
        batch = np.empty(len(call.texts), dtype=object)
        batch[:] = [text.encode() for text in call.texts]
        feeds = {manifest.inputs[0].name: batch}
        prediction = self.schedule.run(
            runtime, call.work, lambda: measured(runtime, lambda: self.schedule.predict(runtime, feeds))
        )
        vectors = np.asarray(prediction.outputs[manifest.outputs[0].name], dtype="<f4")
        return self.embeddings_document(call, vectors, prediction.usage.get("prompt_tokens", 0)), runtime

    def prepare_embeddings(self, body: bytes) -> EmbeddingsCall:
        """A /v1/embeddings body, validated and admitted: every refusal the route gives comes from here, before
        any text is tokenised (batches call it for each line, then embed many lines at once)."""
        request = wire.parse(EmbeddingsRequest, body, "embeddings request")
        runtime = self.registry.get(request.model)
        manifest = runtime.manifest
        if manifest.task != "embedding":
            choices = [r.manifest.name for r in self.registry.runtimes() if r.manifest.task == "embedding"]
            raise InvalidInput(
                f"model '{request.model}' is a {manifest.task} model; embedding models: {choices}",
                param="model",
            )
        texts = texts_of(request.input)
        work = text_work(texts, manifest.preprocessing.get("max_length"), self.settings.max_batch_items)
        self.schedule.admit(runtime, work)  # before anything is tokenised
        size = manifest.outputs[0].shape[-1]
        if request.dimensions is not None and request.dimensions != size:
            raise InvalidInput(
                f"dimensions={request.dimensions} is not supported: model '{manifest.name}' returns "
                f"{size}-dimensional embeddings and cannot shorten them; omit dimensions or pass {size}",
                param="dimensions",
            )
        return EmbeddingsCall(runtime, texts, request.encoding_format, work)

    def embeddings_document(self, call: EmbeddingsCall, vectors: np.ndarray[Any, Any], tokens: int) -> bytes:
        """The route's answer: a vector per text of ``call``, in its order, and the tokens they took."""
        # Plain dicts, serialised once: pydantic models per vector cost more than the model run on short
        # inputs. EmbeddingsResponse documents this shape.
        document = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode(row, call.encoding_format)}
                for i, row in enumerate(vectors)
            ],
            "model": call.runtime.manifest.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return wire.dumps(document)

    def models(self) -> ModelList:
        return ModelList(
            data=[
                ModelCard(id=r.manifest.name, created=_created(r.manifest.created_at)) for r in self.registry.runtimes()
            ]
        )


def text_work(texts: list[str], max_tokens: object, limit: int) -> Work:
    """Texts counted in 64-character pieces (a 16-token sentence each), as a text's time follows its length; a
    text counts no more pieces than the tokens the model keeps (its manifest's ``max_length``) span."""
    most = -(-max_tokens // 16) if isinstance(max_tokens, int) and max_tokens > 0 else None
    pieces = 0
    for text in texts:
        count = -(-len(text) // TEXT_PIECE_CHARS)
        pieces += count if most is None else min(count, most)
    return Work(len(texts), limit, "strings", "input", "text pieces", pieces)


def _encode(row: np.ndarray[Any, Any], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(row.tobytes()).decode()
    values: list[float] = row.tolist()
    return values


def _created(timestamp: str) -> int:
    try:
        return int(time.mktime(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0
