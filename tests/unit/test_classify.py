"""The classifier core the new-domain templates build on: top-k answers, and the checks a graph must pass at load.

Each test builds a tiny real graph into ``tmp_path`` (``x`` FP32 [n, 3] → ``logits`` and ``probabilities``
[n, 2]) and loads it through a three-line runtime, as a scaffolded domain would.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import Field, ValidationError

from aimass.errors import ModelLoadError
from aimass.serving.classify import PROBABILITIES, ClassifierRuntime, Preprocessing, top_k
from aimass.serving.runtime import Prediction, Tensor
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import ModelManifest, file_entry

WEIGHTS = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
LABELS = ["left", "right"]


class RowPreprocessing(Preprocessing):
    columns: int = Field(gt=0)


class RowRuntime(ClassifierRuntime):
    def load(self) -> None:
        self.pre = self.preprocessing(RowPreprocessing)
        self.open_session((-1, self.pre.columns), serves_graph_input=True)

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        return self.prediction(np.asarray(inputs[self.served_input], dtype=np.float32), unit="rows")


def graph(path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [PROBABILITIES], axis=1),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", 2]) for name in ("logits", PROBABILITIES)]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "rows",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
            outputs,
            initializer=[numpy_helper.from_array(WEIGHTS, "weights")],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.save(model, str(path))


def load(tmp_path: Path, **changes: Any) -> RowRuntime:
    """RowRuntime over the tiny graph, its manifest changed by ``changes`` (top-level keys)."""
    graph(tmp_path / "model.onnx")
    fed = {"name": "x", "datatype": "FP32", "shape": [-1, 3]}
    scores = [{"name": name, "datatype": "FP32", "shape": [-1, 2]} for name in ("logits", PROBABILITIES)]
    document: dict[str, Any] = {
        "name": "rows",
        "version": "1",
        "domain": "rows",
        "task": "classification",
        "files": [file_entry(tmp_path, "model.onnx").model_dump()],
        "engine": {"file": "model.onnx", "inputs": [fed], "outputs": scores},
        "inputs": [fed],
        "outputs": scores[1:],
        "preprocessing": {"columns": 3},
        "labels": LABELS,
    }
    manifest = ModelManifest.model_validate(document | changes)
    runtime = RowRuntime(ModelArtifact(manifest=manifest, directory=tmp_path), SessionFactory(Settings()))
    runtime.load()
    return runtime


def test_top_k_ranks_each_row_best_first_and_keeps_the_labels_order_on_ties() -> None:
    probabilities = np.array([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]], dtype=np.float32)
    ranked = top_k(probabilities, ["a", "b", "c"], 2)
    assert [[answer["label"] for answer in row] for row in ranked] == [["b", "c"], ["a", "c"]]
    assert ranked[0][0]["score"] == pytest.approx(0.5) and isinstance(ranked[0][0]["score"], float)


def test_top_k_past_the_number_of_labels_answers_them_all() -> None:
    assert len(top_k(np.array([[0.7, 0.3]], dtype=np.float32), LABELS, 5)[0]) == 2


def test_a_loaded_classifier_serves_the_manifests_outputs_and_bills_its_unit(tmp_path: Path) -> None:
    # GIVEN a graph with logits and probabilities, of which the manifest serves probabilities
    runtime = load(tmp_path)
    # WHEN two rows are predicted
    prediction = runtime.predict({"x": np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]], dtype=np.float32)})
    # THEN only the served output comes back, and the rows are counted
    assert set(prediction.outputs) == {PROBABILITIES} and prediction.usage == {"rows": 2}
    assert prediction.outputs[PROBABILITIES].argmax(axis=1).tolist() == [0, 1]


def test_classify_batch_answers_each_items_top_labels(tmp_path: Path) -> None:
    result = load(tmp_path).classify_batch(np.array([[0.0, 3.0, 0.0]], dtype=np.float32), k=1, unit="rows")
    assert result.usage == {"rows": 1}
    assert [answer["label"] for answer in result.outputs[0]] == ["right"]


def test_the_preprocessing_block_ignores_keys_it_does_not_name_and_is_frozen() -> None:
    block = RowPreprocessing.model_validate({"columns": 3, "note": "written by a newer build"})
    with pytest.raises(ValidationError):
        block.columns = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preprocessing": {"columns": 0}}, "invalid preprocessing"),
        ({"preprocessing": {"columns": 4}}, "the graph must map (-1, 4) to probabilities (-1, 2)"),
        ({"labels": ["left", "right", "up"]}, "the graph must map (-1, 3) to probabilities (-1, 3)"),
        ({"labels": None}, "to probabilities (-1, 0)"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]}, "must serve the graph's own input"),
        ({"outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 2]}]}, "lacks: ['scores']"),
        ({"inputs": []}, "has 1 graph inputs and 0 served"),
    ],
)
def test_a_model_the_classifier_cannot_serve_fails_at_load_saying_why(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ModelLoadError, match="model 'rows' version 1: ") as error:
        load(tmp_path, **changes)
    assert message in error.value.message


def test_a_graph_without_probabilities_is_refused(tmp_path: Path) -> None:
    logits = [{"name": "logits", "datatype": "FP32", "shape": [-1, 2]}]
    engine = {"file": "model.onnx", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}], "outputs": logits}
    with pytest.raises(ModelLoadError, match=r"must map \(-1, 3\) to probabilities"):
        load(tmp_path, engine=engine, outputs=logits)
