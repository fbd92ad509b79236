"""The GGUF's own quantized blocks as the graph's weights, instead of a re-quantization of their fp32 values.

The package ships every linear weight as Q4_1 (blocks of 32 along the input dimension: fp16 scale ``d``, fp16
minimum ``m``, 32 4-bit ``q``; value ``d*q + m``) and the tied embedding / lm_head as Q8_0 (fp16 ``d``, 32 int8
``q``; value ``d*q``). The reference is exactly those values in fp32, and so is the builder's fp32 graph: this
module replaces each of that graph's weight MatMuls by ONNX Runtime's ``MatMulNBits`` over the same blocks.

``MatMulNBits`` computes ``(q - zero_point) * scale`` per block. A Q4_1 block's zero point ``-m/d`` is rarely an
integer; ONNX Runtime accepts float zero points but then dequantizes the whole weight on every call (16 to 40
times slower than its packed kernels, MODEL_CARD.md). So each block takes the integer zero point nearest
``-m/d`` and the rest, ``c = m + d*round(-m/d)``, is added back exactly:
``x @ W.T = MatMulNBits(x) + blocksums(x) @ C.T``, where ``blocksums`` sums each block of 32 inputs (one small
fp32 MatMul per distinct input, shared by the weights that read it). Q8_0 is 8-bit with ONNX Runtime's default
zero point 128 (``q + 128``); where the graph computes in fp32, which ONNX Runtime's 8-bit kernels do not, it is
split into two 4-bit halves, ``d*(q8 - 128) = 16d*(hi - 8) + d*lo``, read as one ``MatMulNBits`` over the
input twice.

``accuracy_level`` picks ONNX Runtime's kernel: 1 computes in fp32 (the reference's arithmetic, up to summation
order), 4 quantizes each block of 32 activations to int8 first (faster, and the greedy answers drift from the
reference's much as re-quantized weights make them drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.buildkit import BuildError
from models.buildkit.record import release

if TYPE_CHECKING:
    import onnx

BLOCK = 32
FP32_COMPUTE = 1
INT8_COMPUTE = 4

_Array = np.ndarray[Any, Any]

# The GGUF tensors behind each of the builder's weights (per layer); q, k and v are one fused weight there.
_SOURCES = {
    "attn.qkv_proj": ("attn_q", "attn_k", "attn_v"),
    "attn.o_proj": ("attn_output",),
    "mlp.gate_proj": ("ffn_gate",),
    "mlp.up_proj": ("ffn_up",),
    "mlp.down_proj": ("ffn_down",),
}
_LM_HEAD = "lm_head.MatMul.weight"
_EMBEDDING = "token_embd.weight"


@dataclass(frozen=True)
class Q41:
    """Q4_1 blocks of a weight [rows, K]: scales and minimums [rows, K/32], 4-bit values [rows, K/32, 32]."""

    d: _Array
    m: _Array
    q: _Array

    @classmethod
    def read(cls, data: _Array) -> Q41:
        # A block is 20 bytes: d, m (fp16), then 16 bytes holding element j in the low nibble of byte j and
        # element j + 16 in its high nibble.
        blocks = np.asarray(data, dtype=np.uint8).reshape(data.shape[0], -1, 20)
        packed = blocks[:, :, 4:]
        return cls(
            d=_half(blocks[:, :, 0:2]), m=_half(blocks[:, :, 2:4]), q=np.concatenate([packed & 15, packed >> 4], 2)
        )

    def values(self) -> _Array:
        """The fp32 weight, computed as the GGUF reader (and so the reference) computes it."""
        return (self.d[..., None] * self.q.astype(np.float32) + self.m[..., None]).reshape(self.d.shape[0], -1)

    def rows(self, index: _Array) -> Q41:
        return Q41(self.d[index], self.m[index], self.q[index])


@dataclass(frozen=True)
class Q80:
    """Q8_0 blocks of a weight [rows, K]: scales [rows, K/32], int8 values [rows, K/32, 32]."""

    d: _Array
    q: _Array

    @classmethod
    def read(cls, data: _Array) -> Q80:
        blocks = np.asarray(data, dtype=np.uint8).reshape(data.shape[0], -1, 34)  # d (fp16), then 32 int8
        return cls(d=_half(blocks[:, :, 0:2]), q=blocks[:, :, 2:].copy().view(np.int8))

    def values(self) -> _Array:
        return (self.d[..., None] * self.q.astype(np.float32)).reshape(self.d.shape[0], -1)

    def rows(self, index: _Array) -> Q80:
        return Q80(self.d[index], self.q[index])


def _half(two_bytes: _Array) -> _Array:
    halves: _Array = np.ascontiguousarray(two_bytes).view(np.float16)[..., 0]
    return halves.astype(np.float32)


def pack4(values: _Array) -> _Array:
    """4-bit values along the last axis, two to a byte, the even one in the low nibble (MatMulNBits' order)."""
    packed: _Array = values[..., 0::2] | (values[..., 1::2] << 4)
    return packed.astype(np.uint8)


def match_rows(weight: _Array, sources: list[_Array]) -> list[tuple[int, int]]:
    """For each row of ``weight`` [N, K], the (source, row) with bit-identical values.

    Rows are matched by their bytes: transformers reorders the q and k rows of a llama GGUF (llama.cpp permutes
    them for its rotary embedding) and the builder concatenates q, k and v, so positions do not say which is which.
    """
    where: dict[bytes, tuple[int, int]] = {}
    for s, values in enumerate(sources):
        for r in range(values.shape[0]):
            where.setdefault(values[r].tobytes(), (s, r))
    found = [where.get(weight[n].tobytes()) for n in range(weight.shape[0])]
    missing = [n for n, f in enumerate(found) if f is None]
    if missing:
        raise BuildError(f"{len(missing)} of {weight.shape[0]} weight rows are in no GGUF block, e.g. row {missing[0]}")
    return [f for f in found if f is not None]


def _gguf_sources(weight: str) -> list[str]:
    """The GGUF tensors that hold the builder's ``weight`` (e.g. model.layers.3.attn.qkv_proj.MatMul.weight)."""
    if weight == _LM_HEAD:
        return [_EMBEDDING]
    parts = weight.split(".")
    if len(parts) != 7 or parts[:2] != ["model", "layers"] or ".".join(parts[3:5]) not in _SOURCES:
        raise BuildError(f"the builder's weight {weight} is none this build knows in the GGUF")
    return [f"blk.{parts[2]}.{name}.weight" for name in _SOURCES[".".join(parts[3:5])]]


class BlockGraph:
    """The new nodes and initializers, and the blocksums already computed per input."""

    def __init__(self, accuracy_level: int) -> None:
        self.accuracy_level = accuracy_level
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._blocksums: dict[str, str] = {}
        self._sum_matrices: set[int] = set()

    def constant(self, name: str, value: _Array) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attributes: Any) -> None:
        from onnx import helper

        domain = "com.microsoft" if op in ("MatMulNBits", "GatherBlockQuantized") else ""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attributes))

    def matmul_nbits(self, x: str, y: str, name: str, weights: list[str], *, k: int, n: int, bits: int) -> None:
        self.node(
            "MatMulNBits", [x, *weights], [y], name, K=k, N=n, bits=bits, block_size=BLOCK,
            accuracy_level=self.accuracy_level,
        )  # fmt: skip

    def blocksums(self, x: str, k: int, name: str) -> str:
        """``x`` [..., K] summed over each block of 32 [..., K/32]: one MatMul with a 0/1 matrix, once per input."""
        if x not in self._blocksums:
            matrix = f"blocksum_matrix_{k}"
            if k not in self._sum_matrices:
                ones = np.zeros((k, k // BLOCK), np.float32)
                ones[np.arange(k), np.arange(k) // BLOCK] = 1.0
                self.constant(matrix, ones)
                self._sum_matrices.add(k)
            self._blocksums[x] = f"{name}/blocksums"
            self.node("MatMul", [x, matrix], [self._blocksums[x]], f"{name}/BlockSums")
        return self._blocksums[x]

    def q4_1(self, x: str, y: str, name: str, base: str, blocks: Q41) -> None:
        """``y = x @ W.T`` for Q4_1 ``blocks``: integer zero points, and the blocks' remainders added back."""
        n, k = blocks.d.shape[0], blocks.d.shape[1] * BLOCK
        with np.errstate(divide="ignore", invalid="ignore"):
            zero = np.where(blocks.d != 0, np.clip(np.rint(-blocks.m / blocks.d), 0, 15), 0).astype(np.uint8)
        remainder = (blocks.m + blocks.d * zero.astype(np.float32)).astype(np.float32)  # W = d*(q - zero) + c
        rebuilt = blocks.d[..., None] * (blocks.q.astype(np.float32) - zero[..., None]) + remainder[..., None]
        values = blocks.values()
        if np.max(np.abs(rebuilt.reshape(n, k) - values)) > 1e-6 * np.max(np.abs(values)):  # fp32 rounding only
            raise BuildError(f"{base}: zero points and remainders do not give back the Q4_1 values")
        if zero.shape[1] % 2:
            zero = np.concatenate([zero, np.zeros((n, 1), np.uint8)], axis=1)
        weights = [
            self.constant(f"{base}.weight_Q4", pack4(blocks.q)),
            self.constant(f"{base}.weight_scales", blocks.d),
            self.constant(f"{base}.weight_zero_points", pack4(zero)),
        ]
        self.matmul_nbits(x, f"{y}/blocks", f"{name}_Q4", weights, k=k, n=n, bits=4)
        sums = self.blocksums(x, k, name)
        remainders = self.constant(f"{base}.weight_remainders", remainder.T)
        self.node("MatMul", [sums, remainders], [f"{y}/remainders"], f"{name}/Remainders")
        self.node("Add", [f"{y}/blocks", f"{y}/remainders"], [y], f"{name}/AddRemainders")

    def q8_0(self, x: str, y: str, name: str, base: str, blocks: Q80) -> tuple[str, list[str], int]:
        """``y = x @ W.T`` for Q8_0 ``blocks``; returns what the embedding can gather from: the blocks' data, their
        scales (and zero points), and their bits."""
        n, k = blocks.d.shape[0], blocks.d.shape[1] * BLOCK
        offset = (blocks.q.astype(np.int16) + 128).astype(np.uint8)  # the zero point is MatMulNBits' default
        if self.accuracy_level != FP32_COMPUTE:
            data = self.constant(f"{base}.weight_Q8", offset)
            scales = self.constant(f"{base}.weight_scales", blocks.d)
            self.matmul_nbits(x, y, f"{name}_Q8", [data, scales], k=k, n=n, bits=8)
            return data, [scales], 8
        # ONNX Runtime's 8-bit kernels compute in int8 only: two 4-bit halves over [x, x] instead.
        halves = np.concatenate([pack4(offset >> 4), pack4(offset & 15)], axis=1)
        zeros = np.concatenate([np.full(blocks.d.shape, 8, np.uint8), np.zeros(blocks.d.shape, np.uint8)], axis=1)
        weights = [
            self.constant(f"{base}.weight_Q4x2", halves),
            self.constant(f"{base}.weight_scales", np.concatenate([16 * blocks.d, blocks.d], axis=1)),
            self.constant(f"{base}.weight_zero_points", pack4(zeros)),
        ]
        self.node("Concat", [x, x], [f"{x}/twice"], f"{name}/Twice", axis=-1)
        self.matmul_nbits(f"{x}/twice", y, f"{name}_Q4x2", weights, k=2 * k, n=n, bits=4)
        return weights[0], weights[1:], 4

    def embedding(self, ids: str, y: str, gathered: tuple[str, list[str], int], rows: int, width: int) -> None:
        """The tied embedding read from the lm_head's own blocks (GatherBlockQuantized)."""
        data, quantization, bits = gathered
        name = "/model/embed_tokens"
        shape = self.constant("embed_tokens_shape", np.array([rows, width]))  # 8-bit, or two 4-bit halves
        self.node("Reshape", [data, shape], [f"{name}/blocks"], f"{name}/Reshape")
        # Two 4-bit halves are gathered side by side [..., 2K], then added: 16d*(hi - 8) + d*lo.
        gathered_to = y if bits == 8 else f"{name}/halves"
        self.node(
            "GatherBlockQuantized", [f"{name}/blocks", ids, *quantization], [gathered_to], f"{name}/Gather",
            bits=bits, block_size=BLOCK, gather_axis=0, quantize_axis=1,
        )  # fmt: skip
        if bits == 8:
            return
        split = self.constant("embed_tokens_halves_shape", np.array([0, 0, 2, width]))
        self.node("Reshape", [f"{name}/halves", split], [f"{name}/halves_apart"], f"{name}/Halves")
        axis = self.constant("embed_tokens_halves_axis", np.array([2]))
        self.node("ReduceSum", [f"{name}/halves_apart", axis], [y], f"{name}/AddHalves", keepdims=0)


def carry_blocks(graph: Path, gguf: Path, target: Path, accuracy_level: int) -> None:
    """Write ``target``: the builder's fp32 ``graph`` with every weight the GGUF's own blocks, in one file.

    Each of the fp32 graph's weights must be bit-identical to the dequantized blocks it is replaced by.
    """
    import onnx
    from gguf import GGMLQuantizationType, GGUFReader
    from onnx import numpy_helper

    tensors = {t.name: t for t in GGUFReader(str(gguf)).tensors}
    model = onnx.load(str(graph), load_external_data=True)
    initializers = {t.name: t for t in model.graph.initializer}
    new = BlockGraph(accuracy_level)
    replaced: set[str] = set()
    gathered: tuple[str, list[str], int] | None = None
    lm_head: Q80 | None = None
    for node in model.graph.node:
        weight = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        if weight not in initializers:
            new.nodes.append(node)
            continue
        values = np.ascontiguousarray(numpy_helper.to_array(initializers[weight]).T)  # [N, K]
        base = weight.removesuffix(".weight")
        x, y = node.input[0], node.output[0]
        sources = _gguf_sources(weight)
        kinds = {tensors[s].tensor_type for s in sources}
        if kinds == {GGMLQuantizationType.Q8_0}:
            embedding = Q80.read(tensors[sources[0]].data)
            lm_head = embedding.rows(_indices(match_rows(values, [embedding.values()])))
            _same_bits(lm_head.values(), values, weight)
            gathered = new.q8_0(x, y, node.name, base, lm_head)
        elif kinds == {GGMLQuantizationType.Q4_1}:
            parts = [Q41.read(tensors[s].data) for s in sources]
            found = match_rows(values, [p.values() for p in parts])
            blocks = Q41(*(np.stack([getattr(parts[s], f)[r] for s, r in found]) for f in ("d", "m", "q")))
            _same_bits(blocks.values(), values, weight)
            new.q4_1(x, y, node.name, base, blocks)
        else:
            raise BuildError(f"{weight} comes from GGUF tensors of types {sorted(k.name for k in kinds)}")
        replaced.add(weight)
    if gathered is None or lm_head is None:
        raise BuildError(f"the fp32 graph has no {_LM_HEAD}")
    _gather_from_lm_head(new, gathered, lm_head)
    kept = [t for t in model.graph.initializer if t.name not in replaced]
    del model.graph.initializer[:]
    model.graph.initializer.extend([*kept, *new.initializers])
    del model.graph.node[:]
    model.graph.node.extend(new.nodes)
    save_stable(model, target)


def _gather_from_lm_head(new: BlockGraph, gathered: tuple[str, list[str], int], lm_head: Q80) -> None:
    """Replace the embedding's Gather (of the transposed fp32 lm_head: the weights are tied) by a gather of the
    lm_head's blocks. The embedding keeps the Q8_0 values exactly."""
    producers = {out: node for node in new.nodes for out in node.output}
    gathers = [n for n in new.nodes if n.op_type == "Gather" and n.input[1] == "input_ids"]
    if len(gathers) != 1:
        raise BuildError(f"the fp32 graph has {len(gathers)} embedding Gathers of input_ids, not one")
    gather = gathers[0]
    transpose = producers.get(gather.input[0])
    if transpose is None or transpose.op_type != "Transpose" or transpose.input[0] != _LM_HEAD:
        raise BuildError("the fp32 graph's embedding is not the transposed lm_head: the weights are not tied")
    position = new.nodes.index(gather)
    nodes, new.nodes = new.nodes, []
    rows, width = lm_head.d.shape[0], lm_head.d.shape[1] * BLOCK
    new.embedding(gather.input[1], gather.output[0], gathered, rows, width)
    nodes[position : position + 1] = new.nodes
    new.nodes = [n for n in nodes if n is not transpose]


def _indices(found: list[tuple[int, int]]) -> _Array:
    return np.array([row for _, row in found])


def _same_bits(got: _Array, want: _Array, weight: str) -> None:
    if got.shape != want.shape or not np.array_equal(got.view(np.uint32), want.astype(np.float32).view(np.uint32)):
        raise BuildError(f"{weight}: the GGUF blocks it was matched to dequantize to other values")


def save_stable(model: Any, target: Path) -> None:
    """Save ``model`` as one file that two builds write byte for byte.

    The ONNX builder stamps its producer version with a local tag that changes from run to run (0.18.0+86c52c4,
    then 0.18.0+6283ffe), the only difference between two builds' graphs: the release alone is kept.
    """
    import onnx

    model.producer_version = release(model.producer_version)
    onnx.save(model, str(target), save_as_external_data=False)
