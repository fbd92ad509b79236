"""One factory makes every AWS client (``aimass.aws``), under one stated timeout and retry policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aimass import aws
from aimass.contract import API_INTEGRATION_TIMEOUT_S
from aimass.http.peers import peers_from_settings
from aimass.metering.edge_keys import open_edge_keys
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import PeerSpec, Settings
from aimass.store.factory import open_store
from aimass.store.sealing.keys import kms_client

LAYERS = Path(__file__).resolve().parents[2] / "layers" / "aimass"
LOCAL = "http://127.0.0.1:9"  # never called: making a client sends nothing


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_a_client_has_the_stated_policy() -> None:
    config = aws.client("dynamodb", LOCAL).meta.config
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT_S, aws.READ_TIMEOUT_S)
    assert config.retries == {"mode": "standard", "total_max_attempts": aws.MAX_ATTEMPTS}


def test_one_call_gives_up_before_api_gateway_does() -> None:
    assert aws.worst_case_s() < API_INTEGRATION_TIMEOUT_S
    # A peer call waits the setting's read timeout instead; its default keeps within the same bound.
    assert aws.worst_case_s(Settings().peer_timeout_s) < API_INTEGRATION_TIMEOUT_S


def test_only_the_model_store_and_peer_calls_wait_longer_for_an_answer() -> None:
    config = aws.client("s3", LOCAL, read_timeout_s=aws.MODEL_STORE_READ_TIMEOUT_S).meta.config
    assert config.read_timeout == aws.MODEL_STORE_READ_TIMEOUT_S
    assert config.connect_timeout == aws.CONNECT_TIMEOUT_S


def test_every_composition_root_makes_its_client_with_the_factory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made: list[tuple[str, str | None, float]] = []

    def record(service: str, endpoint_url: str | None = None, *, read_timeout_s: float = aws.READ_TIMEOUT_S) -> Any:
        made.append((service, endpoint_url, read_timeout_s))
        return object()

    monkeypatch.setattr(aws, "client", record)
    settings = Settings(
        metering="dynamodb",
        aws_endpoint_url=LOCAL,
        model_bucket="models",
        model_store=tmp_path / "absent",
        edge_api_id="a1b2c3",
        kms_key_id="alias/models",
    )
    open_key_store(settings)
    open_usage(settings)
    open_edge_keys(settings)
    open_store(settings)
    peers_from_settings((PeerSpec(domain="vision", function="aimass-vision"),), ttl_s=1.0, timeout_s=7.0)
    kms_client(settings.aws_endpoint_url)  # what the unsealer calls when a KMS-sealed version is first opened
    assert made == [
        ("dynamodb", LOCAL, aws.READ_TIMEOUT_S),
        ("dynamodb", LOCAL, aws.READ_TIMEOUT_S),
        ("apigateway", LOCAL, aws.READ_TIMEOUT_S),
        ("s3", LOCAL, aws.MODEL_STORE_READ_TIMEOUT_S),
        ("lambda", None, 7.0),
        ("kms", LOCAL, aws.READ_TIMEOUT_S),
    ]


def test_no_module_of_the_core_makes_a_client_of_its_own() -> None:
    makers = sorted(
        str(path.relative_to(LAYERS))
        for path in LAYERS.rglob("*.py")
        if any(maker in path.read_text(encoding="utf-8") for maker in ("boto3.client(", "botocore.config"))
    )
    assert makers == ["aws.py"]


def test_importing_the_factory_or_the_contract_imports_no_aws_library() -> None:
    # A cold start pays for boto3 only where a client is made.
    code = "import sys, aimass.aws, aimass.contract; print(sorted({'boto3', 'botocore', 'pydantic'} & {*sys.modules}))"
    found = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert found.strip() == "[]"
