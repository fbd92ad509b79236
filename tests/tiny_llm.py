"""A tiny decoder with the real one's signature, built into a test's model store in milliseconds.

The graph has the inputs and outputs of onnxruntime-genai's decoders: ``input_ids`` [batch, seq],
``attention_mask`` [batch, past+seq], ``position_ids`` [batch, seq] and ``past_key_values.{i}.key/value``
[batch, kv_heads, past, head_dim] in; ``logits`` [batch, seq, vocab] and ``present.{i}.key/value`` out. Its
two layers of random weights do attention and an MLP for real, so the KV cache, the causal and padding masks
and the positions all matter to what it writes; ``reference_logits`` computes the same model in numpy from the
whole sequence, without a cache, so tests can hold the runtime to it token for token.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest

TINY_LLM = "tiny-llm"
Layout = Literal["appended", "prefix"]
LAYERS, KV_HEADS, HEAD_DIM = 2, 2, 8
HIDDEN = KV_HEADS * HEAD_DIM
GQA_HEADS = 1  # the prefix layout's graph: one head of HIDDEN
CONTEXT = 64
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
SPECIAL_TOKENS = SPECIALS[:3]  # ChatML's, which decode to nothing; [UNK] is an ordinary token
WORDS = [
    "system", "user", "assistant", "the", "a", "cat", "dog", "sat", "on", "mat", "runs", "fast", "slow", "red",
    "blue", "green", "house", "car", "tree", "sky", "sun", "moon", "hello", "there", "you", "are", "helpful",
    ".", ",", "?", "!",
]  # fmt: skip
# A few hundred tokens, as the brief's own words are not enough to make sampling interesting.
VOCAB = SPECIALS + WORDS + [f"w{i}" for i in range(256 - len(SPECIALS) - len(WORDS))]
EOS_ID, BOS_ID = VOCAB.index("<|im_end|>"), VOCAB.index("<|im_start|>")


@dataclass(frozen=True)
class Weights:
    tokens: np.ndarray
    positions: np.ndarray
    layers: list[dict[str, np.ndarray]]
    out: np.ndarray


def weights(seed: int = 11) -> Weights:
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    layers = [
        {
            "q": w(HIDDEN, HIDDEN),
            "k": w(HIDDEN, HIDDEN),
            "v": w(HIDDEN, HIDDEN),
            "o": w(HIDDEN, HIDDEN),
            "up": w(HIDDEN, 2 * HIDDEN),
            "down": w(2 * HIDDEN, HIDDEN),
        }
        for _ in range(LAYERS)
    ]
    return Weights(w(len(VOCAB), HIDDEN, scale=1.0), w(CONTEXT, HIDDEN), layers, w(HIDDEN, len(VOCAB), scale=0.2))


def _tokenizer(path: Path) -> None:
    tokenizer = Tokenizer(WordLevel({token: i for i, token in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    tokenizer.save(str(path))


def _graph(path: Path, params: Weights) -> None:
    init = [
        numpy_helper.from_array(params.tokens, "tok_table"),
        numpy_helper.from_array(params.positions, "pos_table"),
        numpy_helper.from_array(params.out, "w_out"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "ax12"),
        numpy_helper.from_array(np.array([0, 0, KV_HEADS, HEAD_DIM], dtype=np.int64), "split_heads"),
        numpy_helper.from_array(np.array([0, 0, HIDDEN], dtype=np.int64), "join_heads"),
        numpy_helper.from_array(np.array(-1e9, dtype=np.float32), "neg"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zerof"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "onef"),
        numpy_helper.from_array(np.array(1e9, dtype=np.float32), "big"),
        numpy_helper.from_array(np.array(1 / np.sqrt(HEAD_DIM), dtype=np.float32), "scale"),
    ]
    node = helper.make_node
    nodes = [
        node("Gather", ["tok_table", "input_ids"], ["tok"]),
        node("Gather", ["pos_table", "position_ids"], ["pos"]),
        node("Add", ["tok", "pos"], ["x0"]),
        # Causal bias [seq, total]: query i sits at total - seq + i and sees keys at or before it.
        node("Shape", ["input_ids"], ["ids_shape"]),
        node("Gather", ["ids_shape", "one"], ["seq"]),
        node("Shape", ["attention_mask"], ["mask_shape"]),
        node("Gather", ["mask_shape", "one"], ["total"]),
        node("Sub", ["total", "seq"], ["past"]),
        node("Range", ["past", "total", "one"], ["qpos"]),
        node("Range", ["zero", "total", "one"], ["kpos"]),
        node("Unsqueeze", ["qpos", "ax1"], ["qcol"]),
        node("Unsqueeze", ["kpos", "zero_ax"], ["krow"]),
        node("LessOrEqual", ["krow", "qcol"], ["allowed"]),
        node("Where", ["allowed", "zerof", "neg"], ["causal"]),
        # Padding bias [batch, 1, 1, total]: (mask - 1) * 1e9.
        node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        node("Sub", ["maskf", "onef"], ["masked"]),
        node("Mul", ["masked", "big"], ["pad"]),
        node("Unsqueeze", ["pad", "ax12"], ["pad4"]),
        node("Add", ["causal", "pad4"], ["bias"]),
    ]
    init.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_ax"))
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", len(VOCAB)])]
    x = "x0"
    for i, layer in enumerate(params.layers):
        for name, array in layer.items():
            init.append(numpy_helper.from_array(array, f"l{i}_{name}"))
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", KV_HEADS, "past", HEAD_DIM]
                )
            )
            outputs.append(
                helper.make_tensor_value_info(
                    f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", KV_HEADS, "total", HEAD_DIM]
                )
            )
        p = f"l{i}_"
        for proj in ("q", "k", "v"):
            nodes += [
                node("MatMul", [x, f"{p}{proj}"], [f"{p}{proj}_flat"]),
                node("Reshape", [f"{p}{proj}_flat", "split_heads"], [f"{p}{proj}_split"]),
                node("Transpose", [f"{p}{proj}_split"], [f"{p}{proj}_heads"], perm=[0, 2, 1, 3]),
            ]
        nodes += [
            node("Concat", [f"past_key_values.{i}.key", f"{p}k_heads"], [f"present.{i}.key"], axis=2),
            node("Concat", [f"past_key_values.{i}.value", f"{p}v_heads"], [f"present.{i}.value"], axis=2),
            node("Transpose", [f"present.{i}.key"], [f"{p}kt"], perm=[0, 1, 3, 2]),
            node("MatMul", [f"{p}q_heads", f"{p}kt"], [f"{p}raw"]),
            node("Mul", [f"{p}raw", "scale"], [f"{p}scaled"]),
            node("Add", [f"{p}scaled", "bias"], [f"{p}scores"]),
            node("Softmax", [f"{p}scores"], [f"{p}probs"], axis=-1),
            node("MatMul", [f"{p}probs", f"present.{i}.value"], [f"{p}ctx"]),
            node("Transpose", [f"{p}ctx"], [f"{p}ctx_t"], perm=[0, 2, 1, 3]),
            node("Reshape", [f"{p}ctx_t", "join_heads"], [f"{p}ctx_flat"]),
            node("MatMul", [f"{p}ctx_flat", f"{p}o"], [f"{p}attn"]),
            node("Add", [x, f"{p}attn"], [f"{p}x1"]),
            node("MatMul", [f"{p}x1", f"{p}up"], [f"{p}h"]),
            node("Relu", [f"{p}h"], [f"{p}act"]),
            node("MatMul", [f"{p}act", f"{p}down"], [f"{p}mlp"]),
            node("Add", [f"{p}x1", f"{p}mlp"], [f"{p}x2"]),
        ]
        x = f"{p}x2"
    nodes.append(node("MatMul", [x, "w_out"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny_llm", inputs, outputs, initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _gqa_graph(path: Path, params: Weights) -> None:
    """The same layers with ONNX Runtime's ``GroupQueryAttention`` (onnxruntime-genai's decoders): rotary
    positions read from each row's mask, and each row's new cache entry written right after its tokens. Its
    CPU kernel takes heads of 16 or more, so the hidden size is one head (``GQA_HEADS``)."""
    half = HIDDEN // 2
    angles = np.outer(np.arange(CONTEXT), 1.0 / 10000 ** (np.arange(half) / half)).astype(np.float32)
    init = [
        numpy_helper.from_array(params.tokens, "tok_table"),
        numpy_helper.from_array(params.out, "w_out"),
        numpy_helper.from_array(np.cos(angles), "cos_cache"),
        numpy_helper.from_array(np.sin(angles), "sin_cache"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
    ]
    node = helper.make_node
    nodes = [
        node("Gather", ["tok_table", "input_ids"], ["x0"]),
        node("ReduceSum", ["attention_mask", "ax1"], ["tokens"], keepdims=0),
        node("Sub", ["tokens", "one"], ["last"]),
        node("Cast", ["last"], ["seqlens_k"], to=TensorProto.INT32),
        node("Shape", ["attention_mask"], ["mask_shape"]),
        node("Gather", ["mask_shape", "one"], ["width"]),
        node("Cast", ["width"], ["total"], to=TensorProto.INT32),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", len(VOCAB)])]
    x = "x0"
    for i, layer in enumerate(params.layers):
        p = f"l{i}_"
        for name, array in layer.items():
            init.append(numpy_helper.from_array(array, f"{p}{name}"))
        for kind in ("key", "value"):
            past: list[str | int] = ["batch", GQA_HEADS, "past", HIDDEN]
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, past))
            total: list[str | int] = ["batch", GQA_HEADS, "total", HIDDEN]
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, total))
        nodes += [node("MatMul", [x, f"{p}{proj}"], [f"{p}{proj}_flat"]) for proj in ("q", "k", "v")]
        nodes += [
            node(
                "GroupQueryAttention",
                [
                    f"{p}q_flat", f"{p}k_flat", f"{p}v_flat", f"past_key_values.{i}.key",
                    f"past_key_values.{i}.value", "seqlens_k", "total", "cos_cache", "sin_cache",
                ],
                [f"{p}ctx", f"present.{i}.key", f"present.{i}.value"],
                domain="com.microsoft", num_heads=GQA_HEADS, kv_num_heads=GQA_HEADS, do_rotary=1,
            ),
            node("MatMul", [f"{p}ctx", f"{p}o"], [f"{p}attn"]),
            node("Add", [x, f"{p}attn"], [f"{p}x1"]),
            node("MatMul", [f"{p}x1", f"{p}up"], [f"{p}h"]),
            node("Relu", [f"{p}h"], [f"{p}act"]),
            node("MatMul", [f"{p}act", f"{p}down"], [f"{p}mlp"]),
            node("Add", [f"{p}x1", f"{p}mlp"], [f"{p}x2"]),
        ]  # fmt: skip
        x = f"{p}x2"
    nodes.append(node("MatMul", [x, "w_out"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny_gqa_llm", inputs, outputs, initializer=init)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))


def engine_tensors(layout: Layout = "appended") -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    inputs = [
        TensorSpec(name="input_ids", datatype="INT64", shape=(-1, -1)),
        TensorSpec(name="attention_mask", datatype="INT64", shape=(-1, -1)),
    ]
    if layout == "appended":
        inputs.append(TensorSpec(name="position_ids", datatype="INT64", shape=(-1, -1)))
    outputs = [TensorSpec(name="logits", datatype="FP32", shape=(-1, -1, len(VOCAB)))]
    for i in range(LAYERS):
        for kind in ("key", "value"):
            shape = (-1, KV_HEADS, -1, HEAD_DIM) if layout == "appended" else (-1, GQA_HEADS, -1, HIDDEN)
            inputs.append(TensorSpec(name=f"past_key_values.{i}.{kind}", datatype="FP32", shape=shape))
            outputs.append(TensorSpec(name=f"present.{i}.{kind}", datatype="FP32", shape=shape))
    return tuple(inputs), tuple(outputs)


def build_tiny_llm(
    store: Path, name: str = TINY_LLM, version: str = "1", seed: int = 11, layout: Layout = "appended", **settings: Any
) -> Path:
    """The tiny decoder in ``store``: attention that appends to the cache (held to ``reference_logits``) or, with
    ``layout="prefix"``, ``GroupQueryAttention``; ``settings`` are more of the manifest's preprocessing."""
    directory = store / name / version
    directory.mkdir(parents=True)
    _tokenizer(directory / "tokenizer.json")
    (_graph if layout == "appended" else _gqa_graph)(directory / "model.onnx", weights(seed))
    engine_inputs, engine_outputs = engine_tensors(layout)
    manifest = ModelManifest(
        name=name,
        version=version,
        domain="llm",
        task="generate",
        description="tiny random decoder for tests",
        files=(file_entry(directory, "model.onnx"), file_entry(directory, "tokenizer.json")),
        engine=EngineSpec(file="model.onnx", inputs=engine_inputs, outputs=engine_outputs),
        inputs=(TensorSpec(name="prompt", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="completion", datatype="BYTES", shape=(-1,)),),
        preprocessing={
            "tokenizer": "tokenizer.json",
            "context_length": CONTEXT,
            "eos_token_id": EOS_ID,
            "bos_token_id": BOS_ID,
            "chat_template": "chatml",
            "default_max_tokens": 16,
            "cache_layout": layout,
            **settings,
        },
        created_at="2026-11-28T00:00:00Z",
    )
    write_manifest(directory, manifest)
    return directory


