"""Text generation: what a runtime that writes text offers beyond ``predict``.

The OpenAI chat and completions endpoints (``aimass.protocol.openai_chat``) are written once, here in the core,
for any runtime that is also a ``TextGenerator``. The core never imports a domain, so the interface lives
here: the endpoints turn a request into ``GenerationParams`` and prompt tokens, then read the runtime's
``Generation`` as an iterator of ``TokenEvent``s, one per generated token, so an answer can be streamed as
it is written.

A ``Generation`` is pulled one token at a time by whoever reads it (a worker thread, step by step), and
``stop`` may be called from any thread: a client that leaves stops the model before its next step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """How to choose each token. ``temperature`` 0 is greedy; ``seed`` makes sampling repeatable."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = 1
    # Log-probabilities of each chosen token, and of the ``top_logprobs`` likeliest at its place.
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class TokenEvent:
    """One step of one choice: the token chosen and the text it releases.

    ``text`` may be empty although a token was chosen: text that could be the start of a stop sequence is
    held until it is known not to be one. A choice's last event carries its ``finish_reason``.
    """

    index: int
    text: str
    logprob: TokenLogprob | None = None
    top_logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None


@dataclass
class GenerationUsage:
    prompt_tokens: int
    completion_tokens: int = 0

    def counts(self) -> dict[str, int]:
        """The counts a usage record and a response read; ``tokens``, their sum, is what is billed."""
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "tokens": total}


@dataclass
class Generation(ABC):
    """The tokens of one request, as they are written. ``usage`` counts what was generated so far."""

    usage: GenerationUsage
    stopped: bool = field(default=False, init=False)

    @abstractmethod
    def __iter__(self) -> Iterator[TokenEvent]: ...

    def stop(self) -> None:
        """Stop before the next model step (thread-safe: a flag the stepping thread reads)."""
        self.stopped = True


class TextGenerator(ABC):
    """A runtime that writes text: tokens in, tokens out, with the model's own chat template and limits."""

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Tokens the model attends to: prompt and completion together."""

    @property
    @abstractmethod
    def default_max_tokens(self) -> int:
        """Tokens generated when a request sets no limit (never more than the context leaves)."""

    @abstractmethod
    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt tokens of a conversation in the model's chat template, ready for the assistant's turn."""

    @abstractmethod
    def text_tokens(self, text: str) -> list[int]:
        """The prompt tokens of plain text (the completions endpoint)."""

    @abstractmethod
    def generate(self, prompt: Sequence[int], params: GenerationParams) -> Generation:
        """Start generating; nothing runs until the returned generation is iterated.

        Raise InvalidInput for a prompt past the context (naming its length and the context's).
        """
