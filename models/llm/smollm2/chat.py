"""The chat prompt: SmolLM2's ChatML template as data a runtime renders without a template engine.

The GGUF carries the template as Jinja text. The generation config keeps that text, and also its parts
(turn opening and closing, the default system prompt), so a serving loop renders prompts with string
formatting; the build checks that this rendering gives the same text as the Jinja template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict


class Message(TypedDict):
    role: str
    content: str


@dataclass(frozen=True)
class ChatFormat:
    turn_start: str = "<|im_start|>"
    turn_end: str = "<|im_end|>"
    default_system: str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        # The template adds its system turn only when the conversation does not open with one.
        turns = list(messages)
        if not turns or turns[0]["role"] != "system":
            turns.insert(0, {"role": "system", "content": self.default_system})
        text = "".join(f"{self.turn_start}{m['role']}\n{m['content']}{self.turn_end}\n" for m in turns)
        if add_generation_prompt:
            text += f"{self.turn_start}assistant\n"
        return text

    def as_config(self) -> dict[str, Any]:
        return {
            "format": "chatml",
            "turn_start": self.turn_start,
            "turn_end": self.turn_end,
            "default_system": self.default_system,
            "generation_prompt": f"{self.turn_start}assistant\n",
        }


CHATML = ChatFormat()


def template_problems(jinja_text: str, render_jinja: Any, fmt: ChatFormat = CHATML) -> list[str]:
    """Conversations whose Jinja rendering differs from ``fmt.render``; ``render_jinja(messages) -> str``."""
    conversations: list[list[Message]] = [
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another one, with a\nnewline."},
        ],
    ]
    if fmt.default_system not in jinja_text:
        return [f"the template no longer holds the default system prompt {fmt.default_system!r}"]
    problems = []
    for messages in conversations:
        want, got = render_jinja(messages), fmt.render(messages)
        if want != got:
            problems.append(f"{[m['role'] for m in messages]}: template gives {want!r}, the format {got!r}")
    return problems