def reference_logits(ids: list[int], seed: int = 11) -> np.ndarray:
    """The tiny model's logits [len(ids), vocab] over the whole sequence at once, without ONNX Runtime."""
    params = weights(seed)
    n = len(ids)
    x = params.tokens[ids] + params.positions[:n]
    causal = np.where(np.tril(np.ones((n, n), dtype=bool)), 0.0, -1e9).astype(np.float32)
    for layer in params.layers:
        q, k, v = ((x @ layer[p]).reshape(n, KV_HEADS, HEAD_DIM).transpose(1, 0, 2) for p in ("q", "k", "v"))
        scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(HEAD_DIM)) + causal
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, HIDDEN)
        x = x + context @ layer["o"]
        x = x + np.maximum(x @ layer["up"], 0) @ layer["down"]
    return np.asarray(x @ params.out, dtype=np.float32)


def reference_greedy(ids: list[int], steps: int, seed: int = 11) -> list[int]:
    """Greedy tokens after ``ids``, until EOS or ``steps`` tokens (EOS included when chosen)."""
    sequence, chosen = list(ids), []
    for _ in range(steps):
        token = int(np.argmax(reference_logits(sequence, seed)[-1]))
        chosen.append(token)
        if token == EOS_ID:
            break
        sequence.append(token)
    return chosen


