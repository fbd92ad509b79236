"""The GGUF's own blocks as MatMulNBits weights (models/llm/smollm2/blocks.py), on small made-up blocks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.buildkit import BuildError
from models.llm.smollm2.blocks import FP32_COMPUTE, INT8_COMPUTE, Q41, Q80, BlockGraph, match_rows

onnx: Any = pytest.importorskip("onnx")  # installed with the build tools
ort: Any = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)
N, K = 24, 64


def _q4_1(rows: int = N) -> Q41:
    d = RNG.uniform(0.002, 0.02, (rows, K // 32)).astype(np.float16).astype(np.float32)
    m = -RNG.uniform(0.0, 16.0, (rows, K // 32)).astype(np.float32) * d  # -m/d is rarely an integer
    m = m.astype(np.float16).astype(np.float32)
    return Q41(d=d, m=m, q=RNG.integers(0, 16, (rows, K // 32, 32)).astype(np.uint8))


def _q8_0(rows: int = N) -> Q80:
    d = RNG.uniform(0.001, 0.01, (rows, K // 32)).astype(np.float16).astype(np.float32)
    return Q80(d=d, q=RNG.integers(-128, 128, (rows, K // 32, 32)).astype(np.int8))


def _run(graph: BlockGraph, outputs: dict[str, tuple[int, list[Any]]], feeds: dict[str, Any]) -> list[Any]:
    helper = onnx.helper
    inputs = [
        helper.make_tensor_value_info(name, 7 if value.dtype == np.int64 else 1, list(value.shape))
        for name, value in feeds.items()
    ]
    declared = [helper.make_tensor_value_info(name, kind, shape) for name, (kind, shape) in outputs.items()]
    model = helper.make_model(
        helper.make_graph(graph.nodes, "blocks", inputs, declared, graph.initializers),
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(list(outputs), feeds))


def test_a_q4_1_block_holds_element_j_low_and_j_plus_16_high() -> None:
    block = np.zeros((1, 20), np.uint8)
    block[0, 0:2] = np.frombuffer(np.float16(1.0).tobytes(), np.uint8)  # d = 1, m = 0
    block[0, 4:20] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)

    values = Q41.read(block).values()

    assert values[0].tolist() == [*range(16), *range(15, -1, -1)]


def test_q4_1_weights_with_fractional_zero_points_give_the_exact_product() -> None:
    blocks = _q4_1()
    x = RNG.standard_normal((2, 3, K)).astype(np.float32)
    graph = BlockGraph(FP32_COMPUTE)
    graph.q4_1("x", "y", "/proj", "proj", blocks)

    (y,) = _run(graph, {"y": (1, [2, 3, N])}, {"x": x})

    want = x.astype(np.float64) @ blocks.values().astype(np.float64).T
    assert np.abs(y - want).max() < 1e-5 * np.abs(want).max()


def test_the_lm_head_computed_in_fp32_and_its_embedding_keep_the_q8_0_values() -> None:
    blocks = _q8_0()
    x = RNG.standard_normal((1, 2, K)).astype(np.float32)
    ids = np.array([[3, 0, N - 1]], np.int64)
    graph = BlockGraph(FP32_COMPUTE)
    gathered = graph.q8_0("x", "logits", "/lm_head", "lm_head", blocks)
    graph.embedding("ids", "embedded", gathered, N, K)

    logits, embedded = _run(graph, {"logits": (1, [1, 2, N]), "embedded": (1, [1, 3, K])}, {"x": x, "ids": ids})

    want = x.astype(np.float64) @ blocks.values().astype(np.float64).T
    assert np.abs(logits - want).max() < 1e-5 * np.abs(want).max()
    assert np.array_equal(embedded[0], blocks.values()[ids[0]])


def test_the_int8_computed_lm_head_gathers_its_embedding_from_the_same_8_bit_blocks() -> None:
    blocks = _q8_0()
    ids = np.array([[5, 1]], np.int64)
    graph = BlockGraph(INT8_COMPUTE)
    gathered = graph.q8_0("x", "logits", "/lm_head", "lm_head", blocks)
    graph.embedding("ids", "embedded", gathered, N, K)

    (embedded,) = _run(graph, {"embedded": (1, [1, 2, K])}, {"x": np.zeros((1, 1, K), np.float32), "ids": ids})

    assert gathered[2] == 8 and np.array_equal(embedded[0], blocks.values()[ids[0]])


def test_rows_are_matched_by_their_values_whatever_their_order() -> None:
    q, k = _q4_1(6).values(), _q4_1(2).values()
    fused = np.concatenate([q[[1, 0, 5, 4, 3, 2]], k[[1, 0]]])

    assert match_rows(fused, [q, k]) == [(0, 1), (0, 0), (0, 5), (0, 4), (0, 3), (0, 2), (1, 1), (1, 0)]
    with pytest.raises(BuildError, match="1 of 2 weight rows"):
        match_rows(np.stack([q[0], q[0] + 1]), [q])
