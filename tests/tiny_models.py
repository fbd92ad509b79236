"""Tiny but real models, built into a test's directory in milliseconds.

The text model has the real one's signature: a word-level tokenizer.json and an ONNX graph that embeds,
mean-pools over the attention mask and L2-normalises, so every protocol path runs real ONNX Runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, read_manifest, write_manifest

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "runs",
    "fast",
    "slow",
    "red",
    "blue",
    "green",
    "house",
    "car",
    "tree",
    "sky",
    "sun",
    "moon",
]
DIM = 8
TINY_TEXT = "tiny-text"


def _tokenizer(path: Path) -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1} | {word: i + 2 for i, word in enumerate(WORDS)}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(path))


def _embedding_graph(path: Path, vocab_size: int, seed: int = 7) -> None:
    table = np.random.default_rng(seed).standard_normal((vocab_size, DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tokens"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["tokens", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "eps"], ["safe"]),
        helper.make_node("Div", ["summed", "safe"], ["mean"]),
        helper.make_node("LpNormalization", ["mean"], ["sentence_embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_text",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", DIM])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([1e-9], dtype=np.float32), "eps"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tiny_text(store: Path, name: str = TINY_TEXT, version: str = "1", seed: int = 7) -> Path:
    directory = store / name / version
    directory.mkdir(parents=True)
    _tokenizer(directory / "tokenizer.json")
    _embedding_graph(directory / "model.onnx", vocab_size=len(WORDS) + 2, seed=seed)
    manifest = ModelManifest(
        name=name,
        version=version,
        domain="text",
        task="embedding",
        description="tiny word-level embedding model for tests",
        files=(file_entry(directory, "model.onnx"), file_entry(directory, "tokenizer.json")),
        engine=EngineSpec(
            file="model.onnx",
            inputs=(
                TensorSpec(name="input_ids", datatype="INT64", shape=(-1, -1)),
                TensorSpec(name="attention_mask", datatype="INT64", shape=(-1, -1)),
            ),
            outputs=(TensorSpec(name="sentence_embedding", datatype="FP32", shape=(-1, DIM)),),
        ),
        inputs=(TensorSpec(name="text", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="embedding", datatype="FP32", shape=(-1, DIM)),),
        preprocessing={"tokenizer": "tokenizer.json", "max_length": 16, "pad_token": "[PAD]", "pad_id": 0},
        created_at="2026-11-28T00:00:00Z",
    )
    write_manifest(directory, manifest)
    return directory


def reference_embedding(text: str, seed: int = 7) -> np.ndarray:
    """What the tiny model must answer, computed without ONNX Runtime."""
    vocab = {word: i + 2 for i, word in enumerate(WORDS)}
    table = np.random.default_rng(seed).standard_normal((len(WORDS) + 2, DIM)).astype(np.float32)
    ids = [vocab.get(word, 1) for word in text.split()][:16]
    mean = table[ids].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def add_validation_samples(directory: Path, texts: list[str], seed: int, cosine: float = 0.999) -> None:
    """Give a tiny model version validation samples whose expected outputs come from ``seed``'s table.

    With the version's own seed they pass; with another seed they describe a different model and fail.
    """
    samples = {
        "inputs": {"text": texts},
        "outputs": {"embedding": [reference_embedding(text, seed).tolist() for text in texts]},
        "tolerance": {"cosine": cosine},
    }
    (directory / "samples.json").write_text(json.dumps(samples))
    manifest = read_manifest(directory)
    files = (*manifest.files, file_entry(directory, "samples.json"))
    write_manifest(directory, manifest.model_copy(update={"files": files, "validation": "samples.json"}))
