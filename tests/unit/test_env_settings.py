"""Settings read the environment as pydantic-settings read it (aimass.env_source), value for value and error
for error: the same fields come out of the same variables, with or without constructor values."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from aimass.env_source import SettingsError
from aimass.settings import Plan, Settings

# The settings as pydantic-settings declares them: the same fields, its own environment source.
Reference: type[BaseSettings] = type(
    "Settings",
    (BaseSettings,),
    {
        "__annotations__": dict(Settings.__annotations__),
        **Settings.model_fields,
        "model_config": SettingsConfigDict(env_prefix="AIMASS_", frozen=True),
        "__module__": Settings.__module__,
    },
)

PLAN = {"rate_per_s": 1, "burst": 2, "monthly_units": 10}
UNLIMITED = Plan(rate_per_s=None, burst=None, monthly_units=5)
CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({}, {}),
    ({"AIMASS_DOMAINS": '["rl"]', "AIMASS_METERING": "off", "AIMASS_MODEL_STORE": "/x"}, {}),
    ({"aimass_domains": '["rl"]', "Aimass_Intra_Op_Threads": "3"}, {}),  # any case
    ({"AIMASS_DOMAINS": "rl"}, {}),  # not JSON, in a union: handed to validation as it is
    ({"AIMASS_DOMAINS": ""}, {}),
    ({"AIMASS_DOMAINS": "null", "AIMASS_PLANS": "null", "AIMASS_PEERS": "null"}, {}),  # null: the default
    ({"AIMASS_DOMAINS": '"rl"'}, {}),
    ({"AIMASS_INTRA_OP_THREADS": "x"}, {}),
    ({"AIMASS_INTRA_OP_SPINNING": "true", "AIMASS_KMS_KEY_ID": "", "AIMASS_MAX_BODY_BYTES": " 12 "}, {}),
    ({"AIMASS_IMPORT_MEMORY_MB": ""}, {}),
    ({"AIMASS_PLANS": json.dumps({"free": PLAN})}, {}),
    ({"AIMASS_PLANS": json.dumps({"free": PLAN})}, {"plans": {"pro": {**PLAN, "burst": 3}}}),  # merged
    (
        {"AIMASS_PLANS": json.dumps({"free": PLAN})},
        {"plans": {"free": UNLIMITED}},
    ),
    ({"AIMASS_PRICES": json.dumps({"images": 2})}, {"prices": {"images": 1.0}}),
    ({"AIMASS_PEERS": json.dumps([{"domain": "rl", "function": "f", "models": ["a"]}])}, {}),
    ({"AIMASS_BATCH_TARGETS": json.dumps({"rl": {"queue": "q", "job_definition": "j"}})}, {}),
    ({"AIMASS_EDGE_API_ID": "ABC", "AIMASS_ACCELERATOR": "gpu"}, {}),
    ({"AIMASS_METERING": "off", "AIMASS_NOT_A_FIELD": "1"}, {"metering": "sqlite", "model_store": "/y"}),
    ({}, {"not_a_field": 1}),
]


def outcome(settings: type[Any], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], values: dict[str, Any]) -> Any:
    with monkeypatch.context() as patch:
        for key in [key for key in os.environ if key.upper().startswith("AIMASS_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        try:
            made = settings(**values)
        except ValueError as exc:  # pydantic's ValidationError is one
            return type(exc).__name__, str(exc)
        return made.model_dump(mode="json"), made.model_fields_set


@pytest.mark.parametrize(("env", "values"), CASES)
def test_the_environment_reads_as_pydantic_settings_read_it(
    env: dict[str, str], values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert outcome(Settings, monkeypatch, env, values) == outcome(Reference, monkeypatch, env, values)


@pytest.mark.parametrize("name", ["AIMASS_PEERS", "AIMASS_BATCH_TARGETS"])
def test_a_container_field_that_is_not_json_is_refused_naming_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "[bad")
    with pytest.raises(SettingsError, match=f'field "{name.removeprefix("AIMASS_").lower()}"'):
        Settings()
