"""A function's cold path imports no FastAPI: the rl handler, imported in a fresh interpreter as a new Lambda
container would, answers an inference event with FastAPI still out of ``sys.modules``; the first request no hot
route takes (a model's V2 metadata, the docs page) builds the FastAPI app then, and is answered through the
same handler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, load_event
from tests.events.specs import RL_MODEL
from tests.tiny_rl import TINY_RL, build_tiny_rl

# Run in the fresh interpreter: import the handler, then answer the events the test names, in order, saying
# after each whether FastAPI has been imported.
PROBE = """
import importlib.util, json, sys
from aimass.lambda_context import LocalLambdaContext

spec = importlib.util.spec_from_file_location("rl_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["rl_handler"] = module
spec.loader.exec_module(module)
answers = [{"fastapi": "fastapi" in sys.modules}]
for event in json.loads(sys.argv[2]):
    response = module.handler(event, LocalLambdaContext())
    answers.append({"response": response, "fastapi": "fastapi" in sys.modules})
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("lean-rl-store")
    build_tiny_rl(store)
    return store


def recorded(name: str) -> dict[str, Any]:
    event: dict[str, Any] = load_event(name, model=TINY_RL, recorded=RL_MODEL)
    return event


def at(name: str, path: str) -> dict[str, Any]:
    """The recorded REST event ``name``, sent to ``path`` instead."""
    event = recorded(name)
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    return event


def run_handler(store: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = {**os.environ, "AIMASS_MODEL_STORE": str(store), "AIMASS_DOMAINS": json.dumps(["rl"])}
    handler = str(ROOT / "functions/rl/handler.py")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, handler, json.dumps(events)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers: list[dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
    return answers


def test_hot_routes_answer_without_fastapi_and_the_rest_builds_it_on_first_need(store: Path) -> None:
    # GIVEN a fresh interpreter WHEN it imports the rl handler and answers an inference event, then the model's
    # V2 metadata and the docs page (FastAPI routes), then one more inference event
    metadata = at("apigw_rest_v1_models", f"/v2/models/{TINY_RL}")
    docs = at("apigw_rest_v1_models", "/docs")
    infer = recorded("apigw_rest_v1_rl_infer")
    imported, first, described, page, again = run_handler(store, [infer, metadata, docs, infer])
    # THEN FastAPI is not imported until the first request that needs it, and each answer is the right one
    assert imported["fastapi"] is False
    assert first["fastapi"] is False and first["response"]["statusCode"] == 200, first
    assert json.loads(first["response"]["body"])["model_name"] == TINY_RL
    assert described["fastapi"] is True and described["response"]["statusCode"] == 200, described
    body = json.loads(described["response"]["body"])
    assert body["name"] == TINY_RL and body["platform"] and body["inputs"][0]["name"] == "observation"
    assert page["response"]["statusCode"] == 200 and "swagger" in page["response"]["body"].lower(), page
    assert again["response"]["body"] == first["response"]["body"]
