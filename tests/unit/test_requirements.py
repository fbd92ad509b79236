"""Every function's requirements: the pinned closure its image installs with ``pip --no-deps``.

The project's own pins (pyproject.toml ``[project] dependencies``) are what the tests run against, so an
image that ships one of those packages must pin the very same version; the serving core's own packages
ship in every image; and no build or dev tool ships in any.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/requirements.txt"))
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)")
# What layers/aimass itself imports: every image needs it, whatever its domain.
CORE = {
    "aws-lambda-powertools",
    "boto3",
    "cryptography",
    "fastapi",
    "mangum",
    "numpy",
    "onnxruntime",
    "pydantic",
    "pydantic-settings",
    "python-multipart",
}
# The API key authorizer runs no model: it needs only the key lookup's packages (its own requirements.txt).
AUTHORIZER_CORE = {"boto3", "pydantic", "pydantic-settings"}
SERVING_ONLY = CORE - AUTHORIZER_CORE
# Tools that must never ship, beyond pyproject's extras (checked below), and huggingface-hub, which
# tokenizers declares but the server never needs (see functions/text/requirements.txt).
FORBIDDEN = {"torch", "pytest", "ruff", "mypy", "jsii", "click", "huggingface-hub", "hf-xet", "moto"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(function: str) -> list[str]:
    text = (ROOT / "functions" / function / "requirements.txt").read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def pins(function: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in requirement_lines(function):
        match = PIN.fullmatch(line)
        assert match, f"functions/{function}/requirements.txt: not a name==version pin: {line!r}"
        assert normalise(match["name"]) not in found, f"functions/{function}/requirements.txt lists {line!r} twice"
        found[normalise(match["name"])] = match["version"]
    return found


def project() -> dict[str, object]:
    document: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return document


def project_pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for spec in project()["dependencies"]:  # type: ignore[attr-defined]
        match = PIN.fullmatch(spec.replace(" ", ""))
        assert match, f"pyproject.toml pins every runtime dependency exactly: {spec!r}"
        found[normalise(match["name"])] = match["version"]
    return found


def optional_packages() -> set[str]:
    extras: dict[str, list[str]] = project()["optional-dependencies"]  # type: ignore[assignment]
    return {normalise(re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0]) for specs in extras.values() for spec in specs}


def test_every_function_has_a_list() -> None:
    assert "text" in FUNCTIONS
    for dockerfile in (ROOT / "functions").glob("*/Dockerfile"):
        assert dockerfile.parent.name in FUNCTIONS, f"{dockerfile} has no requirements.txt beside it"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pins_the_projects_versions(function: str) -> None:
    shipped, ours = pins(function), project_pins()
    assert shipped
    needed = AUTHORIZER_CORE if function == "authorizer" else CORE
    assert set(shipped) >= needed, f"missing core packages: {sorted(needed - set(shipped))}"
    if function == "authorizer":
        assert not set(shipped) & SERVING_ONLY, "the authorizer image carries no serving stack"
    mismatched = {
        name: (version, ours[name]) for name, version in shipped.items() if name in ours and version != ours[name]
    }
    assert not mismatched, f"(image, pyproject) versions differ: {mismatched}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_ships_no_build_or_dev_tool(function: str) -> None:
    leaked = set(pins(function)) & ({normalise(name) for name in FORBIDDEN} | optional_packages())
    assert not leaked, f"functions/{function}/requirements.txt ships build/dev packages: {sorted(leaked)}"
