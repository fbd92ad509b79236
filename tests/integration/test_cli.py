"""The `aimass` command as a user runs it: a real process, real output, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EVENTS, ROOT
from tests.tiny_models import TINY_TEXT


def aimass(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimass_tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_invoke_runs_a_functions_handler_on_an_event(tiny_store: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        (EVENTS / "apigw_rest_v1_text_model_metadata.json").read_text().replace("all-minilm-l6-v2", TINY_TEXT)
    )
    result = aimass("invoke", "text", str(event), "--store", str(tiny_store))
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["name"] == TINY_TEXT


def test_invoke_exits_nonzero_on_an_error_response(tiny_store: Path) -> None:
    # The event names the real model, which this store does not hold.
    result = aimass(
        "invoke", "text", str(EVENTS / "apigw_rest_v1_text_model_metadata.json"), "--store", str(tiny_store)
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["statusCode"] == 404


def test_invoke_names_unknown_functions() -> None:
    result = aimass("invoke", "nope", str(EVENTS / "apigw_rest_v1_text_model_metadata.json"))
    assert result.returncode == 2 and "no function 'nope'" in result.stderr


def test_models_build_refuses_unknown_domains_and_lists_the_store(tiny_store: Path) -> None:
    refused = aimass("models", "build", "klingon")
    assert refused.returncode == 2 and "unknown domain(s) ['klingon']" in refused.stderr
    listed = aimass("models", "list", "--store", str(tiny_store))
    assert listed.returncode == 0 and TINY_TEXT in listed.stdout
    verified = aimass("models", "verify", TINY_TEXT, "--store", str(tiny_store))
    assert verified.returncode == 0 and "verified" in verified.stdout


def test_invoke_adds_an_api_key_to_an_event_file(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMASS_METERING", "sqlite")
    monkeypatch.setenv("AIMASS_STATE_DIR", str(tmp_path / "state"))
    event = tmp_path / "event.json"
    event.write_text((EVENTS / "apigw_rest_v1_text_infer.json").read_text().replace("all-minilm-l6-v2", TINY_TEXT))
    created = aimass("keys", "create", "--tenant", "acme", "--scopes", "invoke")
    assert created.returncode == 0, created.stderr
    key = next(word for word in created.stdout.split() if word.startswith("am_"))

    refused = aimass("invoke", "text", str(event), "--store", str(tiny_store))
    assert refused.returncode == 1 and json.loads(refused.stdout)["statusCode"] == 401
    served = aimass("invoke", "text", str(event), "--store", str(tiny_store), "--key", key)
    assert served.returncode == 0, served.stdout
    assert json.loads(json.loads(served.stdout)["body"])["model_name"] == TINY_TEXT
