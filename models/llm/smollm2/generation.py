"""The generation config written beside the graph: what a serving loop needs besides the graph and tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.llm.smollm2.chat import CHATML, ChatFormat
from models.llm.smollm2.recipe import CONTEXT_LENGTH, HEAD_DIM, KV_HEADS, LAYERS, VOCAB


def generation_config(
    *, bos_id: int, eos_id: int, pad_id: int, chat_template: str, fmt: ChatFormat = CHATML
) -> dict[str, Any]:
    return {
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        # Generation stops at the end of the assistant's turn; <|endoftext|> (id 0) only ends pretraining text.
        "stop_token_ids": sorted({eos_id, 0}),
        "pad_token_id": pad_id,
        "context_length": CONTEXT_LENGTH,
        "vocab_size": VOCAB,
        # The prompt is text the tokenizer reads as is: the template already writes every special token.
        "add_special_tokens": False,
        "chat": fmt.as_config(),
        "chat_template": chat_template,
        "kv_cache": kv_cache_layout(),
    }


def kv_cache_layout() -> dict[str, Any]:
    """How the graph's cache tensors are named and shaped (the manifest's tensor list cannot say which pair)."""
    return {
        "layers": LAYERS,
        "kv_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "datatype": "FP32",
        "past_key": "past_key_values.{layer}.key",
        "past_value": "past_key_values.{layer}.value",
        "present_key": "present.{layer}.key",
        "present_value": "present.{layer}.value",
        "shape": ["batch", KV_HEADS, "sequence", HEAD_DIM],
        # The attention op takes each sequence's length from attention_mask and applies the rotary
        # embedding itself: there is no position_ids input, and the first call takes an empty past.
        "positions": "from attention_mask",
        "empty_past_shape": [1, KV_HEADS, 0, HEAD_DIM],
    }


def write_generation_config(path: Path, config: dict[str, Any]) -> None:
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
