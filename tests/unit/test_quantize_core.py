"""aimass_tools.quantize on tiny graphs: evaluation inputs, recorded feeds, agreement, and a whole quantized version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aimass.errors import InvalidInput
from aimass.serving.runtime import Tensor
from aimass.serving.validation import validate
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.local import LocalModelStore
from aimass.store.manifest import file_entry, read_manifest, write_manifest
from aimass_tools.quantize import (
    Evaluation,
    agreement,
    answer_recording,
    evaluation_inputs,
    load_runtime,
    quantize_version,
)
from tests.tiny_models import TINY_TEXT, add_validation_samples, build_tiny_text
from tests.tiny_rl import TINY_RL, build_tiny_rl

SAMPLES = ["the cat sat", "a dog ran"]


@pytest.fixture
def text_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    add_validation_samples(build_tiny_text(store), SAMPLES, seed=7)
    return store


def fetch(store: Path, name: str, version: str = "1") -> ModelArtifact:
    return LocalModelStore(store).fetch(name, version)


def test_evaluation_takes_the_samples_then_the_strings_of_any_document(text_store: Path, tmp_path: Path) -> None:
    # GIVEN a build's evaluation document: sentences, pairs of sentences, prose beside them, a repeated sample
    document = {
        "description": "not an item: a top-level string",
        "sentences": ["the dog sat", "a cat ran", SAMPLES[0]],
        "pairs": [["the cat ran", "a dog sat"]],
    }
    (tmp_path / "eval.json").write_text(json.dumps(document))
    # WHEN the evaluation inputs are gathered
    evaluation = evaluation_inputs(fetch(text_store, TINY_TEXT), [tmp_path / "eval.json"])
    # THEN each text is one item, once, samples first
    texts = [item["text"][0].decode() for item in evaluation.items]
    assert texts == [*SAMPLES, "the dog sat", "a cat ran", "the cat ran", "a dog sat"]
    assert evaluation.sources == ["samples.json (2 items)", f"{tmp_path / 'eval.json'} (4 items)"]
    assert [len(batch["text"]) for batch in evaluation.batches()] == [6]


def test_numeric_items_are_the_rows_of_the_served_item_shape(tmp_path: Path) -> None:
    build_tiny_rl(tmp_path / "store")
    document = {"states": [[0.0, 0.1, 0.2, 0.3], [1.0, 2.0]], "nested": {"more": [[[0.5, 0.5, 0.5, 0.5]]]}}
    (tmp_path / "eval.json").write_text(json.dumps(document))
    evaluation = evaluation_inputs(fetch(tmp_path / "store", TINY_RL), [tmp_path / "eval.json"])
    rows = [item["observation"] for item in evaluation.items]
    np.testing.assert_array_equal(rows[-2:], np.array([[[0.0, 0.1, 0.2, 0.3]], [[0.5] * 4]], dtype=np.float32))
    assert all(item["observation"].dtype == np.float32 for item in evaluation.items)


def test_a_version_without_samples_needs_an_evaluation_file(tmp_path: Path) -> None:
    build_tiny_text(tmp_path / "store")
    with pytest.raises(InvalidInput, match="no evaluation inputs"):
        evaluation_inputs(fetch(tmp_path / "store", TINY_TEXT))


def test_recording_keeps_the_feeds_the_runtime_sends_and_puts_the_session_back(text_store: Path) -> None:
    runtime = load_runtime(fetch(text_store, TINY_TEXT), Settings(model_store=text_store))
    session = runtime.session  # type: ignore[attr-defined]
    outputs, feeds = answer_recording(runtime, evaluation_inputs(fetch(text_store, TINY_TEXT)))
    assert runtime.session is session  # type: ignore[attr-defined]
    assert [sorted(feed) for feed in feeds] == [["attention_mask", "input_ids"]]
    assert feeds[0]["input_ids"].shape[0] == 2 and outputs[0]["embedding"].shape == (2, 8)


def test_agreement_reports_cosine_difference_and_top1_with_the_gap_it_flipped() -> None:
    base = [{"logits": np.array([[2.0, 1.0], [1.0, 1.1]]), "embedding": np.array([[1.0, 0.0], [0.0, 1.0]])}]
    new = [{"logits": np.array([[2.0, 1.0], [1.2, 1.1]]), "embedding": np.array([[1.0, 0.0], [0.0, -1.0]])}]
    report = agreement(base, new, classes={"logits"})
    assert report["logits"]["top1_agreement"] == 0.5 and report["logits"]["top1_changed"] == 1
    assert report["logits"]["changed_max_base_gap"] == pytest.approx(0.1)
    assert report["embedding"] == {"cosine_mean": 0.0, "cosine_min": -1.0, "max_abs_diff": 2.0}


def test_int8_dynamic_version_of_a_tiny_model_loads_validates_and_reports(text_store: Path, tmp_path: Path) -> None:
    # GIVEN the tiny text model (an embedding table behind a Gather) with validation samples
    base = fetch(text_store, TINY_TEXT)
    # WHEN it is quantized
    report = quantize_version(base, tmp_path / "new", "int8-dynamic", Settings(model_store=text_store), latency_calls=4)
    # THEN the folder is a version of the same model, derived from 1, with the report and the base's quality
    manifest = read_manifest(tmp_path / "new")
    assert manifest.derived_from == "1" and manifest.compression == report
    assert manifest.inputs == base.manifest.inputs and manifest.outputs == base.manifest.outputs
    assert manifest.engine == base.manifest.engine and manifest.validation == "samples.json"
    assert manifest.file("model.onnx").sha256 != base.manifest.file("model.onnx").sha256
    assert manifest.quality["agreement_with_base"] == report["quality"]
    assert set(report) >= {"mode", "method", "size", "latency", "quality", "targets", "targets_met", "evaluation"}
    assert report["size"]["engine_bytes_new"] < report["size"]["engine_bytes_base"]
    assert report["quality"]["embedding"]["cosine_mean"] > 0.99
    assert {check["metric"] for check in report["targets"]} == {
        "engine size ratio",
        "latency p50 ratio",
        "embedding cosine mean",
    }
    # AND its samples hold its own outputs, so the serving processes' validation passes
    validate(load_runtime(ModelArtifact(manifest=manifest, directory=tmp_path / "new"), Settings()))


def weightless_policy(store: Path) -> ModelArtifact:
    """The tiny policy with a graph that has no weights: its logits are the pole's angle and angular velocity."""
    directory = build_tiny_rl(store)
    nodes = [
        helper.make_node("Gather", ["observation", "columns"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "weightless",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 2]) for name in ("logits", "probabilities")],
        initializer=[numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "columns")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), directory / "model.onnx")
    manifest = read_manifest(directory)
    write_manifest(directory, manifest.model_copy(update={"files": (file_entry(directory, "model.onnx"),)}))
    return fetch(store, TINY_RL)


