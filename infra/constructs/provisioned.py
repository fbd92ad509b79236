"""Provisioned concurrency: a function's published alias with environments kept initialised, and their scaling."""

from __future__ import annotations

from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import ProvisionedConcurrencyConfig

# The alias API Gateway invokes when a function has provisioned environments. Provisioned concurrency lives on a
# published version or an alias, never on $LATEST; the alias moves to each deploy's new version, and Lambda
# initialises the new version's environments before the alias takes traffic to it.
LIVE_ALIAS = "live"


def provisioned_alias(
    scope: Construct, function: lambda_.Function, config: ProvisionedConcurrencyConfig
) -> lambda_.Alias:
    """The alias ``live`` on the function's current version, with ``config.min`` environments and its scaling."""
    alias = lambda_.Alias(
        scope,
        "Live",
        alias_name=LIVE_ALIAS,
        version=function.current_version,
        provisioned_concurrent_executions=config.min,
        description="the version API Gateway invokes, with provisioned environments",
    )
    if config.scales:
        scaling = alias.add_auto_scaling(min_capacity=config.min, max_capacity=config.max or config.min)
        # Target tracking on ProvisionedConcurrencyUtilization (the busy share of the provisioned environments):
        # adds environments before requests spill over to cold on-demand ones, removes them when idle.
        scaling.scale_on_utilization(utilization_target=config.target_utilization)
        for number, schedule in enumerate(config.schedules):
            scaling.scale_on_schedule(
                f"Schedule{number}",
                schedule=appscaling.Schedule.expression(schedule.cron),
                min_capacity=schedule.min,
                max_capacity=schedule.max,
            )
    return alias
