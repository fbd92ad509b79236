"""Every pydantic model the functions ship derives from ``aimass.schema.Schema``, and a deferred model's first use
on many threads at once validates as a built one does."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What a function image carries: the core and the domain packages.
SHIPPED = [REPO / "layers" / "aimass", *sorted((REPO / "functions").glob("*/aimass_*"))]


def _pydantic_bases(tree: ast.Module) -> list[tuple[str, int]]:
    """Classes whose bases name ``BaseModel`` directly (``BaseModel`` or ``pydantic.BaseModel``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                if name == "BaseModel":
                    found.append((node.name, node.lineno))
    return found


def test_every_shipped_model_derives_from_schema() -> None:
    # GIVEN every module a function image carries WHEN its classes are read
    offenders = []
    for package in SHIPPED:
        for path in package.rglob("*.py"):
            if path == REPO / "layers" / "aimass" / "schema.py":
                continue
            for name, line in _pydantic_bases(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{path.relative_to(REPO)}:{line} {name}")
    # THEN none derives from BaseModel itself: each is built on first use, off the cold start
    assert SHIPPED and not offenders, f"derive these from aimass.schema.Schema: {offenders}"


# A fresh interpreter, so that no other test has built the models first: 16 threads released at once each make
# their first validation of the V2 request (nested models, strict) and of a wrong one.
RACE = """
import json, sys, threading
from aimass.protocol.v2_types import InferenceRequest
good, bad = sys.argv[1], sys.argv[2]
assert not InferenceRequest.__pydantic_complete__
gate = threading.Barrier(16)
answers = []

def first_use():
    gate.wait()
    outcome = []
    for document in (good, bad):
        try:
            outcome.append(InferenceRequest.model_validate_json(document).model_dump(mode="json"))
        except Exception as error:
            outcome.append([type(error).__name__, [e["type"] for e in error.errors()]])
    answers.append(outcome)

threads = [threading.Thread(target=first_use) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(answers))
"""


def test_a_deferred_model_first_used_on_many_threads_validates_alike() -> None:
    good = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]}
    bad = {"inputs": [{"name": "x", "shape": ["1"], "datatype": "FP32", "data": [1.0], "colour": "red"}]}
    ran = subprocess.run(
        [sys.executable, "-c", RACE, json.dumps(good), json.dumps(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    answers = json.loads(ran.stdout)
    expected_good = {
        "id": None,
        "parameters": None,
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": None, "data": [1.0, 2.0]}],
        "outputs": None,
    }
    # Strict and closed: the string "1" is no shape element, and an unknown field is refused.
    expected_bad = ["ValidationError", ["int_type", "extra_forbidden"]]
    assert answers == [[expected_good, expected_bad]] * 16