def test_int8_dynamic_refuses_a_graph_without_weights_it_quantizes(tmp_path: Path) -> None:
    base = weightless_policy(tmp_path / "store")
    (tmp_path / "eval.json").write_text(json.dumps({"inputs": {"observation": [[0.0, 0.0, 0.1, 0.0]]}}))
    with pytest.raises(InvalidInput, match="int8-dynamic found no weights to quantize"):
        quantize_version(base, tmp_path / "new", "int8-dynamic", Settings(), evaluation=[tmp_path / "eval.json"])


def test_quantizing_refuses_a_folder_in_use_and_unknown_modes(text_store: Path, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    base = fetch(text_store, TINY_TEXT)
    with pytest.raises(InvalidInput, match="not empty"):
        quantize_version(base, tmp_path / "used", "fp16", Settings())
    with pytest.raises(InvalidInput, match="mode must be one of int8-dynamic, int8-static, fp16"):
        quantize_version(base, tmp_path / "new", "int4", Settings())


def test_batches_join_only_items_that_send_the_same_inputs_and_shapes() -> None:
    items: list[dict[str, Tensor]] = [
        {"a": np.zeros((1, 2))},
        {"a": np.ones((1, 2))},
        {"a": np.zeros((1, 3))},
        {"b": np.zeros((1, 2))},
    ]
    batches = Evaluation(items, sources=["test"]).batches()
    assert [{name: tensor.shape for name, tensor in batch.items()} for batch in batches] == [
        {"a": (2, 2)},
        {"a": (1, 3)},
        {"b": (1, 2)},
    ]
