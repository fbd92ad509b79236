"""The metering tables, their grants, the plans the functions get and API Gateway's usage plans.

The tables are declared from the layouts the metering code is written against (``aimass.contract``): the
synthesized keys and indexes must read back as those layouts' own ``create_table`` arguments.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimass.contract import COUNTERS_TABLE, KEYS_TABLE, PLAN_TAG, USAGE_TABLE, TableLayout
from aimass.settings import Plan, Settings
from infra.config import DEFAULT_PLANS
from infra.stacks.serving_stack import AUTHORIZER_LOGICAL_ID, function_logical_id
from tests.infra.infra_synth import DOCKERFILE_DOMAINS, Synthesized

DEFINITIONS: dict[str, TableLayout] = {
    "KeysTableName": KEYS_TABLE,
    "UsageTableName": USAGE_TABLE,
    "CountersTableName": COUNTERS_TABLE,
}
VIA_DYNAMODB = {
    "StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
}
# What a DynamoDB-encrypted table's caller may do with its key: only through DynamoDB.
KEY_USE = {"kms:Decrypt", "kms:GenerateDataKey"}
# Giving keys their edge keys and taking them back (API Gateway's control plane).
EDGE_KEY_ACTIONS = {"apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:DELETE"}


def _table(synthesized: Synthesized, output: str) -> dict[str, Any]:
    table = synthesized.resources[synthesized.output_ref(output)]
    assert table["Type"] == "AWS::DynamoDB::Table"
    return table


def _as_definition(table: dict[str, Any]) -> dict[str, Any]:
    """The table's layout in ``create_table``'s terms (what the definitions hold besides the name)."""
    properties = table["Properties"]
    layout = {
        "BillingMode": properties["BillingMode"],
        "AttributeDefinitions": sorted(properties["AttributeDefinitions"], key=json.dumps),
        "KeySchema": properties["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in properties:
        layout["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    return layout


def _code_definition(output: str) -> dict[str, Any]:
    definition = DEFINITIONS[output].create_table("any-name")
    definition.pop("TableName")
    definition["AttributeDefinitions"] = sorted(definition["AttributeDefinitions"], key=json.dumps)
    return definition


# --- the tables ----------------------------------------------------------------------------------


@pytest.mark.parametrize("output", sorted(DEFINITIONS))
def test_tables_are_exactly_the_contracts_layouts(synthesized: Synthesized, output: str) -> None:
    assert _as_definition(_table(synthesized, output)) == _code_definition(output)


@pytest.mark.parametrize("output", sorted(DEFINITIONS))
def test_tables_are_recoverable_protected_and_retained(synthesized: Synthesized, output: str) -> None:
    table = _table(synthesized, output)
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    # A generated name per stack: the functions and the CLI are told it (env, outputs).
    assert "TableName" not in properties
    assert "StreamSpecification" not in properties


def test_tables_are_encrypted_with_their_own_rotated_retained_key(synthesized: Synthesized) -> None:
    key_ids = set()
    for output in DEFINITIONS:
        sse = _table(synthesized, output)["Properties"]["SSESpecification"]
        assert set(sse) == {"SSEEnabled", "SSEType", "KMSMasterKeyId"}
        assert (sse["SSEEnabled"], sse["SSEType"]) == (True, "KMS")
        key_ids.add(sse["KMSMasterKeyId"]["Fn::GetAtt"][0])
    (key_id,) = key_ids
    key = synthesized.resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert "metering tables" in key["Properties"]["Description"]
    # Not a key of the models: neither the bucket's nor the envelope key.
    assert synthesized.resources_of_type("AWS::S3::Bucket")
    for bucket in synthesized.resources_of_type("AWS::S3::Bucket").values():
        assert key_id not in json.dumps(bucket)


# --- the functions' settings --------------------------------------------------------------------


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_every_function_meters_in_the_tables(synthesized: Synthesized, domain: str) -> None:
    variables = synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
    assert variables["AIMASS_METERING"] == "dynamodb"
    assert variables["AIMASS_KEYS_TABLE"] == {"Ref": synthesized.output_ref("KeysTableName")}
    assert variables["AIMASS_USAGE_TABLE"] == {"Ref": synthesized.output_ref("UsageTableName")}
    assert variables["AIMASS_COUNTERS_TABLE"] == {"Ref": synthesized.output_ref("CountersTableName")}
    # The plans are the serving settings' own defaults, read back as the functions read them.
    plans = {name: Plan.model_validate(plan) for name, plan in json.loads(variables["AIMASS_PLANS"]).items()}
    assert plans == Settings().plans


def test_plans_from_context_reach_every_function(
    fake_synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the context gives them, with the batch price factor each plan takes by default.
    expected: dict[str, dict[str, float | None]] = {
        "pro": {"rate_per_s": 200.0, "burst": 400, "monthly_units": 500_000_000, "batch_price_factor": 0.5},
        "trial": {"rate_per_s": 0.5, "burst": 1, "monthly_units": 1000, "batch_price_factor": 0.5},
        "enterprise": {"rate_per_s": None, "burst": None, "monthly_units": 900_000_000, "batch_price_factor": 0.5},
    }
    for function in fake_synthesized.resources_of_type("AWS::Lambda::Function").values():
        plans = function["Properties"]["Environment"]["Variables"]["AIMASS_PLANS"]
        assert json.loads(plans) == expected
        # The serving settings accept the variable as it is.
        monkeypatch.setenv("AIMASS_PLANS", plans)
        assert Settings().plans == {name: Plan.model_validate(plan) for name, plan in expected.items()}


# --- grants -------------------------------------------------------------------------------------


def _metering_grants(synthesized: Synthesized, role_id: str) -> set[tuple[str, str, str]]:
    """(action, resource, condition) of every DynamoDB or metering-key permission of the role, one per action."""
    metering_key = _table(synthesized, "KeysTableName")["Properties"]["SSESpecification"]["KMSMasterKeyId"]
    grants = set()
    for statement in synthesized.role_statements(role_id):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert statement["Effect"] == "Allow"
        for action in actions:
            for resource in resources:
                if action.startswith("dynamodb:") or resource == metering_key:
                    grants.add((action, json.dumps(resource), json.dumps(statement.get("Condition"))))
    return grants


def _expected(synthesized: Synthesized, *grants: tuple[str, str]) -> set[tuple[str, str, str]]:
    """Grants named by (action, where): where is an output name (the table) or '<output>/index/<name>'."""
    expected = set()
    for action, where in grants:
        output, _, index = where.partition("/index/")
        arn: Any = {"Fn::GetAtt": [synthesized.output_ref(output), "Arn"]}
        if index:
            arn = {"Fn::Join": ["", [arn, f"/index/{index}"]]}
        expected.add((action, json.dumps(arn), "null"))
    metering_key = _table(synthesized, "KeysTableName")["Properties"]["SSESpecification"]["KMSMasterKeyId"]
    for action in sorted(KEY_USE):
        expected.add((action, json.dumps(metering_key), json.dumps(VIA_DYNAMODB)))
    return expected


SERVING = (
    ("dynamodb:GetItem", "KeysTableName"),  # authenticate a key
    ("dynamodb:GetItem", "CountersTableName"),  # what a tenant used this month
    ("dynamodb:UpdateItem", "CountersTableName"),  # charge it with a billed record
    ("dynamodb:PutItem", "UsageTableName"),  # one record per request
)
KEY_ADMIN = (
    ("dynamodb:PutItem", "KeysTableName"),  # create
    ("dynamodb:UpdateItem", "KeysTableName"),  # revoke, rotate
    ("dynamodb:Scan", "KeysTableName"),  # list every tenant's keys
    ("dynamodb:Query", "KeysTableName/index/tenant-index"),  # list one tenant's keys
    ("dynamodb:GetItem", "KeysTableName"),
)
USAGE_READ = (("dynamodb:Query", "UsageTableName/index/tenant-at-index"),)
# The front function's batches (/v1/batches) in the jobs table (test_infra_batch).
JOBS = (
    ("dynamodb:GetItem", "JobsTableName"),
    ("dynamodb:PutItem", "JobsTableName"),
    ("dynamodb:UpdateItem", "JobsTableName"),
    ("dynamodb:Query", "JobsTableName"),
    ("dynamodb:Query", "JobsTableName/index/batch-index"),
)


def _role_of(synthesized: Synthesized, function_id: str) -> str:
    role_id: str = synthesized.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def test_the_front_function_serves_the_admin_api_and_usage(synthesized: Synthesized) -> None:
    role = _role_of(synthesized, function_logical_id("text"))
    assert _metering_grants(synthesized, role) == _expected(
        synthesized, *SERVING, *KEY_ADMIN, *USAGE_READ, ("dynamodb:Scan", "UsageTableName"), *JOBS
    )


@pytest.mark.parametrize("domain", [domain for domain in DOCKERFILE_DOMAINS if domain != "text"])
def test_other_functions_only_meter(synthesized: Synthesized, domain: str) -> None:
    role = _role_of(synthesized, function_logical_id(domain))
    assert _metering_grants(synthesized, role) == _expected(synthesized, *SERVING)


def test_the_grants_follow_the_front_domain(fake_synthesized: Synthesized) -> None:
    toy, text = _role_of(fake_synthesized, "ToyFunction"), _role_of(fake_synthesized, "TextFunction")
    assert _metering_grants(fake_synthesized, toy) == _expected(
        fake_synthesized, *SERVING, *KEY_ADMIN, *USAGE_READ, ("dynamodb:Scan", "UsageTableName"), *JOBS
    )
    assert _metering_grants(fake_synthesized, text) == _expected(fake_synthesized, *SERVING)


def test_admin_role_manages_keys_and_reads_usage(synthesized: Synthesized) -> None:
    role_id = synthesized.output_ref("AdminRoleArn")
    role = synthesized.resources[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {
            "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
        },
    }
    assert "aimass keys" in role["Description"] and "aimass usage report" in role["Description"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert _metering_grants(synthesized, role_id) == _expected(synthesized, *KEY_ADMIN, *USAGE_READ)
    # Keys, their edge keys (test_infra_edge) and usage only: no model, no bucket, no function.
    assert {
        action
        for statement in synthesized.role_statements(role_id)
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    } <= {action for action, _ in (*KEY_ADMIN, *USAGE_READ)} | KEY_USE | EDGE_KEY_ACTIONS


def test_the_authorizer_only_checks_keys(synthesized: Synthesized) -> None:
    role = _role_of(synthesized, AUTHORIZER_LOGICAL_ID)
    assert _metering_grants(synthesized, role) == _expected(synthesized, ("dynamodb:GetItem", "KeysTableName"))


def test_no_other_role_touches_the_tables(synthesized: Synthesized) -> None:
    allowed = {synthesized.output_ref("AdminRoleArn"), _role_of(synthesized, AUTHORIZER_LOGICAL_ID)} | {
        _role_of(synthesized, function_logical_id(domain)) for domain in DOCKERFILE_DOMAINS
    }
    # The batch workers and the batch events function keep batches and bill them (test_infra_batch).
    allowed |= synthesized.batch_role_ids()
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        text = json.dumps(policy["Properties"]["PolicyDocument"])
        if "dynamodb" in text:
            assert {role["Ref"] for role in policy["Properties"]["Roles"]} <= allowed


def test_no_wildcard_actions_or_index_wildcards(synthesized: Synthesized) -> None:
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any("*" in action for action in actions), statement
            assert "/index/*" not in json.dumps(statement["Resource"]), statement


# --- API Gateway usage plans --------------------------------------------------------------------


def _usage_plans(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    plans = {}
    for plan in synthesized.resources_of_type("AWS::ApiGateway::UsagePlan").values():
        properties = plan["Properties"]
        plans[properties["UsagePlanName"]] = properties
    return plans


def _stage_id(synthesized: Synthesized) -> str:
    (stage_id,) = synthesized.resources_of_type("AWS::ApiGateway::Stage")
    return stage_id


def test_one_usage_plan_per_plan_throttled_on_the_stage(synthesized: Synthesized) -> None:
    plans = _usage_plans(synthesized)
    assert set(plans) == {f"aimass-dev-{name}" for name in DEFAULT_PLANS}
    (api_id,) = synthesized.resources_of_type("AWS::ApiGateway::RestApi")
    for name, plan in DEFAULT_PLANS.items():
        properties = plans[f"aimass-dev-{name}"]
        assert properties["Throttle"] == {"RateLimit": plan.rate_per_s, "BurstLimit": plan.burst}
        assert [(stage["ApiId"], stage["Stage"]) for stage in properties["ApiStages"]] == [
            ({"Ref": api_id}, {"Ref": _stage_id(synthesized)})
        ]
        # Units are not requests: no request quota at the edge.
        assert "Quota" not in properties
        # The runtime finds a plan's usage plan by this tag when it gives a key its edge key.
        assert {"Key": PLAN_TAG, "Value": name} in properties["Tags"]
        assert "per key, at the edge and in the functions" in properties["Description"]
    # The edge keys are the runtime's (one per AI Mass key, made when the key is): none in the template.
    assert not synthesized.resources_of_type("AWS::ApiGateway::ApiKey")
    assert not synthesized.resources_of_type("AWS::ApiGateway::UsagePlanKey")


def test_usage_plans_follow_the_context(fake_synthesized: Synthesized) -> None:
    plans = _usage_plans(fake_synthesized)
    assert {name: plan.get("Throttle") for name, plan in plans.items()} == {
        "aimass-prod-trial": {"RateLimit": 0.5, "BurstLimit": 1},
        "aimass-prod-pro": {"RateLimit": 200, "BurstLimit": 400},
        # A plan without a rate: its keys meet the stage's throttle alone.
        "aimass-prod-enterprise": None,
    }
    assert "no rate limit, 900000000 units a month" in plans["aimass-prod-enterprise"]["Description"]


# --- outputs ------------------------------------------------------------------------------------


def test_metering_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    for name in DEFINITIONS:
        assert set(outputs[name]["Value"]) == {"Ref"}
    assert len({synthesized.output_ref(name) for name in DEFINITIONS}) == 3
    assert outputs["AdminRoleArn"]["Value"] == {"Fn::GetAtt": [synthesized.output_ref("AdminRoleArn"), "Arn"]}
    assert synthesized.resources[synthesized.output_ref("AdminRoleArn")]["Type"] == "AWS::IAM::Role"
