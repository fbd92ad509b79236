"""The SmolLM2 build's own parts that need no weights: chat rendering, generation config, signature, scoring."""

from __future__ import annotations

from typing import Any

import pytest

from models.llm.smollm2.chat import CHATML, Message, template_problems
from models.llm.smollm2.convert import expected_signature
from models.llm.smollm2.generation import generation_config
from models.llm.smollm2.quality import prefix_agreement

# SmolLM2-135M-Instruct's template as its GGUF ships it.
JINJA = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_a_user_turn_gets_the_default_system_prompt_and_the_assistant_opening() -> None:
    text = CHATML.render([{"role": "user", "content": "Hi"}])

    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_conversation_with_its_own_system_turn_keeps_it() -> None:
    messages: list[Message] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]

    text = CHATML.render(messages, add_generation_prompt=False)

    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"


def test_the_rendering_matches_the_jinja_template() -> None:
    jinja2: Any = pytest.importorskip("jinja2")  # installed with the build tools; the build checks with it too
    template = jinja2.Environment().from_string(JINJA)

    def render(messages: list[Message]) -> str:
        return str(template.render(messages=messages, add_generation_prompt=True))

    assert template_problems(JINJA, render) == []


def test_a_template_that_differs_is_reported() -> None:
    problems = template_problems(JINJA, lambda messages: "something else")

    assert len(problems) == 3


def test_the_generation_config_stops_at_the_end_of_turn() -> None:
    config = generation_config(bos_id=1, eos_id=2, pad_id=2, chat_template=JINJA)

    assert config["stop_token_ids"] == [0, 2] and config["context_length"] == 8192
    assert config["chat"]["generation_prompt"] == "<|im_start|>assistant\n"
    assert config["kv_cache"]["past_key"].format(layer=3) == "past_key_values.3.key"


def test_the_signature_is_the_cache_decoder() -> None:
    inputs, outputs = expected_signature()

    assert [t.name for t in inputs[:3]] == ["input_ids", "attention_mask", "past_key_values.0.key"]
    assert len(inputs) == 62 and len(outputs) == 61
    assert outputs[0].shape == (-1, -1, 49152) and inputs[-1].shape == (-1, 3, -1, 64)


def test_prefix_agreement_counts_until_the_first_difference() -> None:
    assert prefix_agreement([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert prefix_agreement([1, 2, 9, 4], [1, 2, 3, 4]) == 0.5
    assert prefix_agreement([1, 2], [1, 2, 3, 4]) == 0.5  # stopping early is not the same answer
