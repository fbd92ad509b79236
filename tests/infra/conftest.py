"""Synthesizes the CDK app once per test session (offline, no Docker) for every infra test."""

from __future__ import annotations

import os

import pytest

# Before anything imports aws_cdk: jsii warns on every start under Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.infra.infra_synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default app (cdk.json context), synthesized once into a temporary cloud assembly."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
