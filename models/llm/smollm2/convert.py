"""The graph: onnxruntime-genai's model builder over the saved folder, folded into one file, and its checks.

The builder's precisions re-quantize the reference's fp32 weights; the ``q4_1`` precisions convert at fp32 and
then carry the GGUF's own blocks into the graph (``blocks.py``), so its weights are the reference's exactly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aimass.store.manifest import Datatype, TensorSpec
from models.buildkit import BuildError
from models.llm.smollm2 import blocks
from models.llm.smollm2.recipe import HEAD_DIM, KV_HEADS, LAYERS, VOCAB

# What each of the builder's precisions passes to it. Symmetric int8 (the builder's default) changes greedy
# answers from the first token; asymmetric int8 keeps them (MODEL_CARD.md has the numbers).
BUILDER: dict[str, tuple[str, ...]] = {
    "fp32": ("-p", "fp32"),
    "int8": ("-p", "int8", "--extra_options", "is_symmetric=false"),
    "int8-symmetric": ("-p", "int8"),
    "int4": ("-p", "int4"),
}
# The GGUF's own Q4_1 / Q8_0 blocks, and the MatMulNBits accuracy level they are computed at: fp32 gives the
# reference's answers, int8 (activations quantized per block) is faster and drifts from them.
GGUF_BLOCKS: dict[str, int] = {"q4_1": blocks.FP32_COMPUTE, "q4_1-int8": blocks.INT8_COMPUTE}
PRECISIONS = (*BUILDER, *GGUF_BLOCKS)


def convert(folder: Path, scratch: Path, precision: str, gguf: Path, target: Path) -> None:
    """Write the graph of ``precision`` to ``target`` (one self-contained file); ``scratch`` holds the
    builder's output."""
    if precision in GGUF_BLOCKS:
        blocks.carry_blocks(run_builder(folder, scratch, "fp32"), gguf, target, GGUF_BLOCKS[precision])
    else:
        fold_into_one_file(run_builder(folder, scratch, precision), target)


def run_builder(folder: Path, out: Path, precision: str) -> Path:
    """Convert the Hugging Face ``folder`` into ``out``; return the graph's path (weights beside it)."""
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(folder), "-o", str(out), "-e", "cpu", "-c", str(out / "cache"),
        *BUILDER[precision],
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"the ONNX builder failed ({precision}): {done.stderr[-2000:]}")
    return out / "model.onnx"


def fold_into_one_file(graph: Path, target: Path) -> None:
    """Save the graph with its weights inside: the store hashes and serves each file as a whole, and the graph
    is far below protobuf's 2 GB limit."""
    import onnx

    model = onnx.load(str(graph), load_external_data=True)
    blocks.save_stable(model, target)


_DATATYPES: dict[int, Datatype] = {1: "FP32", 7: "INT64", 10: "FP16"}


def signature(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs and outputs as the manifest records them; named dimensions become -1."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def specs(values: Sequence[onnx.ValueInfoProto]) -> list[TensorSpec]:
        found = []
        for value in values:
            kind = value.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
            found.append(TensorSpec(name=value.name, datatype=_DATATYPES[kind.elem_type], shape=shape))
        return found

    return specs(graph.input), specs(graph.output)


def expected_signature() -> tuple[list[TensorSpec], list[TensorSpec]]:
    cache = (-1, KV_HEADS, -1, HEAD_DIM)
    inputs = [
        TensorSpec(name="input_ids", datatype="INT64", shape=(-1, -1)),
        TensorSpec(name="attention_mask", datatype="INT64", shape=(-1, -1)),
    ]
    outputs = [TensorSpec(name="logits", datatype="FP32", shape=(-1, -1, VOCAB))]
    # The builder lists every layer's key, then every layer's value.
    for kind in ("key", "value"):
        for layer in range(LAYERS):
            inputs.append(TensorSpec(name=f"past_key_values.{layer}.{kind}", datatype="FP32", shape=cache))
            outputs.append(TensorSpec(name=f"present.{layer}.{kind}", datatype="FP32", shape=cache))
    return inputs, outputs


def verify_graph(path: Path) -> None:
    """Self-contained, and the signature the generation config describes.

    The builder uses ONNX Runtime's own operators (SimplifiedLayerNormalization, GroupQueryAttention), which
    the ONNX checker does not know: ONNX Runtime loading the graph is the validity check, in the next step.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise BuildError(f"{path.name} keeps {len(external)} tensors in external files, e.g. {external[0]}")
    found = signature(path)
    # The builder names the head dimension of the cache (kv_cache_dim); it is always HEAD_DIM here.
    relaxed = tuple([s.model_copy(update={"shape": _fix_head(s.shape)}) for s in side] for side in found)
    if relaxed != expected_signature():
        raise BuildError(f"{path.name}: the graph's inputs and outputs are not the decoder this build describes")


def _fix_head(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:3], HEAD_DIM) if len(shape) == 4 and shape[3] == -1 else shape
