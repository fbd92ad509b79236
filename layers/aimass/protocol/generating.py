"""What every endpoint that writes text shares, whatever its document looks like.

OpenAI's chat and completions (``aimass.protocol.openai_chat``) and V2's generate extension
(``aimass.protocol.v2_generate``) read the same sampling fields, hold them to the same limits, and answer
whole or as server-sent events metered the same way; only their documents differ. A whole answer is billed
as it is measured; a stream marks the request's meter as streaming when it opens and notes what was written
when it closes, however it ended (a client that leaves is billed for what it was sent).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput
from aimass.metering.meter import measured, note, streaming
from aimass.protocol import wire
from aimass.schema import Schema
from aimass.serving.cost import Work
from aimass.serving.generation import Generation, GenerationParams, TextGenerator, TokenEvent
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime

MAX_STOPS = 4


class Sampling(Schema):
    """How a request chooses its tokens. Unknown fields are refused: a setting a client believes applied
    and that was not would silently change its answers."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = Field(default=None, description=f"up to {MAX_STOPS} sequences that end a choice")


def text_generator(
    registry: ModelRegistry, name: str, version: str | None = None
) -> tuple[ModelRuntime, TextGenerator]:
    """The model's runtime, as the text generator it must be to answer."""
    runtime = registry.get(name, version)
    if not isinstance(runtime, TextGenerator):
        choices = [r.manifest.name for r in registry.runtimes() if isinstance(r, TextGenerator)]
        raise InvalidInput(
            f"model '{name}' is a model of task '{runtime.manifest.task}' and writes no text; text models: {choices}",
            param="model",
        )
    return runtime, runtime


def generation_work(params: GenerationParams, param: str) -> Work:
    """What a generation may cost, before it starts: every choice's tokens at most (``max_tokens`` x ``n``),
    held to the synchronous time budget like any request's work (``aimass.serving.cost``)."""
    tokens = params.max_tokens * params.n
    return Work(tokens, tokens, "tokens to generate", param, "generated tokens", tokens)


def sampling_params(
    runtime: ModelRuntime,
    generator: TextGenerator,
    prompt: Sequence[int],
    sampling: Sampling,
    *,
    limit: tuple[int | None, str],
    prefix: str = "",
) -> GenerationParams:
    """``sampling`` checked against the model; ``limit`` is the tokens asked for and the field that asked.

    ``prefix`` is where the fields sit in the request (``parameters.``), so messages name them as sent.
    """
    context = generator.context_length
    asked, param = limit
    if asked is not None and len(prompt) + asked > context:
        raise InvalidInput(
            f"{param}={asked:,} and the prompt's {len(prompt):,} tokens make {len(prompt) + asked:,}; model "
            f"'{runtime.manifest.name}' has a context of {context:,} tokens for both together",
            param=param,
        )
    max_tokens = asked if asked is not None else min(generator.default_max_tokens, max(1, context - len(prompt)))
    stop = (sampling.stop,) if isinstance(sampling.stop, str) else tuple(sampling.stop or ())
    if len(stop) > MAX_STOPS or any(not s for s in stop):
        raise InvalidInput(f"{prefix}stop holds up to {MAX_STOPS} non-empty strings", param=f"{prefix}stop")
    return GenerationParams(
        max_tokens=max_tokens, temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed, stop=stop
    )


@dataclass
class Finished:
    """A generation run to its end: every event, and the counts billed for it."""

    events: list[TokenEvent]
    usage: dict[str, int]


def run_whole(runtime: ModelRuntime, generation: Generation) -> Finished:
    return measured(runtime, lambda: Finished(list(generation), generation.usage.counts()))


class MeteredStream(ABC):
    """A generation as server-sent events. ``close`` (always called, however the stream ended) stops the model
    and notes what was written on the request's meter."""

    def __init__(self, runtime: ModelRuntime, generation: Generation) -> None:
        # Marked now, before the answer starts: the metering middleware then sends the body as it comes and
        # settles once it has ended, instead of holding it for a record that does not exist yet.
        streaming()
        self.runtime, self.generation = runtime, generation
        self._started = time.perf_counter()
        self._closed = False

    @abstractmethod
    def events(self) -> Iterator[bytes]:
        """Each event as sent (``sse``), stepping the generation as it is read."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.generation.stop()
        elapsed = (time.perf_counter() - self._started) * 1e3
        note(self.runtime, self.generation.usage.counts(), elapsed)


def sse(document: dict[str, Any]) -> bytes:
    return b"data: " + wire.dumps(document) + b"\n\n"
