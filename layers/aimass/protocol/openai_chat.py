"""OpenAI's chat completions and (legacy) completions over any runtime that is a ``TextGenerator``.

Any model whose runtime writes text answers ``/v1/chat/completions`` (in its own chat template) and
``/v1/completions`` (plain text), whole or streamed as server-sent events. What the model cannot do (call
tools, follow a JSON schema, read images or audio, bias logits) is refused with a 400 naming the parameter,
never ignored: a client relying on it would otherwise get an answer that silently breaks its assumptions.
Unknown parameters are refused too.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field

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
from aimass.serving.generation import ChatMessage, Generation, GenerationParams, TextGenerator, TokenEvent
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime

# Parameters of OpenAI's API that no model here honours: refused by name when set to anything but null.
UNSUPPORTED = {
    "tools": "it cannot call tools",
    "tool_choice": "it cannot call tools",
    "functions": "it cannot call functions",
    "function_call": "it cannot call functions",
    "parallel_tool_calls": "it cannot call tools",
    "audio": "it writes no audio",
    "logit_bias": "logit biases are not applied",
    "prediction": "predicted outputs are not used",
    "web_search_options": "it cannot search the web",
    "reasoning_effort": "it does not reason in separate steps",
    "metadata": "completions are not stored",
    "store": "completions are not stored",
    "service_tier": "there is one service tier",
    "suffix": "it does not insert text",
    "best_of": "it does not rank candidates",
    "echo": "prompts are not echoed",
}


class _Request(Sampling):
    model: str = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=8)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Declared so the document shows them; refused unless null (UNSUPPORTED).
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    parallel_tool_calls: Any = None
    audio: Any = None
    logit_bias: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: Any = None
    metadata: Any = None
    store: Any = None
    service_tier: Any = None


class StreamOptions(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = False


class ContentPart(Schema):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None


class ChatMessageIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None


class ChatCompletionRequest(_Request):
    messages: list[ChatMessageIn] = Field(min_length=1, examples=[[{"role": "user", "content": "Hello!"}]])
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: Any = None
    modalities: Any = None


class CompletionRequest(_Request):
    prompt: str | list[str] = Field(examples=["Once upon a time"])
    logprobs: int | None = Field(default=None, ge=0, le=5)
    suffix: Any = None
    best_of: Any = None
    echo: Any = None


class CompletionUsage(Schema):
    # OpenAI's own name for it: the document's components are named by class, and the embeddings' usage
    # (prompt and total tokens only) is already "Usage".
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoice(Schema):
    index: int
    message: dict[str, Any]
    logprobs: dict[str, Any] | None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(Schema):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage


class CompletionChoice(Schema):
    index: int
    text: str
    logprobs: dict[str, Any] | None
    finish_reason: Literal["stop", "length"]


class Completion(Schema):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


@dataclass
class GenerationCall:
    """A validated request, its generation started but not yet stepped."""

    runtime: ModelRuntime
    generation: Generation
    chat: bool
    stream: bool
    include_usage: bool
    logprobs: bool
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))


class ChatService:
    def __init__(self, registry: ModelRegistry, schedule: Schedule | None = None) -> None:
        self.registry = registry
        self.schedule = schedule  # holds a generation to the synchronous time budget (a 413, or a batch)

    # --- requests -----------------------------------------------------------------------------

    def prepare_chat(self, body: bytes) -> GenerationCall:
        request = wire.parse(ChatCompletionRequest, body, "chat completion request")
        _refuse_unsupported(request)
        if request.response_format not in (None, {"type": "text"}):
            raise InvalidInput("response_format other than {'type': 'text'} is not supported", param="response_format")
        if request.modalities not in (None, ["text"]):
            raise InvalidInput("modalities other than ['text'] are not supported: it writes text", param="modalities")
        if request.top_logprobs and not request.logprobs:
            raise InvalidInput("top_logprobs needs logprobs: true", param="top_logprobs")
        if request.max_tokens is not None and request.max_completion_tokens is not None:
            raise InvalidInput("send max_completion_tokens or max_tokens, not both", param="max_completion_tokens")
        runtime, generator = text_generator(self.registry, request.model)
        prompt = generator.chat_tokens([_message(i, m) for i, m in enumerate(request.messages)])
        limit = request.max_completion_tokens or request.max_tokens
        param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        logprobs = GenerationParams(1, logprobs=request.logprobs, top_logprobs=request.top_logprobs or 0)
        return self._start(runtime, generator, request, prompt, (limit, param), logprobs, chat=True)

    def prepare_completion(self, body: bytes) -> GenerationCall:
        request = wire.parse(CompletionRequest, body, "completion request")
        _refuse_unsupported(request)
        prompt_text = request.prompt
        if isinstance(prompt_text, list):
            if len(prompt_text) != 1:
                raise InvalidInput(
                    f"prompt has {len(prompt_text)} strings; one prompt per request is answered", param="prompt"
                )
            prompt_text = prompt_text[0]
        runtime, generator = text_generator(self.registry, request.model)
        prompt = generator.text_tokens(prompt_text)
        top = request.logprobs
        logprobs = GenerationParams(1, logprobs=top is not None, top_logprobs=top or 0)
        # The legacy endpoint's own default is 16 tokens.
        limit = request.max_tokens if request.max_tokens is not None else 16
        return self._start(runtime, generator, request, prompt, (limit, "max_tokens"), logprobs, chat=False)

    def _start(
        self,
        runtime: ModelRuntime,
        generator: TextGenerator,
        request: _Request,
        prompt: list[int],
        limit: tuple[int | None, str],
        logprobs: GenerationParams,
        *,
        chat: bool,
    ) -> GenerationCall:
        params = dataclasses.replace(
            sampling_params(runtime, generator, prompt, request, limit=limit),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            n=request.n,
            logprobs=logprobs.logprobs,
            top_logprobs=logprobs.top_logprobs,
        )
        if self.schedule is not None:
            self.schedule.admit(runtime, generation_work(params, limit[1]))
        generation = generator.generate(prompt, params)  # refuses a prompt past the context
        if request.stream_options is not None and not request.stream:
            raise InvalidInput("stream_options is only read with stream: true", param="stream_options")
        include_usage = request.stream_options is not None and request.stream_options.include_usage
        return GenerationCall(runtime, generation, chat, bool(request.stream), include_usage, logprobs.logprobs)

    # --- whole answers ------------------------------------------------------------------------

    def complete(self, call: GenerationCall) -> bytes:
        """Run the generation to its end; the chat.completion or text_completion document."""
        events = run_whole(call.runtime, call.generation)
        n = max((e.index for e in events.events), default=0) + 1
        texts, reasons = [""] * n, ["length"] * n
        tokens: list[list[TokenEvent]] = [[] for _ in range(n)]
        for event in events.events:
            texts[event.index] += event.text
            tokens[event.index].append(event)
            if event.finish_reason is not None:
                reasons[event.index] = event.finish_reason
        name = call.runtime.manifest.name
        if call.chat:
            chat_choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": texts[i], "refusal": None},
                    "logprobs": {"content": [_chat_logprob(e) for e in tokens[i]]} if call.logprobs else None,
                    "finish_reason": reasons[i],
                }
                for i in range(n)
            ]
            document = _envelope(call, "chat.completion", name, chat_choices)
        else:
            text_choices = [
                {
                    "index": i,
                    "text": texts[i],
                    "logprobs": _legacy_logprobs(tokens[i]) if call.logprobs else None,
                    "finish_reason": reasons[i],
                }
                for i in range(n)
            ]
            document = _envelope(call, "text_completion", name, text_choices)
        document["usage"] = _usage(events.usage)
        return wire.dumps(document)

    # --- streams ------------------------------------------------------------------------------

    def stream(self, call: GenerationCall) -> ChatStream:
        return ChatStream(call)


class ChatStream(MeteredStream):
    """Chat or completion chunks, as OpenAI's SDKs read them."""

    def __init__(self, call: GenerationCall) -> None:
        super().__init__(call.runtime, call.generation)
        self.call = call

    def events(self) -> Iterator[bytes]:
        call = self.call
        kind = "chat.completion.chunk" if call.chat else "text_completion"
        name = call.runtime.manifest.name
        opened: set[int] = set()
        for event in call.generation:
            if call.chat and event.index not in opened:
                opened.add(event.index)
                yield self._chunk(kind, name, [_delta(event.index, {"role": "assistant", "content": ""}, None, None)])
            if not event.text and event.logprob is None and event.finish_reason is None:
                continue
            if call.chat:
                logprobs = {"content": [_chat_logprob(event)]} if call.logprobs else None
                content = {"content": event.text} if event.text or event.finish_reason is None else {}
                choice = _delta(event.index, content, logprobs, event.finish_reason)
            else:
                logprobs = _legacy_logprobs([event]) if call.logprobs else None
                choice = {"index": event.index, "text": event.text, "logprobs": logprobs}
                choice["finish_reason"] = event.finish_reason
            yield self._chunk(kind, name, [choice])
        if call.include_usage:
            chunk = _envelope(call, kind, name, [])
            chunk["usage"] = _usage(call.generation.usage.counts())
            yield sse(chunk)
        yield b"data: [DONE]\n\n"

    def _chunk(self, kind: str, name: str, choices: list[dict[str, Any]]) -> bytes:
        chunk = _envelope(self.call, kind, name, choices)
        if self.call.include_usage:
            chunk["usage"] = None
        return sse(chunk)


