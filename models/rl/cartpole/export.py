"""The graph: the trained actor written as ONNX (three Gemm layers, tanh, softmax), and the checks on it.

The network is small enough to write node by node from its weights instead of tracing it: the graph is
exactly the actor's arithmetic, byte-for-byte reproducible, and independent of which exporter PyTorch
ships. The checks then compare it with the PyTorch actor it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError
from models.rl.cartpole.spec import ENGINE_INPUT, ENGINE_OUTPUTS, HIDDEN, OPSET, SAMPLE_TOLERANCE

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

OBSERVATION_SIZE = 4
ACTION_COUNT = 2


def export_onnx(actor: torch.nn.Module, path: Path) -> str:
    """Write ``observation [n, 4] → logits [n, 2], probabilities [n, 2]`` from the actor's weights."""
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    linear = [module for module in actor.modules() if isinstance(module, torch.nn.Linear)]
    if [tuple(layer.weight.shape) for layer in linear] != [(HIDDEN, 4), (HIDDEN, HIDDEN), (ACTION_COUNT, HIDDEN)]:
        raise BuildError(f"the actor is not a 4-{HIDDEN}-{HIDDEN}-2 network: {actor}")
    initializers = []
    for index, layer in enumerate(linear, start=1):
        initializers.append(numpy_helper.from_array(layer.weight.detach().numpy().copy(), f"layer{index}.weight"))
        initializers.append(numpy_helper.from_array(layer.bias.detach().numpy().copy(), f"layer{index}.bias"))
    nodes = [
        helper.make_node("Gemm", [ENGINE_INPUT, "layer1.weight", "layer1.bias"], ["hidden1.linear"], transB=1),
        helper.make_node("Tanh", ["hidden1.linear"], ["hidden1"]),
        helper.make_node("Gemm", ["hidden1", "layer2.weight", "layer2.bias"], ["hidden2.linear"], transB=1),
        helper.make_node("Tanh", ["hidden2.linear"], ["hidden2"]),
        helper.make_node("Gemm", ["hidden2", "layer3.weight", "layer3.bias"], [ENGINE_OUTPUTS[0]], transB=1),
        helper.make_node("Softmax", [ENGINE_OUTPUTS[0]], [ENGINE_OUTPUTS[1]], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cartpole_policy",
        [helper.make_tensor_value_info(ENGINE_INPUT, TensorProto.FLOAT, ["batch", OBSERVATION_SIZE])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", ACTION_COUNT]) for name in ENGINE_OUTPUTS],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="aimass")
    model.ir_version = 8  # readable by every ONNX Runtime the project supports
    onnx.save(model, str(path))
    return f"written from the actor's weights with onnx.helper, opset {OPSET}"


def verify_graph(path: Path, actor: torch.nn.Module) -> float:
    """Check the graph is valid and signed as contracted; return its largest difference from the actor."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    signature = {
        "inputs": [(i.name, i.type.tensor_type.elem_type) for i in graph.input],
        "outputs": [(o.name, o.type.tensor_type.elem_type) for o in graph.output],
    }
    expected = {
        "inputs": [(ENGINE_INPUT, onnx.TensorProto.FLOAT)],
        "outputs": [(name, onnx.TensorProto.FLOAT) for name in ENGINE_OUTPUTS],
    }
    if signature != expected:
        raise BuildError(f"graph signature {signature} is not {expected}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    # Far outside the states CartPole visits too: the graph must be the actor's function everywhere.
    for batch, scale in ((1, 0.05), (7, 1.0), (256, 5.0)):
        observations = (rng.standard_normal((batch, OBSERVATION_SIZE)) * scale).astype(np.float32)
        logits, probabilities = session.run(list(ENGINE_OUTPUTS), {ENGINE_INPUT: observations})
        expected_logits, expected_probabilities = reference_outputs(actor, observations)
        if logits.shape != (batch, ACTION_COUNT) or probabilities.shape != (batch, ACTION_COUNT):
            raise BuildError(f"a batch of {batch} gave {logits.shape} and {probabilities.shape}, not [n, 2]")
        if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6):
            raise BuildError(f"a batch of {batch}: probabilities do not sum to 1")
        worst = max(
            worst,
            float(np.abs(logits - expected_logits).max()),
            float(np.abs(probabilities - expected_probabilities).max()),
        )
    if worst > SAMPLE_TOLERANCE:
        raise BuildError(f"ONNX Runtime differs from the PyTorch actor by {worst:.2e} > {SAMPLE_TOLERANCE}")
    return worst


def reference_outputs(
    actor: torch.nn.Module, observations: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The PyTorch actor's logits and softmax probabilities, the reference the graph must reproduce."""
    import torch

    with torch.no_grad():
        logits = actor(torch.from_numpy(observations))
        return logits.numpy(), torch.softmax(logits, dim=1).numpy()
