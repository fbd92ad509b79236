"""The generate extension of the V2 protocol (Triton's): text in, text out, for any model that writes text.

``POST /v2/models/{name}/generate`` takes ``{"text_input", "parameters"}`` and answers ``{"model_name",
"model_version", "text_output"}``; ``generate_stream`` answers the same document as server-sent events, one
per piece of text as it is written. The text is continued as plain text, without the chat template (as the
model's V2 ``infer`` does); the parameters are the sampling fields OpenAI's routes read
(``aimass.protocol.generating``), and any other is refused by name rather than ignored.

The answer's ``parameters`` (a V2 response's place for what is not an output) say why the text ended and
the tokens it counted: once for a whole answer, on the last event of a stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from aimass.errors import InvalidInput
from aimass.protocol import wire
from aimass.protocol.generating import (
    MeteredStream,
    Sampling,
    generation_work,
    run_whole,
    sampling_params,
    sse,
    text_generator,
)
from aimass.schema import Schema
from aimass.serving.cost import Schedule
from aimass.serving.generation import FinishReason, Generation, TokenEvent
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime

PARAMETERS = "parameters."


class GenerateParameters(Sampling):
    """The generate parameters the model honours; any other is a 400 naming it."""

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        # Triton's backends each read their own parameters (top_k, beam_width, ...): one message naming all
        # that are not read here, and those that are, says more than one error per unknown field.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown parameters {unknown}; the parameters read are {list(cls.model_fields)}")
        return data


class GenerateRequest(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    text_input: str = Field(examples=["the cat sat on"])
    parameters: GenerateParameters = Field(
        default_factory=GenerateParameters, examples=[{"max_tokens": 16, "temperature": 0}]
    )


class GenerateOutcome(Schema):
    finish_reason: Literal["stop", "length"] = Field(
        description="stop: the model ended its text or wrote a stop sequence; length: max_tokens or the context"
    )
    prompt_tokens: int
    completion_tokens: int
    tokens: int = Field(description="prompt and completion tokens together: what is billed")


class GenerateResponse(Schema):
    model_name: str
    model_version: str
    text_output: str
    parameters: GenerateOutcome


class GenerateStreamEvent(Schema):
    """One server-sent event's data: a piece of the text, in the order written."""

    model_name: str
    model_version: str
    text_output: str
    parameters: GenerateOutcome | None = Field(default=None, description="on the last event only")


@dataclass(frozen=True)
class GenerateCall:
    """A validated request, its generation started but not yet stepped."""

    runtime: ModelRuntime
    generation: Generation


class GenerateService:
    def __init__(self, registry: ModelRegistry, schedule: Schedule | None = None) -> None:
        self.registry = registry
        self.schedule = schedule  # holds a generation to the synchronous time budget (a 413)

    def prepare(self, name: str, version: str | None, body: bytes) -> GenerateCall:
        runtime, generator = text_generator(self.registry, name, version)
        request = wire.parse(GenerateRequest, body, "generate request")
        prompt = generator.text_tokens(request.text_input)
        if not prompt:
            raise InvalidInput("text_input has no tokens: send the text for the model to continue", param="text_input")
        sampling = request.parameters
        limit = (sampling.max_tokens, f"{PARAMETERS}max_tokens")
        params = sampling_params(runtime, generator, prompt, sampling, limit=limit, prefix=PARAMETERS)
        if self.schedule is not None:
            self.schedule.admit(runtime, generation_work(params, limit[1]))
        return GenerateCall(runtime, generator.generate(prompt, params))

    def complete(self, call: GenerateCall) -> bytes:
        """Run the generation to its end; the generate response."""
        finished = run_whole(call.runtime, call.generation)
        text = "".join(event.text for event in finished.events)
        reason = _finish_reason(finished.events)
        return wire.dumps(
            {**_header(call.runtime), "text_output": text, "parameters": _outcome(reason, finished.usage)}
        )

    def stream(self, call: GenerateCall) -> GenerateStream:
        return GenerateStream(call)


class GenerateStream(MeteredStream):
    def __init__(self, call: GenerateCall) -> None:
        super().__init__(call.runtime, call.generation)

    def events(self) -> Iterator[bytes]:
        header = _header(self.runtime)
        for event in self.generation:
            # Held text (a possible stop sequence) makes empty events: only the last one says anything then.
            if not event.text and event.finish_reason is None:
                continue
            document: dict[str, Any] = {**header, "text_output": event.text}
            if event.finish_reason is not None:
                document["parameters"] = _outcome(event.finish_reason, self.generation.usage.counts())
            yield sse(document)


def _header(runtime: ModelRuntime) -> dict[str, str]:
    return {"model_name": runtime.manifest.name, "model_version": runtime.manifest.version}


def _finish_reason(events: list[TokenEvent]) -> FinishReason:
    # A generation run to its end carries its reason on its last event; without one, it ran out of tokens.
    return next((e.finish_reason for e in reversed(events) if e.finish_reason is not None), "length")


def _outcome(reason: FinishReason, usage: dict[str, int]) -> dict[str, Any]:
    return {"finish_reason": reason, **usage}
