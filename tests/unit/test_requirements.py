"""Every function's requirements: the pinned closure its image installs with ``pip --no-deps``.

The project's own pins (pyproject.toml ``[project] dependencies``) are what the tests run against, so an
image that ships one of those packages must pin the very same version; the serving core's own packages
ship in every image; and no build or dev tool ships in any. The serving core's closure
(``layers/requirements.txt``, which every domain's list extends) is held to the same rules.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/requirements.txt"))
# The serving core's pinned closure: no image installs it as such, every domain image's list holds it.
CORE_LIST = "layers/requirements.txt"
# Every pinned list, by its path in the checkout.
LISTS = [*(f"functions/{function}/requirements.txt" for function in FUNCTIONS), CORE_LIST]
AUTHORIZER_LIST = "functions/authorizer/requirements.txt"
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


def requirement_lines(listed: str) -> list[str]:
    text = (ROOT / listed).read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def pins(listed: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in requirement_lines(listed):
        match = PIN.fullmatch(line)
        assert match, f"{listed}: not a name==version pin: {line!r}"
        assert normalise(match["name"]) not in found, f"{listed} lists {line!r} twice"
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


@pytest.mark.parametrize("listed", LISTS)
def test_pins_the_projects_versions(listed: str) -> None:
    shipped, ours = pins(listed), project_pins()
    assert shipped
    needed = AUTHORIZER_CORE if listed == AUTHORIZER_LIST else CORE
    assert set(shipped) >= needed, f"missing core packages: {sorted(needed - set(shipped))}"
    if listed == AUTHORIZER_LIST:
        assert not set(shipped) & SERVING_ONLY, "the authorizer image carries no serving stack"
    mismatched = {
        name: (version, ours[name]) for name, version in shipped.items() if name in ours and version != ours[name]
    }
    assert not mismatched, f"(image, pyproject) versions differ: {mismatched}"


@pytest.mark.parametrize("listed", LISTS)
def test_ships_no_build_or_dev_tool(listed: str) -> None:
    leaked = set(pins(listed)) & ({normalise(name) for name in FORBIDDEN} | optional_packages())
    assert not leaked, f"{listed} ships build/dev packages: {sorted(leaked)}"


@pytest.mark.parametrize("function", [function for function in FUNCTIONS if function != "authorizer"])
def test_every_domain_image_extends_the_core_closure(function: str) -> None:
    # A domain's list is the core's closure plus what its runtime and codecs import, at the same pins.
    core, shipped = pins(CORE_LIST), pins(f"functions/{function}/requirements.txt")
    differing = {name: (version, shipped.get(name)) for name, version in core.items() if shipped.get(name) != version}
    assert not differing, f"(core closure, functions/{function}) pins differ: {differing}"
