"""KMS envelope encryption over real HTTP against moto's server: seal, unseal, and KMS refusals reported."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from typer.testing import CliRunner

import aimass_tools.cli.encrypt  # noqa: F401  (registers `aimass models encrypt`)
from aimass.errors import ModelLoadError
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import MANIFEST_FILE, read_manifest
from aimass.store.sealing.keys import KmsKeyProvider
from aimass.store.sealing.seal import seal_version
from aimass.store.sealing.unseal import EnvelopeUnsealer, unsealer_from_settings
from aimass_tools.cli import app
from tests.moto_server import REGION, MotoServer
from tests.ports import free_port
from tests.tiny_models import build_tiny_text

NAME = "kms-text"


@pytest.fixture
def kms_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The process's AWS credentials and region are moto's (the serving path builds its own KMS client)."""
    for variable, value in moto.environment().items():
        monkeypatch.setenv(variable, value)
    return moto


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return build_tiny_text(tmp_path / "built", NAME, "1")


def new_key(moto: MotoServer, alias: str | None = None) -> str:
    kms = moto.client("kms")
    arn: str = kms.create_key(Description="aimass models")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def read(directory: Path, unsealer: EnvelopeUnsealer, relative: str = "model.onnx") -> bytes:
    return ModelArtifact(read_manifest(directory), directory, unsealer).read(relative)


def test_a_version_sealed_under_a_kms_alias_names_the_key_and_reads_back(
    kms_env: MotoServer, source: Path, tmp_path: Path
) -> None:
    arn = new_key(kms_env, alias="alias/aimass-models")
    provider = KmsKeyProvider(kms_env.client("kms"), "alias/aimass-models")
    manifest = seal_version(source, tmp_path / "sealed", provider)
    assert manifest.encryption is not None
    # The key itself, not the alias, which may later point elsewhere.
    assert (manifest.encryption.key_provider, manifest.encryption.key_id) == ("kms", arn)
    # A serving process with no KMS key configured builds its client for the first KMS-sealed version.
    served = unsealer_from_settings(Settings(aws_endpoint_url=kms_env.endpoint, kms_key_id=None))
    assert read(tmp_path / "sealed", served) == (source / "model.onnx").read_bytes()
    assert read(tmp_path / "sealed", served, "tokenizer.json") == (source / "tokenizer.json").read_bytes()


def test_another_kms_key_is_refused_with_the_kms_reason(kms_env: MotoServer, source: Path, tmp_path: Path) -> None:
    seal_version(source, tmp_path / "sealed", KmsKeyProvider(kms_env.client("kms"), new_key(kms_env)))
    other = new_key(kms_env)
    manifest = tmp_path / "sealed" / MANIFEST_FILE
    document = json.loads(manifest.read_text())
    document["encryption"]["key_id"] = other
    manifest.write_text(json.dumps(document))
    served = unsealer_from_settings(Settings(aws_endpoint_url=kms_env.endpoint))
    with pytest.raises(ModelLoadError) as refused:
        read(tmp_path / "sealed", served)
    assert refused.value.message.startswith(
        f"model '{NAME}' version 1: KMS key '{other}' refused to unwrap the data key: AccessDeniedException: "
    )


def test_a_key_that_no_longer_exists_is_refused_with_the_kms_reason(
    kms_env: MotoServer, source: Path, tmp_path: Path
) -> None:
    arn = new_key(kms_env)
    seal_version(source, tmp_path / "sealed", KmsKeyProvider(kms_env.client("kms"), arn))
    kms_env.reset()  # every key gone
    served = unsealer_from_settings(Settings(aws_endpoint_url=kms_env.endpoint))
    with pytest.raises(ModelLoadError, match=rf"KMS key '{arn}' refused to unwrap the data key: NotFoundException: "):
        read(tmp_path / "sealed", served)


def test_sealing_under_an_unknown_key_writes_nothing(kms_env: MotoServer, source: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as refused:
        seal_version(source, tmp_path / "sealed", KmsKeyProvider(kms_env.client("kms"), "alias/missing"))
    assert refused.value.message.startswith("KMS key 'alias/missing' refused to wrap the data key: NotFoundException: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]


def test_an_unreachable_kms_is_reported_not_dumped(source: Path, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    client = boto3.client(
        "kms",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    key = "arn:aws:kms:us-east-1:123456789012:key/unreachable"
    with pytest.raises(ModelLoadError) as refused:
        KmsKeyProvider(client, key).unwrap(b"blob", key)
    assert refused.value.message.startswith(
        f"KMS key '{key}': KMS did not answer a request to unwrap the data key: EndpointConnectionError: "
    )
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_the_encrypt_command_seals_under_kms(kms_env: MotoServer, source: Path, tmp_path: Path) -> None:
    arn = new_key(kms_env)
    environment = {"AIMASS_AWS_ENDPOINT_URL": kms_env.endpoint, "AIMASS_MASTER_KEY_FILE": str(tmp_path / "no.key")}
    result = CliRunner().invoke(
        app, ["models", "encrypt", str(source), str(tmp_path / "sealed"), "--kms-key-id", arn], env=environment
    )
    assert result.exit_code == 0, result.output
    assert f"data key wrapped by kms key {arn}" in result.output
    assert not (tmp_path / "no.key").exists()  # no local master key is made for a KMS sealing
    served = unsealer_from_settings(Settings(aws_endpoint_url=kms_env.endpoint))
    assert read(tmp_path / "sealed", served) == (source / "model.onnx").read_bytes()
