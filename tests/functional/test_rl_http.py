"""The rl domain over HTTP, against the tiny linear policy: V2 inference and the ``act`` task.

Every answer is checked against the policy's weights in numpy; every bad input gets a 400 that names the
row and what was expected, whether the bad value arrives as JSON (where Python's ``NaN`` and ``Infinity``
literals parse too) or as binary tensor data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass.store.manifest import TensorSpec, read_manifest, write_manifest
from tests.tiny_rl import TINY_RL, build_tiny_rl, reference_logits, reference_probabilities

INFER = f"/v2/models/{TINY_RL}/infer"
ACT = "/v1/rl/act"
OBSERVATIONS = [[0.0, 0.1, 0.02, 0.3], [0.5, -0.2, -0.04, -0.5], [-1.0, 0.0, 0.1, -0.05]]


@pytest.fixture(scope="module")
def rl_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("rl-store")
    build_tiny_rl(store)
    return store


@pytest.fixture(scope="module")
def rl_client(rl_store: Path) -> Iterator[TestClient]:
    settings = Settings(model_store=rl_store, domains=("rl",), max_batch_items=32)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        yield client


def observation_input(rows: list[list[float]], **extra: object) -> dict[str, object]:
    return {"name": "observation", "datatype": "FP32", "shape": [len(rows), 4], "data": rows, **extra}


def post_json(client: TestClient, path: str, document: object) -> Any:
    # json.dumps, not the client's json=: it refuses NaN, which is exactly what some tests must send.
    return client.post(path, content=json.dumps(document), headers={"Content-Type": "application/json"})


def test_model_metadata_declares_the_policy_tensors(rl_client: TestClient) -> None:
    meta = rl_client.get(f"/v2/models/{TINY_RL}").json()
    assert meta["inputs"] == [{"name": "observation", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["logits", "probabilities"]
    assert meta["parameters"] == {"domain": "rl", "task": "policy", "serving_version": "1"}


def test_json_infer_returns_logits_and_probabilities(rl_client: TestClient) -> None:
    # GIVEN three observations WHEN they are sent as one V2 JSON request
    response = rl_client.post(INFER, json={"id": "r1", "inputs": [observation_input(OBSERVATIONS)]})
    # THEN both outputs are the linear policy's, and usage counts the observations
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "r1" and body["parameters"] == {"observations": 3}
    outputs = {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"]) for o in body["outputs"]}
    np.testing.assert_allclose(outputs["logits"], reference_logits(OBSERVATIONS), atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"], reference_probabilities(OBSERVATIONS), atol=1e-6)


def test_binary_infer_round_trips(rl_client: TestClient) -> None:
    tensor = np.asarray(OBSERVATIONS, dtype="<f4")
    header = json.dumps(
        {
            "inputs": [
                {"name": "observation", "datatype": "FP32", "shape": [3, 4], "parameters": {"binary_data_size": 48}}
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    response = rl_client.post(
        INFER, content=header + tensor.tobytes(), headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    (output,) = json.loads(response.content[:size])["outputs"]
    assert output["name"] == "probabilities" and output["parameters"] == {"binary_data_size": 24}
    got = np.frombuffer(response.content[size:], dtype="<f4").reshape(3, 2)
    np.testing.assert_allclose(got, reference_probabilities(OBSERVATIONS), atol=1e-6)


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_non_finite_json_values_are_400_naming_row_and_field(rl_client: TestClient, value: float, shown: str) -> None:
    rows = [list(row) for row in OBSERVATIONS]
    rows[2][1] = value
    response = post_json(rl_client, INFER, {"inputs": [observation_input(rows)]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == (
        f"input 'observation'[2][1] (cart_velocity) is {shown}; expected a finite number within the float32 range"
    )


def test_finite_json_values_past_float32_are_400(rl_client: TestClient) -> None:
    rows = [list(row) for row in OBSERVATIONS]
    rows[2][1] = 1e39  # finite in JSON, infinite as FP32: the V2 codec refuses it before the runtime sees it
    response = post_json(rl_client, INFER, {"inputs": [observation_input(rows)]})
    assert response.status_code == 400
    assert response.json()["error"] == "inputs[0].data has values outside FP32's range"


def test_non_finite_binary_values_are_400(rl_client: TestClient) -> None:
    tensor = np.asarray(OBSERVATIONS, dtype="<f4")
    tensor[1, 2] = np.nan
    header = json.dumps(
        {
            "inputs": [
                {"name": "observation", "datatype": "FP32", "shape": [3, 4], "parameters": {"binary_data_size": 48}}
            ]
        }
    ).encode()
    response = rl_client.post(
        INFER, content=header + tensor.tobytes(), headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400
    assert "input 'observation'[1][2] (pole_angle) is nan" in response.json()["error"]


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        (observation_input([[0.0, 0.0, 0.0]], shape=[1, 3]), "has shape [1, 3]; expected [-1, 4]"),
        (observation_input([[0.0] * 4], datatype="FP64"), "must have datatype FP32, got FP64"),
    ],
)
def test_the_manifest_shape_and_type_are_enforced(rl_client: TestClient, tensor: object, expected: str) -> None:
    response = rl_client.post(INFER, json={"inputs": [tensor]})
    assert response.status_code == 400 and expected in response.json()["error"]


def test_more_observations_than_a_request_may_carry_is_413(rl_client: TestClient) -> None:
    over_v2 = rl_client.post(INFER, json={"inputs": [observation_input([[0.0] * 4] * 33)]})
    assert over_v2.status_code == 413 and "has 33 items; at most 32" in over_v2.json()["error"]
    over_act = post_json(rl_client, ACT, {"observations": [[0.0] * 4] * 257})
    error = over_act.json()["error"]
    assert over_act.status_code == 413 and error["param"] == "observations" and "257 observations" in error["message"]


def test_act_picks_the_most_likely_action_by_default(rl_client: TestClient) -> None:
    # GIVEN observations WHEN the act task is asked without options
    response = rl_client.post(ACT, json={"observations": OBSERVATIONS})
    # THEN each action is the argmax of the policy's probabilities, in the task envelope
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["model_version"], body["usage"]) == (TINY_RL, "1", {"observations": 3})
    assert body["request_id"] == response.headers["x-request-id"]
    probabilities = reference_probabilities(OBSERVATIONS)
    assert body["outputs"]["actions"] == probabilities.argmax(axis=1).tolist() == [1, 0, 0]
    np.testing.assert_allclose(body["outputs"]["probabilities"], probabilities, atol=1e-6)


def test_act_names_the_model_when_asked(rl_client: TestClient) -> None:
    response = rl_client.post(ACT, json={"model": TINY_RL, "observations": OBSERVATIONS[:1]})
    assert response.status_code == 200 and response.json()["outputs"]["actions"] == [1]
    unknown = rl_client.post(ACT, json={"model": "nope", "observations": OBSERVATIONS[:1]})
    assert unknown.status_code == 404 and "model 'nope' not found" in unknown.json()["error"]["message"]


def test_sampled_actions_repeat_with_a_seed(rl_client: TestClient) -> None:
    # GIVEN 200 copies of an observation the policy is unsure about (p(right) = 0.574)
    request = {"observations": [OBSERVATIONS[0]] * 200, "deterministic": False, "seed": 11}
    first = rl_client.post(ACT, json=request).json()["outputs"]["actions"]
    # THEN the same seed gives the same actions, another seed others, and both actions occur
    assert first == rl_client.post(ACT, json=request).json()["outputs"]["actions"]
    assert first != rl_client.post(ACT, json={**request, "seed": 12}).json()["outputs"]["actions"]
    assert 0.4 < sum(first) / len(first) < 0.75


@pytest.mark.parametrize(
    ("document", "expected", "param"),
    [
        (
            {"observations": [[0.0] * 4, [0.0] * 3]},
            "observations[1] has 3 values; expected 4: cart_position",
            "observations[1]",
        ),
        (
            {"observations": [[0.0, math.nan, 0, 0]]},
            "observations[0][1] (cart_velocity) is nan; expected a finite",
            "observations[0]",
        ),
        (
            {"observations": [[0.0] * 4, [0, 0, 0, math.inf]]},
            "observations[1][3] (pole_angular_velocity) is inf",
            "observations[1]",
        ),
        ({"observations": [[1e39, 0, 0, 0]]}, "observations[0][0] (cart_position) is inf", "observations[0]"),
        ({"observations": []}, "observations: List should have at least 1 item", "observations"),
        ({"observations": [["a", 0, 0, 0]]}, "observations.0.0: Input should be a valid number", "observations.0.0"),
        ({"observations": [[0.0] * 4], "seed": -1}, "seed: Input should be greater than or equal to 0", "seed"),
        ({"observations": [[0.0] * 4], "greedy": True}, "greedy: Extra inputs are not permitted", "greedy"),
        ({}, "observations: Field required", "observations"),
    ],
)
def test_bad_act_requests_are_400_naming_the_problem(
    rl_client: TestClient, document: dict[str, Any], expected: str, param: str
) -> None:
    response = post_json(rl_client, ACT, document)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert expected in error["message"] and error["param"] == param and error["code"] == "invalid_input"


def test_the_task_spec_runs_without_http(rl_store: Path) -> None:
    # GIVEN the runtime as the registry loads it WHEN its act task runs on a validated request
    registry = ModelRegistry(LocalModelStore(rl_store), SessionFactory(Settings()), domains=("rl",))
    registry.load_all()
    spec = registry.get(TINY_RL).tasks()["act"]
    result = spec.run(spec.request.model_validate({"observations": OBSERVATIONS, "deterministic": True}))
    # THEN it answers as the route does
    assert result.outputs["actions"] == [1, 0, 0] and result.usage == {"observations": 3}
    np.testing.assert_allclose(result.outputs["probabilities"], reference_probabilities(OBSERVATIONS), atol=1e-6)
    assert spec.file_field is None and spec.summary


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"preprocessing": {"environment": "CartPole-v1", "observation_fields": ["x", "v", "theta"]}}, "[-1, 3]"),
        ({"preprocessing": {"observation_fields": ["a", "b", "c", "d"]}}, "invalid preprocessing"),
        ({"inputs": (TensorSpec(name="obs", datatype="FP32", shape=(-1, 4)),)}, "input, the graph's own"),
    ],
)
def test_a_manifest_the_runtime_cannot_serve_leaves_the_model_unavailable(
    tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    # GIVEN the tiny policy with a manifest that contradicts its graph (or says too little)
    directory = build_tiny_rl(tmp_path)
    manifest = read_manifest(directory)
    write_manifest(directory, manifest.model_copy(update=change))
    # WHEN the registry loads the store
    registry = ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings()), domains=("rl",))
    registry.load_all()
    # THEN the model is reported unavailable with the reason, instead of failing requests later
    (state,) = registry.states()
    assert state.state == "UNAVAILABLE", state
    # AND operators read the specific reason; clients read one without other libraries' internals
    assert reason in registry.rejections(state.name)[state.version].detail
    assert "input_value" not in state.reason and "pydantic" not in state.reason, state.reason
