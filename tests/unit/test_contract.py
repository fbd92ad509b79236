"""What the serving code and the CDK app share (``aimass.contract``) holds together on its own terms."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aimass.contract import (
    COUNTERS_TABLE,
    DEFAULT_PLANS,
    KEYS_TABLE,
    KEYS_TENANT_INDEX,
    OPEN_PATHS,
    USAGE_TABLE,
    USAGE_TENANT_AT_INDEX,
    TableLayout,
    service_name,
)
from aimass.settings import Plan, Settings

LAYOUTS = {"keys": KEYS_TABLE, "usage": USAGE_TABLE, "counters": COUNTERS_TABLE}


def test_the_default_plans_are_valid_plans_and_the_settings_defaults() -> None:
    plans = {name: Plan.model_validate(terms) for name, terms in DEFAULT_PLANS.items()}
    assert plans == Settings().plans
    assert "default" in plans  # what a key gets when none is named


@pytest.mark.parametrize(
    "change", [{"rate_per_s": 0}, {"rate_per_s": float("inf")}, {"burst": 0}, {"monthly_units": 0}]
)
def test_a_plan_allows_something(change: dict[str, float]) -> None:
    # A plan of no requests or no units would serve nothing: a key is stopped by revoking it.
    with pytest.raises(ValidationError):
        Plan.model_validate({**DEFAULT_PLANS["free"], **change})


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_defines_every_key_attribute_once(name: str) -> None:
    arguments = LAYOUTS[name].create_table(f"aimass-{name}")
    defined = [attribute["AttributeName"] for attribute in arguments["AttributeDefinitions"]]
    keys = [key["AttributeName"] for key in arguments["KeySchema"]]
    for index in arguments.get("GlobalSecondaryIndexes", []):
        keys += [key["AttributeName"] for key in index["KeySchema"]]
        assert index["Projection"] == {"ProjectionType": "ALL"}
    # DynamoDB refuses a definition no key uses, and a key with no definition.
    assert len(defined) == len(set(defined)) and set(defined) == set(keys)
    assert arguments["TableName"] == f"aimass-{name}"


def test_the_indexes_the_stores_query_exist() -> None:
    assert KEYS_TABLE.index(KEYS_TENANT_INDEX).partition_key.name == "tenant"
    by_time = USAGE_TABLE.index(USAGE_TENANT_AT_INDEX)
    assert (by_time.partition_key.name, by_time.sort_key and by_time.sort_key.name) == ("tenant", "at")


def test_a_layout_with_a_sort_key_and_no_index() -> None:
    layout: TableLayout = COUNTERS_TABLE
    assert layout.create_table("c")["KeySchema"] == [
        {"AttributeName": "subject", "KeyType": "HASH"},
        {"AttributeName": "period", "KeyType": "RANGE"},
    ]
    assert "GlobalSecondaryIndexes" not in layout.create_table("c")


def test_open_paths_are_whole_paths() -> None:
    assert all(path.startswith("/") and not path.endswith("/") and "{" not in path for path in OPEN_PATHS)
    # The model routes are never open.
    assert not any(path.startswith(("/v2/models", "/v1/")) for path in OPEN_PATHS)


def test_service_names_never_clash_with_module_loggers() -> None:
    assert service_name(["text"]) == "aimass-text"
    assert service_name(["vision", "text"]) == "aimass-text-vision"
    assert service_name(None) == "aimass-all"
