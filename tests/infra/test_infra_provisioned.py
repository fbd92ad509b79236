"""Provisioned concurrency from function.toml or CDK context: the alias API Gateway invokes, and its scaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import FunctionConfig
from tests.infra.infra_synth import Synthesized

SIZED = {"memory_mb": 1769, "timeout_s": 10, "architecture": "x86_64"}


def _alias(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (alias_id, alias), *others = synthesized.resources_of_type("AWS::Lambda::Alias").items()
    assert not others
    return alias_id, alias["Properties"]


def test_the_context_provisions_environments_on_an_alias_api_gateway_invokes(fake_synthesized: Synthesized) -> None:
    alias_id, alias = _alias(fake_synthesized)
    assert alias["FunctionName"] == {"Ref": "TextFunction"} and alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    # The alias points at the version published from this deploy's code and configuration.
    (version_id,) = fake_synthesized.resources_of_type("AWS::Lambda::Version")
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}

    # Every text route invokes the alias (its provisioned environments); the toy function, without any, itself.
    routed = fake_synthesized.routed()
    for key, method in fake_synthesized.api_methods().items():
        uri = json.dumps(method["Properties"]["Integration"]["Uri"])
        if routed[key] == "TextFunction":
            assert {"Ref": alias_id} in method["Properties"]["Integration"]["Uri"]["Fn::Join"][1], uri
        else:
            assert "Alias" not in uri and alias_id not in uri
    permissions = [
        permission["Properties"]["FunctionName"]
        for permission in fake_synthesized.resources_of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert {"Ref": alias_id} in permissions


def test_the_front_function_asks_a_provisioned_peer_through_its_alias(fake_synthesized: Synthesized) -> None:
    alias_id, _ = _alias(fake_synthesized)
    front = fake_synthesized.resources["ToyFunction"]["Properties"]["Environment"]["Variables"]
    parts = front["AIMASS_PEERS"]["Fn::Join"][1]
    (at,) = [index for index, part in enumerate(parts) if isinstance(part, dict)]
    # The alias's qualified name, <function name>:live (the name is the seventh field of the alias's ARN).
    assert parts[at] == {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": alias_id}]}]}
    assert parts[at + 1].startswith(':live"') and '"domain": "text"' in parts[at - 1]
    statements = json.dumps(fake_synthesized.role_statements(_role_of(fake_synthesized, "ToyFunction")))
    assert json.dumps({"Ref": alias_id}) in statements


def _role_of(synthesized: Synthesized, function_id: str) -> str:
    role: str = synthesized.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def test_provisioned_environments_scale_on_utilization_and_by_schedule(fake_synthesized: Synthesized) -> None:
    alias_id, _ = _alias(fake_synthesized)
    (target_id, target), *others = fake_synthesized.resources_of_type(
        "AWS::ApplicationAutoScaling::ScalableTarget"
    ).items()
    assert not others
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (2, 10)
    assert {"Ref": alias_id} in json.loads(json.dumps(properties["ResourceId"]))["Fn::Join"][1][1]["Fn::Select"][1][
        "Fn::Split"
    ][1:]
    assert [
        (
            action["Schedule"],
            action["ScalableTargetAction"]["MinCapacity"],
            action["ScalableTargetAction"]["MaxCapacity"],
        )
        for action in properties["ScheduledActions"]
    ] == [("cron(0 7 ? * MON-FRI *)", 4, 16), ("cron(0 19 ? * MON-FRI *)", 2, 10)]
    (policy,) = fake_synthesized.resources_of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    assert tracking == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"},
        "TargetValue": 0.7,
    }


def test_without_provisioned_concurrency_functions_are_invoked_directly(synthesized: Synthesized) -> None:
    assert not synthesized.resources_of_type("AWS::Lambda::Alias")
    assert not synthesized.resources_of_type("AWS::ApplicationAutoScaling::ScalableTarget")


@pytest.mark.parametrize(
    ("provisioned", "message"),
    [
        ({"min": 0}, "greater than or equal to 1"),
        ({"min": 3, "max": 2}, "max (2) is below min (3)"),
        ({"min": 1, "target_utilization": 1.0}, "less than 1"),
        ({"min": 1, "schedules": [{"cron": "0 7 * * *", "min": 1, "max": 2}]}, "a schedule is 'cron("),
        ({"min": 1, "schedules": [{"cron": "cron(0 7 ? * MON-FRI *)", "min": 5, "max": 2}]}, "max (2) is below min"),
        ({"min": 1, "warm": 3}, "Extra inputs are not permitted"),
        ({"min": 1, "schedules": [{"cron": "cron(0 7 ? * MON-FRI *)", "min": 2, "max": 4}]}, "come as a cycle"),
    ],
)
def test_bad_provisioned_concurrency_is_refused(provisioned: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FunctionConfig.model_validate({**SIZED, "provisioned_concurrency": provisioned})


def test_provisioned_environments_must_fit_the_reserved_concurrency() -> None:
    schedules = [{"cron": "cron(0 7 ? * * *)", "min": 2, "max": 12}, {"cron": "cron(0 19 ? * * *)", "min": 2, "max": 4}]
    provisioned = {"min": 2, "max": 4, "schedules": schedules}
    with pytest.raises(ValueError, match=r"provisioned concurrency of up to 12 does not fit the reserved concurrency"):
        FunctionConfig.model_validate({**SIZED, "reserved_concurrency": 10, "provisioned_concurrency": provisioned})
    fits = FunctionConfig.model_validate({**SIZED, "reserved_concurrency": 12, "provisioned_concurrency": provisioned})
    assert fits.provisioned_concurrency is not None and fits.provisioned_concurrency.ceiling == 12
