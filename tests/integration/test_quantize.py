"""Quantized versions of the real models: made, published, loaded and answering through their runtimes.

The text model goes int8-dynamic (the mode its targets are for); the small CartPole policy int8-static and
fp16, and through the CLI. Every model is copied into a store of the test's own: the repository's is read only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import aimass_tools.cli.quantize  # noqa: F401  (registers `aimass models quantize` until aimass_tools.cli imports it)
from aimass.settings import Settings
from aimass.store.factory import open_store
from aimass.store.local import LocalModelStore
from aimass.store.manifest import ModelManifest
from aimass_tools.cli import app
from aimass_tools.quantize import build_evaluation, load_runtime, quantize_version
from tests.conftest import build_domain_models

pytestmark = pytest.mark.real_model
TEXT, POLICY = "all-minilm-l6-v2", "cartpole-ppo"
REPORT_KEYS = {"mode", "method", "base_version", "evaluation", "size", "latency", "quality", "targets", "targets_met"}


def own_store(tmp_path: Path, domain: str, name: str) -> Path:
    """A store of the test's own holding version 1 of the repository's built model."""
    store = tmp_path / "store"
    shutil.copytree(build_domain_models(domain) / name / "1", store / name / "1")
    return store


def publish(store: Path, folder: Path) -> ModelManifest:
    return open_store(Settings(model_store=store)).publish(folder)


def embed(store: Path, version: str, texts: list[str]) -> np.ndarray:
    runtime = load_runtime(LocalModelStore(store).fetch(TEXT, version), Settings(model_store=store))
    batch = np.empty(len(texts), dtype=object)
    batch[:] = [text.encode() for text in texts]
    return np.asarray(runtime.predict({"text": batch}).outputs["embedding"])


def test_text_int8_dynamic_is_a_new_version_that_answers_close_to_fp32(tmp_path: Path) -> None:
    # GIVEN the real MiniLM, with its build's evaluation sentences
    store = own_store(tmp_path, "text", TEXT)
    base = LocalModelStore(store).fetch(TEXT, "1")
    # WHEN it is quantized int8-dynamic and published
    report = quantize_version(
        base,
        tmp_path / "new",
        "int8-dynamic",
        Settings(model_store=store),
        evaluation=build_evaluation(TEXT),
        latency_calls=70,
    )
    manifest = publish(store, tmp_path / "new")
    # THEN the store holds version 2, derived from 1, carrying the report
    assert manifest.version == "2" and LocalModelStore(store).versions(TEXT) == ["1", "2"]
    assert manifest.derived_from == "1" and manifest.compression == report and set(report) >= REPORT_KEYS
    assert report["evaluation"]["items"] > 50  # the samples and the build's eval.json
    # AND it is under a third of the size, with embeddings within cosine 0.99 of the FP32 ones on average
    assert report["size"]["engine_ratio"] >= 3.5
    assert report["quality"]["embedding"]["cosine_mean"] >= 0.99
    assert report["latency"]["p50_ms_new"] > 0 and report["latency"]["calls_each"] >= 68
    targets = {check["metric"]: check for check in report["targets"]}
    assert set(targets) == {"engine size ratio", "latency p50 ratio", "embedding cosine mean"}
    assert targets["engine size ratio"]["met"] and targets["embedding cosine mean"]["met"]
    # AND version 2 loads and answers through the text runtime, close to version 1
    texts = ["How do I reset my password?", "The weather is lovely today.", "Quarterly revenue grew."]
    fp32, int8 = embed(store, "1", texts), embed(store, "2", texts)
    cosine = (fp32 * int8).sum(axis=1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1))
    assert int8.shape == fp32.shape and cosine.min() > 0.97 and cosine.mean() >= 0.99


@pytest.mark.parametrize("mode", ["int8-static", "fp16"])
def test_policy_static_int8_and_fp16_versions_load_and_act(tmp_path: Path, mode: str) -> None:
    store = own_store(tmp_path, "rl", POLICY)
    base = LocalModelStore(store).fetch(POLICY, "1")
    report = quantize_version(base, tmp_path / "new", mode, Settings(model_store=store), latency_calls=20)
    manifest = publish(store, tmp_path / "new")
    assert manifest.version == "2" and manifest.compression == report and set(report) >= REPORT_KEYS
    assert manifest.inputs == base.manifest.inputs and manifest.outputs == base.manifest.outputs
    graph = onnx.load(store / POLICY / "2" / manifest.engine.file)
    if mode == "fp16":  # the weights are float16; the graph's inputs and outputs stay FP32
        assert {t.data_type for t in graph.graph.initializer} == {onnx.TensorProto.FLOAT16}
        assert report["quality"]["probabilities"]["top1_agreement"] == 1.0
    else:  # quantize/dequantize pairs around the Gemms, ranges from the recorded observations
        assert "QuantizeLinear" in {node.op_type for node in graph.graph.node}
        assert "calibration" in report["evaluation"]
    assert all(
        io.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for io in [*graph.graph.input, *graph.graph.output]
    )
    assert {"logits top-1 agreement", "probabilities top-1 agreement"} <= {c["metric"] for c in report["targets"]}
    runtime = load_runtime(LocalModelStore(store).fetch(POLICY, "2"), Settings(model_store=store))
    observations = np.array([[0.0, 0.0, 0.2, 0.5], [0.0, 0.0, -0.2, -0.5]], dtype=np.float32)
    probabilities = runtime.predict({"observation": observations}).outputs["probabilities"]
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-2)
    assert probabilities.argmax(axis=1).tolist() == [1, 0]  # push towards the side the pole falls to


def test_cli_quantizes_publishes_and_keeps_the_serving_version(tmp_path: Path) -> None:
    # GIVEN a store whose policy serves its newest version (no production alias)
    store = own_store(tmp_path, "rl", POLICY)
    # WHEN the CLI quantizes it
    result = CliRunner().invoke(app, ["models", "quantize", POLICY, "--mode", "fp16", "--store", str(store)])
    # THEN it prints the report and the new version, which does not take traffic by being the newest
    assert result.exit_code == 0, result.output
    assert "engine size" in result.output and "targets" in result.output and "top-1 agreement" in result.output
    assert f"published {POLICY} version 2 (fp16 of version 1)" in result.output
    assert "production pinned to version 1" in result.output
    local = LocalModelStore(store)
    assert local.versions(POLICY) == ["1", "2"] and local.aliases(POLICY).production == "1"
    compression = local.manifest(POLICY, "2").compression
    assert compression is not None and compression["mode"] == "fp16"


def test_cli_names_a_model_the_store_lacks(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "quantize", "nope", "--mode", "fp16", "--store", str(tmp_path)])
    assert result.exit_code == 1 and "model 'nope' has no versions" in result.output
