"""The real CartPole policy, closed loop through the real local server (``aimass serve``) over TCP.

Each time step sends the observations of every running episode as one request and steps gymnasium's
CartPole-v1 with the actions answered: the client that measured the model's quality for its manifest,
on fewer episodes. Also the build's samples through V2, and the Lambda handler over the real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from aimass.lambda_context import LocalLambdaContext
from models.rl.cartpole.evaluate_http import Via, evaluate, local_server
from tests.conftest import build_domain_models, import_handler, load_event, response_body

pytestmark = pytest.mark.real_model
NAME = "cartpole-ppo"
# Five episodes on seeds of their own (the build measured 20000-20099), played as one batch.
SEEDS = range(40_000, 40_005)


@pytest.fixture(scope="module")
def real_rl_store() -> Path:
    """The real policy, built once per checkout by its own build script (a no-op when present)."""
    return build_domain_models("rl")


@pytest.fixture(scope="module")
def base_url(real_rl_store: Path) -> Iterator[str]:
    with local_server(real_rl_store) as url:
        yield url


@pytest.mark.parametrize("via", ["act", "v2"])
def test_every_episode_balances_through_the_api(base_url: str, via: Via) -> None:
    # GIVEN the real server WHEN five episodes are played closed loop through the endpoint
    result = evaluate(base_url, seeds=SEEDS, via=via)
    # THEN each one reaches CartPole-v1's reward threshold, one request per time step for all five
    assert len(result.returns) == 5 and min(result.returns) >= 475, result.returns
    assert result.requests == max(result.returns)


def test_served_outputs_reproduce_the_builds_samples(base_url: str, real_rl_store: Path) -> None:
    import urllib.request

    samples = json.loads((real_rl_store / NAME / "1" / "samples.json").read_text())
    rows = samples["inputs"]["observation"]
    document = {"inputs": [{"name": "observation", "datatype": "FP32", "shape": [len(rows), 4], "data": rows}]}
    request = urllib.request.Request(
        f"{base_url}/v2/models/{NAME}/infer", json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in json.loads(reply.read())["outputs"]}
    for name in ("logits", "probabilities"):
        reference = np.array(samples["outputs"][name])
        assert np.abs(outputs[name] - reference).max() <= samples["tolerance"]["max_abs"]


def test_manifest_records_the_quality_measured_through_http(real_rl_store: Path) -> None:
    quality: dict[str, Any] = json.loads((real_rl_store / NAME / "1" / "manifest.json").read_text())["quality"]
    assert quality["episodes"] == 100 and quality["mean_return"] >= 475
    assert quality["measured_through"].startswith("POST /v1/rl/act")
    assert quality["requests"] == quality["max_return"]  # one request per time step, all episodes batched


def test_lambda_handler_acts_with_the_real_model(
    real_rl_store: Path, monkeypatch: pytest.MonkeyPatch, lambda_context: LocalLambdaContext
) -> None:
    module: ModuleType = import_handler(real_rl_store, monkeypatch, "rl")
    response = module.handler(load_event("apigw_http_v2_rl_act"), lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["model"] == NAME and len(body["outputs"]["actions"]) == 2
    # The second observation has the pole falling left fast: the policy pushes left, and is sure of it.
    assert body["outputs"]["actions"][1] == 0 and body["outputs"]["probabilities"][1][0] > 0.9
