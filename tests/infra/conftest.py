"""Synthesizes the CDK app once per test session (offline, no Docker) for every infra test."""

from __future__ import annotations

import os

import pytest

# Before anything imports aws_cdk: jsii warns on every start under Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.infra.infra_synth import Synthesized, fake_checkout, synthesize

# Context for the made-up checkout: another stage, another front domain, the text function resized through
# aimass:functionOverrides, a shorter alias check, other plans, another latency alarm and a shorter files expiry
# (as `cdk synth -c` would pass them: strings).
FAKE_CONTEXT = {
    "aimass:stage": "prod",
    "aimass:frontDomain": "toy",
    "aimass:functionOverrides": '{"text": {"memory_mb": 10240, "architecture": "arm64", "reserved_concurrency": 20,'
    ' "provisioned_concurrency": {"min": 2, "max": 10, "schedules":'
    ' [{"cron": "cron(0 7 ? * MON-FRI *)", "min": 4, "max": 16}, {"cron": "cron(0 19 ? * MON-FRI *)", "min": 2,'
    ' "max": 10}]}}}',
    "aimass:aliasCheckSeconds": "0.5",
    "aimass:plans": '{"trial": {"rate_per_s": 0.5, "burst": 1, "monthly_units": 1000},'
    ' "pro": {"rate_per_s": 200, "burst": 400, "monthly_units": 500000000},'
    ' "enterprise": {"rate_per_s": null, "burst": null, "monthly_units": 900000000}}',
    "aimass:latencyAlarmMs": "2500",
    "aimass:filesExpireDays": "7",
}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default app (cdk.json context, this checkout), synthesized once into a temporary cloud assembly."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def fake_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A small made-up checkout (text + toy domains, no model built) with FAKE_CONTEXT, synthesized once."""
    repo = fake_checkout(tmp_path_factory.mktemp("repo"))
    return synthesize(tmp_path_factory.mktemp("cdk.out-fake"), FAKE_CONTEXT, repo_root=repo)


@pytest.fixture(scope="session")
def edge_off_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default app with the edge authorizer off (``-c aimass:edgeAuthorizer=false``), synthesized once."""
    return synthesize(tmp_path_factory.mktemp("cdk.out-edge-off"), {"aimass:edgeAuthorizer": "false"})
