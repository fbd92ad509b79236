"""A function's cold path imports only what its first request needs: the rl handler, imported in a fresh
interpreter as a new Lambda container would, answers a V2 inference without importing the modules below
(each one cost the cold start of every function before it was made lazy); a chat request then imports its
protocol on first need and is answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_event
from tests.events.specs import RL_MODEL
from tests.tiny_rl import TINY_RL, build_tiny_rl

# Not on the cold path of a function without keys, peers or batches, whose first request is an inference.
OFF_THE_COLD_PATH = (
    "pydantic_settings",  # aimass.env_source reads the settings
    "fastapi",  # aimass.http.lean: built for the first request no hot route takes
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "aimass.protocol.openai_chat",  # the lazy hot routes' protocols (aimass.http.hot_routes.LazyRoutes)
    "aimass.protocol.v2_generate",
    "aimass.protocol.generating",
    "aimass.protocol.tasks",
    "aimass.protocol.openai_audio",
    "aimass.http.sse",
    "aimass.http.peers",  # a front function's
    "aimass.metering.service",  # a function's with keys
    "aimass.metering.keys",
    "aimass.observability",
    "aimass.batches",
)

PROBE = """
import importlib.util, json, sys
from aimass.lambda_context import LocalLambdaContext

spec = importlib.util.spec_from_file_location("rl_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["rl_handler"] = module
spec.loader.exec_module(module)
answers = []
for event in json.loads(sys.argv[2]):
    status = module.handler(event, LocalLambdaContext())["statusCode"]
    answers.append({"status": status, "modules": sorted(sys.modules)})
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cold-path-store")
    build_tiny_rl(store)
    return store


def imported(modules: list[str], name: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for module in modules)


def test_the_first_inference_imports_nothing_it_does_not_need(store: Path) -> None:
    # GIVEN a fresh interpreter WHEN it imports the rl handler and answers a V2 inference, then a chat request
    infer = load_event("apigw_rest_v1_rl_infer", model=TINY_RL, recorded=RL_MODEL)
    chat = load_event("apigw_rest_v1_rl_infer", model=TINY_RL, recorded=RL_MODEL)
    chat["path"] = chat["resource"] = chat["requestContext"]["resourcePath"] = "/v1/chat/completions"
    chat["requestContext"]["path"] = "/prod/v1/chat/completions"
    chat["body"] = json.dumps({"model": TINY_RL, "messages": [{"role": "user", "content": "hi"}]})
    env = {
        **os.environ,
        "AIMASS_MODEL_STORE": str(store),
        "AIMASS_DOMAINS": json.dumps(["rl"]),
        "AIMASS_METERING": "off",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions/rl/handler.py"), json.dumps([infer, chat])],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    first, chatted = json.loads(done.stdout.splitlines()[-1])
    # THEN the inference is answered with none of them imported
    assert first["status"] == 200
    assert [name for name in OFF_THE_COLD_PATH if imported(first["modules"], name)] == []
    # AND the chat route imports its protocol on its first request, which it answers (an rl model does not chat)
    assert imported(chatted["modules"], "aimass.protocol.openai_chat")
    assert 400 <= chatted["status"] < 500