def chatml(messages: list[tuple[str, str]]) -> list[int]:
    """The ChatML prompt tokens of ``messages`` as the tiny tokenizer reads them, ending with the assistant's turn.

    A message's text is split as the tokenizer's ``Whitespace`` pre-tokenizer splits it, into runs of word
    characters and runs of other characters, so a ChatML marker it spells is three unknown words.
    """
    vocab = {token: i for i, token in enumerate(VOCAB)}
    ids: list[int] = []
    for role, content in messages:
        pieces = re.findall(r"\w+|[^\w\s]+", content)
        ids += [BOS_ID, vocab[role], *(vocab.get(word, vocab["[UNK]"]) for word in pieces), EOS_ID]
    return [*ids, BOS_ID, vocab["assistant"]]


@contextmanager
def fault_at(runtime: Any, run: int) -> Iterator[list[int]]:
    """Make ``runtime``'s model fail at its ``run``-th run (a request's prompt is its first) with a RuntimeError
    naming "lost its memory"; yields the runs so far, which a test clears to fault its next request alike."""
    real, runs = runtime.step, []

    def step(*args: Any) -> Any:
        runs.append(1)
        if len(runs) == run:
            raise RuntimeError("the engine lost its memory")
        return real(*args)

    runtime.step = step
    try:
        yield runs
    finally:
        del runtime.step


def post_and_leave(app: Any, path: str, body: bytes) -> list[dict[str, Any]]:
    """POST ``body`` to ``path`` of the ASGI ``app`` as a client that disconnects once the answer's first body
    chunk has come; the messages the app sent."""
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        first_chunk = asyncio.Event()
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": body, "more_body": False}
            await first_chunk.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and message.get("body"):
                first_chunk.set()

        scope = {
            "type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")], "scheme": "http",
            "server": ("testserver", 80), "client": ("127.0.0.1", 1), "http_version": "1.1", "root_path": "",
        }  # fmt: skip
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


def words(ids: list[int]) -> str:
    """The text of ``ids`` as the tokenizer decodes it: its special tokens (ChatML's) write nothing."""
    return " ".join(VOCAB[i] for i in ids if VOCAB[i] not in SPECIAL_TOKENS)
