"""A tiny but real policy, built into a test's directory in milliseconds.

It has the real CartPole policy's signature (``observation`` FP32 [n, 4] → ``logits`` and ``probabilities``
FP32 [n, 2]) and is one linear layer with known weights, so every expected answer is a line of numpy. The
weights push the cart towards the side the pole falls to, which is a crude CartPole controller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest

TINY_RL = "tiny-policy"
FIELDS = ("cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity")
# logits = observation @ WEIGHTS.T + BIAS
WEIGHTS = np.array([[0.0, 0.0, -2.0, -1.0], [0.0, 0.0, 2.0, 1.0]], dtype=np.float32)
BIAS = np.array([0.25, -0.25], dtype=np.float32)


def _policy_graph(path: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["observation", "weights", "bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_policy",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2]),
        ],
        initializer=[numpy_helper.from_array(WEIGHTS, "weights"), numpy_helper.from_array(BIAS, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tiny_rl(store: Path, name: str = TINY_RL, version: str = "1") -> Path:
    directory = store / name / version
    directory.mkdir(parents=True)
    _policy_graph(directory / "model.onnx")
    tensors = (
        TensorSpec(name="logits", datatype="FP32", shape=(-1, 2)),
        TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
    )
    observation = (TensorSpec(name="observation", datatype="FP32", shape=(-1, 4)),)
    manifest = ModelManifest(
        name=name,
        version=version,
        domain="rl",
        task="policy",
        description="tiny linear CartPole policy for tests",
        files=(file_entry(directory, "model.onnx"),),
        engine=EngineSpec(file="model.onnx", inputs=observation, outputs=tensors),
        inputs=observation,
        outputs=tensors,
        preprocessing={"environment": "CartPole-v1", "observation_fields": list(FIELDS)},
        labels=("push_left", "push_right"),
        created_at="2026-11-28T00:00:00Z",
    )
    write_manifest(directory, manifest)
    return directory


def reference_logits(observations: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """What the tiny policy must answer, computed without ONNX Runtime."""
    return np.asarray(np.asarray(observations, dtype=np.float32) @ WEIGHTS.T + BIAS, dtype=np.float32)


def reference_probabilities(observations: npt.ArrayLike) -> npt.NDArray[np.float32]:
    logits = reference_logits(observations).astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)
