"""What an import reads from a graph, and every refusal it makes, each naming the problem and its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto

from aimass.errors import InvalidInput, ModelTooLarge, UnsupportedModel
from aimass.importing.graph import read_graph
from aimass.importing.importer import Imported, ImportSpec, import_graph
from aimass.importing.memory import check_memory, needed_mb
from aimass.importing.support import newest_opsets
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from tests import tiny_imports as tiny

SESSIONS = SessionFactory(Settings(intra_op_threads=1))


def imported(graph: bytes, tmp_path: Path, **options: Any) -> Imported:
    spec = ImportSpec(**{"name": "imported", "filename": "model.onnx", **options})
    return import_graph(graph, spec, tmp_path / "work", SESSIONS)


def refusal(graph: bytes, tmp_path: Path, **options: Any) -> str:
    with pytest.raises(UnsupportedModel) as raised:
        imported(graph, tmp_path, **options)
    assert raised.value.status_code == 400 and raised.value.code == "unsupported_model"
    return raised.value.message


# --- what the graph declares ---------------------------------------------------------------------------


def test_the_reader_agrees_with_onnx_on_a_graph() -> None:
    # GIVEN a graph built with onnx WHEN its bytes are read without it
    graph = tiny.mlp()
    info = read_graph(graph)
    model = onnx.load_from_string(graph)
    # THEN its opsets, operators, inputs and outputs are onnx's own
    assert info.opsets == {op.domain: op.version for op in model.opset_import}
    assert info.operators == {("", node.op_type) for node in model.graph.node}
    assert info.ir_version == model.ir_version and info.producer == "tests"
    (x,) = info.inputs
    assert (x.name, x.element, [(d.value, d.param) for d in x.dims or ()]) == ("x", 1, [(None, "batch"), (4, None)])
    assert [o.name for o in info.outputs] == ["y"]


def test_the_reader_finds_the_operators_of_subgraphs() -> None:
    info = read_graph(tiny.with_subgraph())
    assert {("", "Sin"), ("", "Cos"), ("", "If")} <= info.operators


def test_the_reader_leaves_initializers_out_of_the_inputs() -> None:
    # Before IR version 4 initializers were listed as inputs too: a caller feeds only the others.
    model = onnx.load_from_string(tiny.mlp())
    model.graph.input.extend([onnx.helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3])])
    assert [value.name for value in read_graph(model.SerializeToString()).inputs] == ["x"]


@pytest.mark.parametrize("data", [b"", b"hello, this is text", b"\x08\x07" * 3, bytes(range(256))])
def test_a_file_that_is_not_onnx_is_refused_with_how_to_export_one(data: bytes, tmp_path: Path) -> None:
    message = refusal(data, tmp_path)
    assert "is not an ONNX model" in message and "torch.onnx.export" in message


# --- what the serving ONNX Runtime runs ---------------------------------------------------------------


def test_an_opset_newer_than_the_runtime_is_refused_naming_the_newest(tmp_path: Path) -> None:
    newest = newest_opsets()[""]
    message = refusal(tiny.relu(opset=newest + 1), tmp_path)
    assert f"opset {newest + 1}" in message and f"up to opset {newest}" in message
    assert f"opset_version={newest}" in message


def test_an_operator_no_opset_defines_is_refused_by_name(tmp_path: Path) -> None:
    message = refusal(tiny.relu(op="Frobnicate"), tmp_path)
    assert "Frobnicate (no such operator in 'ai.onnx')" in message


def test_an_operator_newer_than_the_models_opset_is_refused_with_the_opset_it_needs(tmp_path: Path) -> None:
    # Gelu joined the standard operators at opset 20.
    message = refusal(tiny.relu(op="Gelu", opset=17), tmp_path)
    assert "Gelu (needs opset 20; the model imports opset 17)" in message


def test_custom_operators_are_refused_naming_their_domain(tmp_path: Path) -> None:
    message = refusal(tiny.relu(op="Frob", domain="acme", extra_opsets=[("acme", 1)]), tmp_path)
    assert "domain 'acme' (Frob)" in message and "custom operators" in message


def test_weights_in_other_files_are_refused_with_how_to_save_one_file(tmp_path: Path) -> None:
    message = refusal(tiny.with_external_data(), tmp_path)
    assert "save_as_external_data=False" in message


# --- what the V2 protocol and batching serve ------------------------------------------------------------


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (tiny.mlp(batch=1), "fixed first dimension of 1, so requests cannot be batched"),
        (tiny.with_input([]), "is a scalar, so requests cannot be batched"),
        (tiny.with_input(None), "has no declared shape"),
        (tiny.with_input(["a", 3], second=["b", 3]), "independent first dimensions ('x' (a), 'x2' (b))"),
        (tiny.with_input(["n", 3], TensorProto.BFLOAT16), "element type bfloat16, which the V2 protocol cannot carry"),
        (tiny.sequence_output(), "is a sequence, not a tensor (scikit-learn's ZipMap"),
        (tiny.summed_over_batch(), "output 'y' of 'model.onnx' does not have one row per input row"),
    ],
)
def test_shapes_that_cannot_be_served_in_batches_are_refused(graph: bytes, expected: str, tmp_path: Path) -> None:
    message = refusal(graph, tmp_path)
    assert expected in message
    if "batch" in expected:
        assert "dynamic_axes" in message  # the fix: how to export a dynamic first axis


def test_a_graph_that_answers_synthesized_inputs_with_nan_asks_for_samples(tmp_path: Path) -> None:
    message = refusal(tiny.logarithm(), tmp_path)
    assert "NaN or infinity in output 'y'" in message and "--samples" in message


def test_samples_of_its_own_let_such_a_graph_in(tmp_path: Path) -> None:
    spec = ImportSpec(name="log", filename="log.onnx")
    samples = {"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]]}}
    done = import_graph(tiny.logarithm(), spec, tmp_path / "work", SESSIONS, samples=samples)
    assert done.manifest.validation == "samples.json"


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ({"inputs": {}}, "lack the input(s) ['x']"),
        ({"inputs": {"x": [[1.0]], "z": [1]}}, "unknown input(s) ['z']"),
        ({"inputs": {"x": [[1.0, 2.0, 3.0]]}}, "has shape [1, 3]; the model takes [-1, 2]"),
        ({"rows": []}, '{"inputs": {name: values}}'),
    ],
)
def test_samples_that_do_not_fit_the_graph_are_refused(
    samples: dict[str, object], expected: str, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedModel) as raised:
        import_graph(tiny.logarithm(), ImportSpec(name="log"), tmp_path / "work", SESSIONS, samples=samples)
    assert expected in raised.value.message


def test_a_bad_name_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        imported(b"not even onnx", tmp_path, name="Not A Name")
    assert raised.value.param == "name"


# --- memory ------------------------------------------------------------------------------------------


def test_a_model_over_the_functions_memory_is_a_413_saying_what_it_needs() -> None:
    size = 1 << 30  # 1 GiB of graph
    with pytest.raises(ModelTooLarge) as raised:
        check_memory(size, 3538, what="'big.onnx'")
    error = raised.value
    assert error.status_code == 413 and error.code == "model_too_large"
    assert f"about {needed_mb(size):,} MB" in error.message and "3,538 MB" in error.message
    assert "memory_mb in functions/tensor/function.toml" in error.message


def test_a_model_over_lambdas_largest_function_says_so() -> None:
    with pytest.raises(ModelTooLarge) as raised:
        check_memory(4 << 30, 3538)
    assert "over Lambda's 10,240 MB" in raised.value.message


def test_the_limit_is_checked_before_the_graph_is_run(tmp_path: Path) -> None:
    with pytest.raises(ModelTooLarge):
        import_graph(tiny.mlp(), ImportSpec(name="mlp"), tmp_path / "work", SESSIONS, memory_limit_mb=100)
    assert not (tmp_path / "work").exists()


# --- the task found from the shape --------------------------------------------------------------------


def test_a_graph_of_no_known_shape_serves_its_own_tensors(tmp_path: Path) -> None:
    done = imported(tiny.mlp(), tmp_path)
    manifest = done.manifest
    assert manifest.domain == "tensor" and manifest.task == "tensors" and manifest.labels is None
    assert [(s.name, s.shape) for s in manifest.inputs] == [("x", (-1, 4))]
    assert [(s.name, s.shape) for s in manifest.outputs] == [("y", (-1, 3))]
    facts = manifest.preprocessing["graph"]
    assert facts["opsets"] == {"ai.onnx": 17} and facts["operators"] == ["Add", "MatMul", "Tanh"]
    assert facts["dynamic_axes"] == {"x": {"0": "batch"}, "y": {"0": "batch"}}


def test_an_image_classifier_is_found_and_its_labels_checked(tmp_path: Path) -> None:
    done = imported(tiny.image_classifier(4), tmp_path, labels=("a", "b", "c", "d"))
    manifest = done.manifest
    assert manifest.task == "image-classification" and manifest.labels == ("a", "b", "c", "d")
    image = manifest.preprocessing["image"]
    assert (image["height"], image["width"], image["channels"], image["layout"]) == (8, 8, 3, "NCHW")
    assert manifest.preprocessing["scores_are"] == "probabilities"


def test_labels_that_no_output_has_columns_for_are_refused(tmp_path: Path) -> None:
    message = refusal(tiny.image_classifier(4), tmp_path, labels=("a", "b"))
    assert "2 labels were given, but no output of the graph is a [n, 2] score table" in message


def test_a_task_asked_for_that_the_shape_does_not_fit_says_what_is_missing(tmp_path: Path) -> None:
    message = refusal(tiny.mlp(), tmp_path, task="image-classification")
    assert "not an image classifier" in message and "float [n, C, H, W]" in message
