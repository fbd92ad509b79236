"""Envelope encryption: a sealed version reads back, in memory only, and every tampering or key mix-up is
refused with its reason (tampered / wrong key / no key)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Literal

import boto3
import numpy as np
import onnxruntime as ort
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

import aimass_tools.cli.encrypt  # noqa: F401  (registers `aimass models encrypt`)
from aimass.errors import ModelLoadError
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import MANIFEST_FILE, ModelManifest, read_manifest, write_manifest
from aimass.store.sealing.keys import KeyProvider, KmsKeyProvider, LocalKeyProvider
from aimass.store.sealing.seal import seal_version
from aimass.store.sealing.unseal import EnvelopeUnsealer, unsealer_from_settings
from aimass_tools.cli import app
from tests.tiny_models import build_tiny_text

NAME = "sealed-text"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return build_tiny_text(tmp_path / "built", NAME, "1")


@pytest.fixture
def master(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider.create_or_open(tmp_path / "keys" / "master.key")


@pytest.fixture
def sealed(source: Path, master: LocalKeyProvider, tmp_path: Path) -> Path:
    seal_version(source, tmp_path / "sealed", master)
    return tmp_path / "sealed"


def artifact(directory: Path, unsealer: EnvelopeUnsealer | None) -> ModelArtifact:
    return ModelArtifact(read_manifest(directory), directory, unsealer)


def rewrite(directory: Path, **changes: object) -> None:
    """Change the manifest as someone with write access to the store could."""
    document = json.loads((directory / MANIFEST_FILE).read_text())
    document.update(changes)
    (directory / MANIFEST_FILE).write_text(json.dumps(document))


def embed(model: bytes) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    ids = np.array([[2, 5, 7, 0], [3, 4, 1, 9]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=np.int64)
    (output,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
    return np.asarray(output)


def test_a_sealed_version_reads_back_and_answers_like_the_plaintext(
    source: Path, sealed: Path, master: LocalKeyProvider
) -> None:
    plain = read_manifest(source)
    manifest = read_manifest(sealed)
    assert manifest.encryption is not None
    assert (manifest.encryption.key_provider, manifest.encryption.key_id) == ("local", master.key_id)
    assert manifest.model_dump(exclude={"files", "encryption"}) == plain.model_dump(exclude={"files", "encryption"})
    for before, after, record in zip(plain.files, manifest.files, manifest.encryption.sealed, strict=True):
        # The listed digests are the stored ciphertexts'; the sealing record keeps the plaintext's.
        assert after.sha256 == hashlib.sha256((sealed / after.path).read_bytes()).hexdigest() != before.sha256
        assert after.size == before.size + 16
        assert (record.plain_sha256, record.plain_size) == (before.sha256, before.size)
    unsealed = artifact(sealed, EnvelopeUnsealer({"local": master}))
    model = unsealed.read("model.onnx")
    assert model == (source / "model.onnx").read_bytes()
    assert unsealed.read("tokenizer.json") == (source / "tokenizer.json").read_bytes()
    np.testing.assert_array_equal(embed(model), embed((source / "model.onnx").read_bytes()))


def test_each_version_has_its_own_data_key_unwrapped_once(
    source: Path, sealed: Path, master: LocalKeyProvider, tmp_path: Path
) -> None:
    class Counting:
        name: Literal["local"] = "local"
        key_id = master.key_id
        calls = 0

        def wrap(self, data_key: bytes) -> bytes:
            return master.wrap(data_key)

        def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
            Counting.calls += 1
            return master.unwrap(wrapped, key_id)

    counting: KeyProvider = Counting()
    again = tmp_path / "again"
    seal_version(source, again, master)
    first, second = read_manifest(sealed).encryption, read_manifest(again).encryption
    assert first is not None and second is not None and first.wrapped_key != second.wrapped_key
    unsealer = EnvelopeUnsealer({"local": counting})
    for directory in (sealed, again, sealed, again):
        artifact(directory, unsealer).read("model.onnx")
        artifact(directory, unsealer).read("tokenizer.json")
    assert Counting.calls == 2


def test_a_changed_ciphertext_byte_is_refused_as_tampered(sealed: Path, master: LocalKeyProvider) -> None:
    graph = sealed / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[100] ^= 0x01
    graph.write_bytes(bytes(data))
    unsealer = EnvelopeUnsealer({"local": master})
    # The store's own digest check catches a change the manifest does not vouch for ...
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        artifact(sealed, unsealer).read("model.onnx")
    # ... and authentication one whose digests were rewritten to match.
    manifest = read_manifest(sealed)
    files = [
        f | {"sha256": hashlib.sha256(data).hexdigest()} if f["path"] == "model.onnx" else f
        for f in manifest.model_dump()["files"]
    ]
    rewrite(sealed, files=files)
    with pytest.raises(ModelLoadError, match=r"file 'model\.onnx' is tampered: its ciphertext fails AES-GCM"):
        artifact(sealed, unsealer).read("model.onnx")


def transplant(origin: Path, first: str, destination: Path, second: str) -> None:
    """Put ``first``'s ciphertext from ``origin`` in the place of ``second`` in ``destination``, with its listed
    digest, size and nonce: only the associated data or the data key can tell."""
    donor, target = read_manifest(origin).model_dump(), read_manifest(destination).model_dump()
    file = next(f for f in donor["files"] if f["path"] == first)
    record = next(s for s in donor["encryption"]["sealed"] if s["path"] == first)
    (destination / second).write_bytes((origin / first).read_bytes())
    target["files"] = [
        f | {"sha256": file["sha256"], "size": file["size"]} if f["path"] == second else f for f in target["files"]
    ]
    target["encryption"]["sealed"] = [
        s | {k: record[k] for k in ("nonce", "plain_sha256", "plain_size")} if s["path"] == second else s
        for s in target["encryption"]["sealed"]
    ]
    write_manifest(destination, ModelManifest.model_validate(target))


def test_two_sealed_files_swapped_are_refused(sealed: Path, master: LocalKeyProvider, tmp_path: Path) -> None:
    original = shutil.copytree(sealed, tmp_path / "original")
    transplant(original, "tokenizer.json", sealed, "model.onnx")
    transplant(original, "model.onnx", sealed, "tokenizer.json")
    unsealer = EnvelopeUnsealer({"local": master})
    for path in ("model.onnx", "tokenizer.json"):
        with pytest.raises(ModelLoadError, match=rf"file '{path}' is tampered: its ciphertext fails AES-GCM"):
            artifact(sealed, unsealer).read(path)


def test_a_file_from_another_sealed_version_is_refused(
    source: Path, sealed: Path, master: LocalKeyProvider, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    seal_version(source, other, master)  # the very same model and master key: only the data key differs
    transplant(other, "model.onnx", sealed, "model.onnx")
    with pytest.raises(ModelLoadError, match=r"file 'model\.onnx' is tampered"):
        artifact(sealed, EnvelopeUnsealer({"local": master})).read("model.onnx")


def test_a_published_version_number_does_not_matter(sealed: Path, master: LocalKeyProvider) -> None:
    # Publishing gives the sealed folder its number after sealing.
    rewrite(sealed, version="7")
    assert artifact(sealed, EnvelopeUnsealer({"local": master})).read("model.onnx")[:2] == b"\x08\x08"


def test_a_wrong_master_key_is_refused_naming_both_keys(sealed: Path, master: LocalKeyProvider, tmp_path: Path) -> None:
    other = LocalKeyProvider.create_or_open(tmp_path / "elsewhere" / "master.key")
    with pytest.raises(ModelLoadError) as refused:
        artifact(sealed, EnvelopeUnsealer({"local": other})).read("model.onnx")
    assert refused.value.message == (
        f"model '{NAME}' version 1: wrong key: sealed under local master key {master.key_id}, but {other.path} "
        f"is master key {other.key_id}; point AIMASS_MASTER_KEY_FILE at the key it was sealed with"
    )


def test_an_altered_wrapped_key_is_refused(sealed: Path, master: LocalKeyProvider) -> None:
    encryption = read_manifest(sealed).model_dump()["encryption"]
    rewrite(sealed, encryption=encryption | {"wrapped_key": "AAAA" + encryption["wrapped_key"][4:]})
    with pytest.raises(ModelLoadError, match=r"wrong key: local master key \w+ .* does not unwrap the data key"):
        artifact(sealed, EnvelopeUnsealer({"local": master})).read("model.onnx")


def test_a_version_without_its_provider_is_refused_as_no_key(sealed: Path, master: LocalKeyProvider) -> None:
    with pytest.raises(ModelLoadError, match=rf"no key: it is sealed under local key {master.key_id}, and this"):
        artifact(sealed, EnvelopeUnsealer({})).read("model.onnx")
    # The store refuses before decrypting anything when no unsealer is configured at all.
    with pytest.raises(ModelLoadError) as refused:
        artifact(sealed, None).read("model.onnx")
    assert refused.value.message == (
        f"model '{NAME}' version 1 is encrypted (local key) and this process has no key provider configured"
    )


def test_the_serving_unsealer_reads_the_configured_master_key_and_never_creates_one(
    sealed: Path, master: LocalKeyProvider, tmp_path: Path
) -> None:
    served = unsealer_from_settings(Settings(master_key_file=master.path))
    assert artifact(sealed, served).read("tokenizer.json").startswith(b"{")
    missing = tmp_path / "nowhere" / "master.key"
    with pytest.raises(ModelLoadError, match=rf"no key: there is no local master key file at {missing}"):
        artifact(sealed, unsealer_from_settings(Settings(master_key_file=missing))).read("model.onnx")
    assert not missing.parent.exists()


def test_a_master_key_is_created_owner_only_and_kept(master: LocalKeyProvider) -> None:
    info = master.path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_size == 32
    assert stat.S_IMODE(master.path.parent.stat().st_mode) == 0o700
    assert master.key_id == hashlib.sha256(master.path.read_bytes()).hexdigest()[:16]
    assert LocalKeyProvider.create_or_open(master.path).key_id == master.key_id


def test_a_master_key_open_to_others_or_of_the_wrong_size_is_refused(master: LocalKeyProvider) -> None:
    master.path.chmod(0o644)
    with pytest.raises(ModelLoadError) as refused:
        LocalKeyProvider(master.path)
    assert refused.value.message == (
        f"{master.path}: master key file has mode 0644, open to group or others; "
        f"make it owner-only (chmod 600 {master.path})"
    )
    master.path.chmod(0o600)
    master.path.write_bytes(b"\x00" * 31)
    with pytest.raises(ModelLoadError, match="a master key is 32 bytes, this file holds 31"):
        LocalKeyProvider.create_or_open(master.path)


def test_sealing_refuses_a_sealed_source_a_used_target_and_a_changed_file(
    source: Path, sealed: Path, master: LocalKeyProvider, tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match=rf"model '{NAME}' version 1 is already sealed"):
        seal_version(sealed, tmp_path / "twice", master)
    with pytest.raises(ModelLoadError, match="already exists and is not empty; seal into a new folder"):
        seal_version(source, sealed, master)
    graph = source / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        seal_version(source, tmp_path / "never", master)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "keys", "sealed"]  # nothing half-written


def files_holding(needle: bytes, root: Path, *, skip: Path, recursive: bool = True, since: float = 0) -> list[Path]:
    found = []
    for directory, folders, names in os.walk(root):
        if not recursive:
            folders.clear()
        for path in (Path(directory, name) for name in names):
            try:
                if skip in path.parents or not path.is_file() or path.stat().st_mtime < since:
                    continue
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:  # another process's file, gone or unreadable
                continue
    return found


def test_no_plaintext_is_ever_written(
    master: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a model whose graph holds a byte pattern found nowhere else (a seed of its own for its random
    # table), and a process whose temporary files and working directory are inside this test's folder
    source = build_tiny_text(tmp_path / "built", NAME, "1", seed=int.from_bytes(os.urandom(4)))
    graph = (source / "model.onnx").read_bytes()
    needle = graph[len(graph) // 2 : len(graph) // 2 + 64]
    assert graph.count(needle) == 1
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.chdir(tmp_path)
    started = time.time() - 1
    # WHEN the version is sealed, then read and run
    target = tmp_path / "sealed"
    seal_version(source, target, master)
    model = artifact(target, EnvelopeUnsealer({"local": master})).read("model.onnx")
    assert model == graph and embed(model).shape == (2, 8)
    # THEN no file but the source holds any of the plaintext graph
    assert files_holding(needle, tmp_path, skip=tmp_path / "nothing") == [source / "model.onnx"]
    assert files_holding(needle, tmp_path, skip=source) == []
    assert files_holding(needle, Path("/tmp"), skip=source, recursive=False, since=started) == []


def test_kms_errors_name_the_key_and_the_code_without_a_traceback() -> None:
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    key = "arn:aws:kms:us-east-1:123456789012:key/disabled"
    with Stubber(client) as stub:
        stub.add_client_error("decrypt", service_error_code="DisabledException", service_message=f"{key} is disabled.")
        with pytest.raises(ModelLoadError) as refused:
            KmsKeyProvider(client, key).unwrap(b"blob", key)
    assert refused.value.message == (
        f"KMS key '{key}' refused to unwrap the data key: DisabledException: {key} is disabled."
    )
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_the_encrypt_command_seals_with_a_new_master_key(source: Path, tmp_path: Path) -> None:
    key = tmp_path / "home" / ".aimass" / "master.key"
    runner = CliRunner()
    environment = {"AIMASS_MASTER_KEY_FILE": str(key), "AIMASS_KMS_KEY_ID": None}
    first = runner.invoke(app, ["models", "encrypt", str(source), str(tmp_path / "a")], env=environment)
    assert first.exit_code == 0, first.output
    assert f"created master key {key} (owner-only" in first.output
    assert f"sealed {NAME} v1: 2 files" in first.output and f"aimass models publish {tmp_path / 'a'}" in first.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    second = runner.invoke(app, ["models", "encrypt", str(source), str(tmp_path / "b")], env=environment)
    assert second.exit_code == 0 and "created" not in second.output
    unsealer = EnvelopeUnsealer({"local": LocalKeyProvider(key)})
    for sealed in (tmp_path / "a", tmp_path / "b"):
        assert artifact(sealed, unsealer).read("model.onnx") == (source / "model.onnx").read_bytes()
    refused = runner.invoke(app, ["models", "encrypt", str(source), str(tmp_path / "a")], env=environment)
    assert refused.exit_code == 1 and "already exists and is not empty" in refused.stderr
