"""The graph: the encoder wrapped to end in the sentence embedding, its ONNX export, and the checks on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, onnx_export
from models.text.minilm.served import encode
from models.text.minilm.spec import EMBEDDING_DIM, ENGINE_INPUTS, ENGINE_OUTPUT, MAX_LENGTH, MAX_POSITIONS, OPSET

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer


def embedding_module(backbone: torch.nn.Module) -> torch.nn.Module:
    """Wrap the encoder so the graph ends in the sentence embedding itself.

    Pooling and normalisation live in the graph so serving is one engine call and the server has no
    numerics of its own that could drift from the reference (sentence-transformers' Pooling + Normalize).
    """
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # Single-segment input: token types are all zero, so they are made here and not a graph input.
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            # Mean over real tokens only; the clamp matches sentence-transformers and guards an all-pad row.
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return SentenceEmbedding(backbone).eval()


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> str:
    batch_and_sequence = {0: "batch", 1: "sequence"}
    return onnx_export.export_onnx(
        module,
        example,
        path,
        opset=OPSET,
        inputs=ENGINE_INPUTS,
        outputs=[ENGINE_OUTPUT],
        axes={"input_ids": batch_and_sequence, "attention_mask": batch_and_sequence, ENGINE_OUTPUT: {0: "batch"}},
        limits={"sequence": MAX_POSITIONS},
    )


def verify_graph(work: Path, tokenizer: Tokenizer) -> None:
    """Check the graph is valid, self-contained, has the contracted signature and runs at any shape."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    path = work / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    # The manifest lists one engine file: weights stored beside it would be missed by the hash check.
    external = [t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise BuildError(f"model.onnx keeps {len(external)} tensors in external files, e.g. {external[0]}")

    signature = {
        "inputs": [(i.name, i.type.tensor_type.elem_type) for i in graph.input],
        "outputs": [(o.name, o.type.tensor_type.elem_type) for o in graph.output],
    }
    expected = {
        "inputs": [(name, onnx.TensorProto.INT64) for name in ENGINE_INPUTS],
        "outputs": [(ENGINE_OUTPUT, onnx.TensorProto.FLOAT)],
    }
    if signature != expected:
        raise BuildError(f"graph signature {signature} is not {expected}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    vocab = tokenizer.get_vocab_size()
    for batch, length in ((1, 5), (3, 17), (2, MAX_LENGTH)):
        ids = rng.integers(1000, vocab, size=(batch, length), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1:, length // 2 :] = 0  # later rows padded: the mask must be honoured at every shape
        (out,) = session.run([ENGINE_OUTPUT], {"input_ids": ids, "attention_mask": mask})
        if out.shape != (batch, EMBEDDING_DIM) or out.dtype != np.float32 or not np.isfinite(out).all():
            raise BuildError(f"input {batch}x{length} gave {out.dtype} {out.shape}, not float32 [n,384]")
        if not np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5):
            raise BuildError(f"input {batch}x{length}: embeddings are not unit length")

    # Dynamic padding means a text is batched with different amounts of [PAD]; its embedding must not change.
    texts = ["Short text.", "A considerably longer sentence that forces the short one to be padded a lot."]
    together = _embed(session, tokenizer, texts)
    alone = np.concatenate([_embed(session, tokenizer, [t]) for t in texts])
    drift = float(np.abs(together - alone).max())
    if drift > 1e-5:
        raise BuildError(f"padding changes the embedding by up to {drift:.2e}")


def _embed(session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str]) -> Any:
    ids, mask = encode(tokenizer, texts)
    return session.run([ENGINE_OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]
