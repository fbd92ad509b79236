"""``aimass models import``: a file the project has never seen, to an answered V2 request, in one command.

The command runs as users run it (typer's runner over the real store); the proof at the end starts the real
server over the store it wrote and calls the model with the stock Triton client.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from typer.testing import CliRunner, Result

from aimass.importing.support import newest_opsets
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import DEFAULT_PLANS, Settings
from aimass.store.local import LocalModelStore
from aimass_tools.cli import app
from tests import tiny_imports as tiny
from tests.integration.test_clients import start_server, stop_server
from tests.ports import free_port
from tests.tiny_models import build_tiny_text


def aimass(*args: str) -> Result:
    return CliRunner().invoke(app, ["models", *args], env={"COLUMNS": "200"})


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result: Result) -> str:
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def written(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_an_onnx_file_is_answered_through_the_triton_client_after_one_command(store: Path, tmp_path: Path) -> None:
    # GIVEN a graph this project has no code for WHEN one command imports it
    output = ok(
        aimass(
            "import", written(tmp_path, "mystery.onnx", tiny.mlp(seed=9)), "--name", "mystery", "--store", str(store)
        )
    )
    assert "published mystery version 1" in output and "POST /v2/models/mystery/infer" in output
    # THEN the server over that store answers it, to the stock Triton client
    port = free_port()
    server = start_server(store, port)
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        metadata = client.get_model_metadata("mystery")
        assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        x = triton.InferInput("x", [3, 4], "FP32")
        rows = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
        x.set_data_from_numpy(rows, binary_data=True)
        answer = client.infer("mystery", [x], outputs=[triton.InferRequestedOutput("y", binary_data=True)])
        y = answer.as_numpy("y")
        assert y is not None and y.shape == (3, 3) and np.all(np.abs(y) <= 1)  # tanh
    finally:
        stop_server(server)
        server.wait()


def test_the_same_command_imports_through_the_management_api_of_a_running_server(tmp_path: Path, store: Path) -> None:
    # GIVEN a running server with keys on, and an admin key
    tiny.import_into(store, tiny.mlp(seed=1), "resident")
    state = tmp_path / "state"
    settings = Settings(state_dir=state, metering="sqlite")
    admin = create_key(
        open_key_store(settings), tenant="ops", scopes=("invoke", "admin"), plan="default", plans=DEFAULT_PLANS,
        now=datetime.now(UTC),
    ).clear_text  # fmt: skip
    port = free_port()
    # One worker: the process that imports a model answers it at once; other workers of a server see it at
    # their next alias check.
    env = {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(state)}
    server = start_server(store, port, env, args=("--workers", "1"))
    try:
        # WHEN a pipeline's graph is imported with --url (uploaded, then imported by the server)
        graph = written(tmp_path, "remote.onnx", tiny.mlp(seed=11))
        output = ok(aimass("import", graph, "--name", "remote", "--url", f"http://127.0.0.1:{port}", "--key", admin))
        assert "remote: tensors; published version 1" in output
        # THEN it answers the Triton client at once, with no restart and no store access on this side
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        x = triton.InferInput("x", [1, 4], "FP32")
        x.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        y = client.infer("remote", [x], headers={"x-api-key": admin}).as_numpy("y")
        assert y is not None and y.shape == (1, 3)
    finally:
        stop_server(server)
        server.wait()


def test_a_scikit_learn_pickle_is_converted_and_found_to_be_a_classifier(store: Path, tmp_path: Path) -> None:
    import joblib  # type: ignore[import-untyped]
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]
    from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

    iris = load_iris()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris.data, iris.target_names[iris.target])
    joblib.dump(model, tmp_path / "iris.joblib")
    output = ok(aimass("import", str(tmp_path / "iris.joblib"), "--name", "iris", "--store", str(store)))
    assert "iris: tabular-classification" in output and "setosa, versicolor, virginica" in output
    assert "/v1/tensor/classify-rows" in output


def test_a_torchscript_module_is_exported_with_a_batch_axis(store: Path, tmp_path: Path) -> None:
    import torch

    module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 3)))
    module.save(str(tmp_path / "net.pt"))  # type: ignore[no-untyped-call]
    # Without the input's shape there is nothing to trace: the message says what to give.
    assert "--input-shape 1,3,32,32" in refused(
        aimass("import", str(tmp_path / "net.pt"), "--name", "net", "--store", str(store))
    )
    output = ok(
        aimass("import", str(tmp_path / "net.pt"), "--name", "net", "--input-shape", "1,1,4,4", "--store", str(store))
    )
    assert "input FP32 [-1, 1, 4, 4]" in output and "output FP32 [-1, 3]" in output


def test_a_folder_with_a_manifest_is_checked_by_its_own_domain_then_published(store: Path, tmp_path: Path) -> None:
    folder = build_tiny_text(tmp_path / "built")
    output = ok(aimass("import", str(folder), "--name", "tiny-text", "--store", str(store)))
    assert "loaded by the text runtime" in output and "published tiny-text version 1" in output
    assert "names model 'tiny-text', not 'other'" in refused(
        aimass("import", str(folder), "--name", "other", "--store", str(store))
    )


@pytest.mark.parametrize(
    ("graph", "options", "expected"),
    [
        (b"PK\x03\x04 a zip, not a graph", [], "is not an ONNX model"),
        (tiny.relu(opset=newest_opsets()[""] + 1), [], "newer than ONNX Runtime"),
        (tiny.mlp(batch=1), [], "fixed first dimension of 1, so requests cannot be batched"),
        (tiny.mlp(), ["--memory-mb", "100"], "serving it needs about 161 MB of memory, more than the 100 MB"),
    ],
)
def test_what_cannot_serve_is_refused_with_what_to_do_and_nothing_is_published(
    store: Path, tmp_path: Path, graph: bytes, options: list[str], expected: str
) -> None:
    result = aimass("import", written(tmp_path, "model.onnx", graph), "--name", "bad", "--store", str(store), *options)
    assert expected in refused(result)
    assert LocalModelStore(store).versions("bad") == []


def test_a_second_import_waits_for_promotion_where_a_production_version_is_set(store: Path, tmp_path: Path) -> None:
    ok(
        aimass(
            "import", written(tmp_path, "a.onnx", tiny.mlp(seed=1)), "--name", "m", "--store", str(store), "--promote"
        )
    )
    output = ok(aimass("import", written(tmp_path, "b.onnx", tiny.mlp(seed=2)), "--name", "m", "--store", str(store)))
    assert "production stays on version 1; version 2 serves once promoted" in output
    # The same file again is the version it made, not a copy.
    again = ok(aimass("import", str(tmp_path / "b.onnx"), "--name", "m", "--store", str(store)))
    assert "version 2 already holds this import" in again
    ok(aimass("promote", "m", "2", "--store", str(store)))
    assert LocalModelStore(store).aliases("m").production == "2"


@pytest.fixture
def samples_file(tmp_path: Path) -> Path:
    path = tmp_path / "samples.json"
    path.write_text(json.dumps({"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]]}}))
    return path


def test_samples_of_its_own_let_in_a_graph_that_synthesized_inputs_break(
    store: Path, tmp_path: Path, samples_file: Path
) -> None:
    graph = written(tmp_path, "log.onnx", tiny.logarithm())
    assert "--samples samples.json" in refused(aimass("import", graph, "--name", "log", "--store", str(store)))
    ok(aimass("import", graph, "--name", "log", "--samples", str(samples_file), "--store", str(store)))


def test_a_canary_with_a_policy_from_the_command_line(store: Path, tmp_path: Path) -> None:
    ok(
        aimass(
            "import", written(tmp_path, "a.onnx", tiny.mlp(seed=1)), "--name", "m", "--store", str(store), "--promote"
        )
    )
    ok(aimass("import", written(tmp_path, "b.onnx", tiny.mlp(seed=2)), "--name", "m", "--store", str(store)))
    output = ok(
        aimass(
            "canary",
            "m",
            "2",
            "--percent",
            "10",
            "--promote-after",
            "200",
            "--max-latency-ms",
            "40",
            "--store",
            str(store),
        )
    )
    assert (
        "canary 2 takes 10 %, promoted by itself after 200 requests with at most 0.00% errors, p95 within 40 ms"
        in output
    )
    policy = LocalModelStore(store).aliases("m").canary_policy
    assert policy is not None and (policy.min_requests, policy.max_latency_ms) == (200, 40.0)
    assert "max_error_rate" in refused(
        aimass(
            "canary",
            "m",
            "2",
            "--percent",
            "10",
            "--promote-after",
            "5",
            "--max-error-rate",
            "3",
            "--store",
            str(store),
        )
    )