def _refuse_unsupported(request: _Request) -> None:
    for name, why in UNSUPPORTED.items():
        value = getattr(request, name, None)
        # What asks for nothing (store: false, echo: false, best_of: 1) is no request for the feature.
        if value is not None and value is not False and not (name == "best_of" and value == 1):
            raise InvalidInput(
                f"{name} is not supported: model '{request.model}' {why}; remove {name} from the request", param=name
            )


def _message(index: int, message: ChatMessageIn) -> ChatMessage:
    role = "system" if message.role == "developer" else message.role
    if isinstance(message.content, str):
        return ChatMessage(role, message.content)
    texts = []
    for part_index, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise InvalidInput(
                f"messages[{index}].content[{part_index}] is a '{part.type}' part; this model reads text parts only",
                param=f"messages.{index}.content.{part_index}.type",
            )
        texts.append(part.text)
    return ChatMessage(role, "".join(texts))


def _envelope(call: GenerationCall, kind: str, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    prefix = "chatcmpl" if call.chat else "cmpl"
    return {
        "id": f"{prefix}-{call.id}",
        "object": kind,
        "created": call.created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }


def _delta(index: int, delta: dict[str, Any], logprobs: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _usage(counts: dict[str, int]) -> dict[str, int]:
    prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat_logprob(event: TokenEvent) -> dict[str, Any]:
    chosen = event.logprob
    if chosen is None:
        return {}
    return {
        "token": chosen.token,
        "logprob": chosen.logprob,
        "bytes": chosen.bytes,
        "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in event.top_logprobs],
    }


def _legacy_logprobs(events: list[TokenEvent]) -> dict[str, Any]:
    chosen = [e for e in events if e.logprob is not None]
    return {
        "tokens": [e.logprob.token for e in chosen if e.logprob is not None],
        "token_logprobs": [e.logprob.logprob for e in chosen if e.logprob is not None],
        "top_logprobs": [{t.token: t.logprob for t in e.top_logprobs} for e in chosen],
        "text_offset": [],
    }
