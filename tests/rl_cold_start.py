"""The rl function's handler in a fresh interpreter, as a new Lambda container runs it: what a cold start imports,
answers and logs (tests/functional/test_lean_lambda.py, test_head_start.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "functions" / "rl" / "handler.py"

# Run in the fresh interpreter: import the handler, then answer the events it is given, in order, saying what is
# imported once the handler is and after each answer.
PROBE = """
import importlib.util, json, sys
from aimass.lambda_context import LocalLambdaContext

spec = importlib.util.spec_from_file_location("rl_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["rl_handler"] = module
spec.loader.exec_module(module)
answers = [{"modules": sorted(sys.modules)}]
for event in json.loads(sys.argv[2]):
    response = module.handler(event, LocalLambdaContext())
    answers.append({"response": response, "modules": sorted(sys.modules)})
print(json.dumps(answers))
"""


@dataclass(frozen=True)
class ColdStart:
    answers: list[dict[str, Any]]  # what was imported once the handler was, then each response and the imports
    logged: str  # the process's standard error: its log lines


def cold_start(store: Path, events: list[dict[str, Any]], **env: str) -> ColdStart:
    """The rl handler over ``store`` (metering off, plus ``env``) answering ``events`` in a new interpreter."""
    environ = {
        **os.environ,
        "AIMASS_MODEL_STORE": str(store),
        "AIMASS_DOMAINS": json.dumps(["rl"]),
        "AIMASS_METERING": "off",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(HANDLER), json.dumps(events)],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return ColdStart(json.loads(done.stdout.splitlines()[-1]), done.stderr)
