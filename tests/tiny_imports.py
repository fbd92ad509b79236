"""Tiny ONNX graphs a user might import, built from scratch in microseconds: each serves, or fails one check.

Built with ``onnx.helper`` (a test tool, never shipped), so that each test states exactly what its graph
declares: a tensor model of no known task, an image classifier, graphs of an opset or operator the serving ONNX
Runtime lacks, of a batch axis that cannot batch, of tensors the V2 protocol cannot carry.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aimass.importing.importer import ImportSpec, import_graph
from aimass.importing.publishing import publish_imported
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass.store.manifest import ModelManifest

Dims = Sequence[int | str | None]


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    opset: int = 17,
    extra_opsets: Sequence[tuple[str, int]] = (),
    ir_version: int = 8,
) -> bytes:
    graph = helper.make_graph(nodes, "imported", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version, producer_name="tests")
    data: bytes = model.SerializeToString()
    return data


def tensor(name: str, dims: Dims, element: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, element, list(dims))


def mlp(seed: int = 1, *, batch: int | str = "batch", outputs: int = 3) -> bytes:
    """``x`` FP32 [batch, 4] -> MatMul, Add, Tanh -> ``y`` FP32 [batch, outputs]: no task, V2 only."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.standard_normal((4, outputs)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(outputs).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Tanh", ["z"], ["y"]),
    ]
    return _model(nodes, [tensor("x", [batch, 4])], [tensor("y", [batch, outputs])], [weights, bias])


def mlp_of_size(size: int) -> bytes:
    """``x`` FP32 [batch, 4] times a weight of about ``size`` bytes: a graph as large as a test needs."""
    columns = max(1, size // 16)
    weights = numpy_helper.from_array(np.zeros((4, columns), dtype=np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _model([node], [tensor("x", ["batch", 4])], [tensor("y", ["batch", columns])], [weights])


def image_classifier(classes: int = 4, *, size: int = 8, seed: int = 2) -> bytes:
    """``pixels`` FP32 [batch, 3, size, size] -> mean per channel -> linear -> Softmax -> ``probabilities``."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.standard_normal((3, classes)).astype(np.float32) * 4, "w")
    nodes = [
        helper.make_node("ReduceMean", ["pixels"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    return _model(
        nodes,
        [tensor("pixels", ["batch", 3, size, size])],
        [tensor("probabilities", ["batch", classes])],
        [weights],
    )


def relu(*, opset: int = 17, op: str = "Relu", domain: str = "", extra_opsets: Sequence[tuple[str, int]] = ()) -> bytes:
    """One node of ``op``: a graph whose opset or operator is what a test names."""
    node = helper.make_node(op, ["x"], ["y"], domain=domain)
    return _model(
        [node], [tensor("x", ["batch", 3])], [tensor("y", ["batch", 3])], opset=opset, extra_opsets=extra_opsets
    )


def with_input(dims: Dims | None, element: int = TensorProto.FLOAT, *, second: Dims | None = None) -> bytes:
    """Identity over an input of ``dims`` (None: no shape at all), and a second input added to it if given."""
    x = helper.make_tensor_value_info("x", element, None if dims is None else list(dims))
    inputs = [x]
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    if second is not None:
        inputs.append(tensor("x2", second, element))
        nodes = [helper.make_node("Add", ["x", "x2"], ["y"])]
    y = helper.make_tensor_value_info("y", element, None if dims is None else list(dims))
    return _model(nodes, inputs, [y])


def summed_over_batch() -> bytes:
    """``y`` sums ``x`` over its rows: declared [batch, 3], but one row whatever the batch."""
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    return _model([node], [tensor("x", ["batch", 3])], [tensor("y", ["batch", 3])], [axes])


def logarithm() -> bytes:
    """``y = log(x)``: NaN on the negative numbers synthesized inputs hold, finite on positive samples."""
    node = helper.make_node("Log", ["x"], ["y"])
    return _model([node], [tensor("x", ["batch", 2])], [tensor("y", ["batch", 2])])


def sequence_output() -> bytes:
    """``y`` is a sequence of tensors, as scikit-learn's ZipMap makes one."""
    node = helper.make_node("SequenceConstruct", ["x"], ["y"])
    seq = helper.make_tensor_sequence_value_info("y", TensorProto.FLOAT, ["batch", 3])
    return _model([node], [tensor("x", ["batch", 3])], [seq])


def with_external_data() -> bytes:
    """An initializer whose data the model says lies in another file."""
    weights = numpy_helper.from_array(np.ones((3, 3), dtype=np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="weights.bin")
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _model([node], [tensor("x", ["batch", 3])], [tensor("y", ["batch", 3])], [weights])


def with_subgraph() -> bytes:
    """An If whose branches use operators the main graph does not (Sin, Cos)."""
    branch = {
        name: helper.make_graph(
            [helper.make_node(op, ["x"], [f"{name}_y"])], name, [], [tensor(f"{name}_y", ["batch", 3])]
        )
        for name, op in (("then", "Sin"), ("else", "Cos"))
    }
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], ["y"], then_branch=branch["then"], else_branch=branch["else"]),
    ]
    zero = numpy_helper.from_array(np.array(0, dtype=np.float32), "zero")
    return _model(nodes, [tensor("x", ["batch", 3])], [tensor("y", ["batch", 3])], [zero])


def import_into(
    store: Path,
    graph: bytes,
    name: str,
    *,
    tokenizer: bytes | None = None,
    samples: Mapping[str, Any] | None = None,
    **options: Any,
) -> ModelManifest:
    """Import ``graph`` as the next version of ``name`` in the directory store ``store``, as the CLI does."""
    scratch = Path(tempfile.mkdtemp(prefix="import-"))
    try:
        spec = ImportSpec(**{"name": name, "filename": f"{name}.onnx", **options})
        imported = import_graph(
            graph,
            spec,
            scratch / name,
            SessionFactory(Settings(intra_op_threads=1)),
            tokenizer=tokenizer,
            samples=samples,
        )
        published, _ = publish_imported(LocalModelStore(store), scratch / name, imported.manifest)
        return published
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
