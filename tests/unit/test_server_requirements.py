"""Server mode's pinned closure (layers/server-requirements.txt): what a function image's server stage adds.

The stage installs it with ``pip --no-deps --target`` over the Lambda stage's packages, so it must pin pyproject's
``server`` extra exactly, hold what those packages need that the Lambda stage lacks, and nothing the Lambda stage
already has (pip --target leaves an existing package as it is: a second pin would be silently ignored).
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVER_LIST = "layers/server-requirements.txt"
DOMAIN_LISTS = sorted(
    f"functions/{path.parent.name}/requirements.txt"
    for path in (ROOT / "functions").glob("*/Dockerfile")
    if "FROM function AS server" in path.read_text()
)
# Operator tooling: never in any image.
OPERATOR_TOOLS = {"typer", "rich", "aimass-tools"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(listed: str) -> dict[str, str]:
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / listed).read_text().splitlines())
    return {normalise(name): version for name, _, version in (line.partition("==") for line in lines if line)}


def extras() -> dict[str, list[str]]:
    found: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    return found


def test_the_list_pins_the_server_extra_and_the_local_extra_takes_it() -> None:
    server = {normalise(spec.split("==")[0]): spec.split("==")[1] for spec in extras()["server"]}
    assert set(server) == {"uvicorn", "httptools", "uvloop"}
    assert {name: pins(SERVER_LIST)[name] for name in server} == server
    # `aimass serve` runs the same server mode from the same pins
    assert "aimass[server]" in extras()["local"]


def test_the_list_holds_no_operator_tool() -> None:
    assert not set(pins(SERVER_LIST)) & OPERATOR_TOOLS


@pytest.mark.parametrize("listed", DOMAIN_LISTS)
def test_the_list_completes_each_server_stage_without_repeating_it(listed: str) -> None:
    server, function = pins(SERVER_LIST), pins(listed)
    # GIVEN a domain whose image has a server stage
    assert not set(server) & set(function), "the Lambda stage already installs these"
    # THEN what each server package needs on Linux, Python 3.11, is in one of the two lists, at the version the
    # project's own environment (which the tests run) resolved
    installed = {**function, **server}
    missing = []
    for name in server:
        for spec in distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": "", "python_version": "3.11"}):
                continue
            if normalise(requirement.name) not in installed:
                missing.append(f"{name} needs {spec}")
        assert distribution(name).version == server[name], name
    assert not missing
