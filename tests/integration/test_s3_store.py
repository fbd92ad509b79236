"""The S3 model store against moto's server over real HTTP: publish, list, fetch through the checksum cache, and
read sealed versions back through the serving unsealer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import aimass_tools.cli.encrypt  # noqa: F401  (registers `aimass models encrypt`)
from aimass.errors import DecryptionError, InvalidInput, ModelLoadError, NotFound
from aimass.http.app import build_app
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.aliases import ModelAliases, promote
from aimass.store.cache import DownloadCache
from aimass.store.factory import open_store
from aimass.store.local import LocalModelStore
from aimass.store.manifest import MANIFEST_FILE, read_manifest
from aimass.store.s3 import LEASE_FILE, S3ModelStore
from aimass.store.sealing.keys import LocalKeyProvider
from aimass.store.sealing.unseal import unsealer_from_settings
from aimass_tools.cli import app as cli
from tests.moto_server import MotoServer
from tests.tiny_models import TINY_TEXT, build_tiny_text, reference_embedding

BUCKET = "aimass-models"
PREFIX = "models/"


class Calls:
    """Every S3 operation a client sends, with its key, seen through botocore's own event hooks."""

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[str, str]] = []
        client.meta.events.register("provide-client-params.s3", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.seen.append((model.name, str(params.get("Key", ""))))

    def file_downloads(self) -> list[str]:
        """The objects of versions' files read (not manifests, aliases or leases)."""
        return [
            key
            for op, key in self.seen
            if op == "GetObject" and key.split("/")[-2].isdigit() and not key.endswith(MANIFEST_FILE)
        ]

    def writes(self) -> list[str]:
        return [key for op, key in self.seen if op in {"PutObject", "CreateMultipartUpload"}]


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    return moto.bucket(BUCKET)


@pytest.fixture
def store(s3: Any, tmp_path: Path) -> S3ModelStore:
    return S3ModelStore(s3, BUCKET, "models", DownloadCache(tmp_path / "cache"))


def built(tmp_path: Path, seed: int = 7, version: str = "1") -> Path:
    return build_tiny_text(tmp_path / f"build-{seed}-{version}", version=version, seed=seed)


def keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", ())}


def test_publish_then_list_then_fetch_a_verified_cached_copy(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    # GIVEN a build whose manifest says version 7, published to the bucket
    source = built(tmp_path, version="7")
    published = store.publish(source)
    # THEN it is version 1, laid out under the prefix, with no lease left behind
    assert published.version == "1"
    assert keys(s3) == {f"{PREFIX}{TINY_TEXT}/1/{f}" for f in ("model.onnx", "tokenizer.json", MANIFEST_FILE)}
    assert store.model_names() == [TINY_TEXT] and store.versions(TINY_TEXT) == ["1"]
    assert store.manifest(TINY_TEXT, "1") == published
    # WHEN fetched THEN the files are the build's, as hard links to checksum-named blobs beside the manifest
    artifact = store.fetch(TINY_TEXT, "1")
    assert artifact.directory == tmp_path / "cache" / TINY_TEXT / "1"
    assert read_manifest(artifact.directory) == published
    for entry in published.files:
        blob = tmp_path / "cache" / "blobs" / entry.sha256
        assert artifact.read(entry.path) == (source / entry.path).read_bytes() == blob.read_bytes()
        assert (artifact.directory / entry.path).stat().st_ino == blob.stat().st_ino
    assert not list((tmp_path / "cache" / "blobs").glob(".part-*"))


def test_a_second_fetch_downloads_nothing(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    calls = Calls(s3)
    first = store.fetch(TINY_TEXT, "1")
    assert sorted(calls.file_downloads()) == [
        f"{PREFIX}{TINY_TEXT}/1/model.onnx",
        f"{PREFIX}{TINY_TEXT}/1/tokenizer.json",
    ]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "blobs").iterdir()}
    calls.seen.clear()
    # The same store again, and a new one over the same cache (a warm Lambda container's next load).
    again = store.fetch(TINY_TEXT, "1")
    fresh = S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "cache")).fetch(TINY_TEXT, "1")
    assert calls.file_downloads() == []
    assert again.directory == fresh.directory == first.directory
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "blobs").iterdir()} == stamps


def test_a_tampered_object_is_refused_naming_it_and_never_cached(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    published = store.publish(built(tmp_path))
    key = f"{PREFIX}{TINY_TEXT}/1/tokenizer.json"
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original.replace(b"cat", b"cow"))  # same size, other bytes
    with pytest.raises(ModelLoadError, match=rf"s3://{BUCKET}/{key}: sha256 .* does not match the manifest") as caught:
        store.fetch(TINY_TEXT, "1")
    assert caught.value.public == "file tokenizer.json failed its integrity check"  # what a client may read
    with pytest.raises(ModelLoadError, match=rf"s3://{BUCKET}/{key}: sha256 .* does not match the manifest"):
        store.verify(TINY_TEXT, "1")
    tokenizer = published.file("tokenizer.json")
    blobs = tmp_path / "cache" / "blobs"
    assert not (blobs / tokenizer.sha256).exists() and not list(blobs.glob(".part-*"))
    assert not (tmp_path / "cache" / TINY_TEXT / "1").exists()


@pytest.mark.parametrize(
    ("damage", "public"),
    [
        ("tamper", "file tokenizer.json failed its integrity check"),
        ("delete", "its files could not be read from the model store"),
        ("manifest", "its manifest is invalid"),
    ],
)
def test_a_version_the_bucket_cannot_serve_is_reported_without_the_bucket(
    store: S3ModelStore, s3: Any, tmp_path: Path, damage: str, public: str
) -> None:
    # GIVEN a published version whose objects were then damaged in the bucket
    store.publish(built(tmp_path))
    key = f"{PREFIX}{TINY_TEXT}/1/tokenizer.json"
    if damage == "tamper":
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    elif damage == "delete":
        s3.delete_object(Bucket=BUCKET, Key=key)
    else:
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{TINY_TEXT}/1/{MANIFEST_FILE}", Body=b'{"name": 1}')
    # WHEN a serving process loads the store
    registry = ModelRegistry(store, SessionFactory(Settings()))
    registry.load_all()
    # THEN its public reason is in the version's terms; the detail names the object
    (state,) = registry.states()
    assert (state.state, state.reason) == ("UNAVAILABLE", public)
    assert f"s3://{BUCKET}/{PREFIX}{TINY_TEXT}/1/" in registry.rejections(TINY_TEXT)["1"].detail


def test_verify_reads_every_object_from_the_bucket(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    published = store.publish(built(tmp_path))
    moved: dict[str, int] = {}
    calls = Calls(s3)
    assert store.verify(TINY_TEXT, "1", progress=lambda p, n, _: moved.update({p: moved.get(p, 0) + n})) == published
    assert moved == {f.path: f.size for f in published.files}
    assert len(calls.file_downloads()) == 2
    assert not (tmp_path / "cache" / TINY_TEXT).exists()  # verify checks the bucket, it caches nothing


def test_the_manifest_is_written_last(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    calls = Calls(s3)
    store.publish(built(tmp_path))
    writes = [key for key in calls.writes() if not key.endswith(LEASE_FILE)]
    assert writes[-1] == f"{PREFIX}{TINY_TEXT}/1/{MANIFEST_FILE}" and len(writes) == 3


def test_a_publish_that_dies_before_its_manifest_is_never_listed(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    # GIVEN version 1, and a publish of version 2 that dies as it writes the manifest
    store.publish(built(tmp_path))
    source = built(tmp_path, seed=3)

    def die(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", "").endswith(f"/2/{MANIFEST_FILE}"):
            raise ConnectionResetError("the process died here")

    s3.meta.events.register("provide-client-params.s3.PutObject", die)
    with pytest.raises(ConnectionResetError):
        store.publish(source)
    s3.meta.events.unregister("provide-client-params.s3.PutObject", die)
    # THEN its files are in the bucket but the version is not listed, and its lease was handed back
    assert f"{PREFIX}{TINY_TEXT}/2/model.onnx" in keys(s3)
    assert store.versions(TINY_TEXT) == ["1"]
    assert f"{PREFIX}{TINY_TEXT}/{LEASE_FILE}" not in keys(s3)
    # AND the next publish writes version 2 over the leftovers
    assert store.publish(source).version == "2"
    assert store.fetch(TINY_TEXT, "2").read("model.onnx") == (source / "model.onnx").read_bytes()


def test_a_publish_while_another_holds_the_lease_is_refused(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    lease = f"{PREFIX}{TINY_TEXT}/{LEASE_FILE}"
    s3.put_object(Bucket=BUCKET, Key=lease, Body=b'{"holder": "ci-runner:42", "since": "2026-11-28T10:00:00Z"}')
    with pytest.raises(InvalidInput, match=rf"being published by ci-runner:42 .* delete s3://{BUCKET}/{lease}"):
        store.publish(built(tmp_path))
    assert store.versions(TINY_TEXT) == []


def test_versions_are_immutable_and_republishing_is_a_no_op(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    source = built(tmp_path)
    published = store.publish(source)
    calls = Calls(s3)
    assert store.publish(source) == published
    assert store.publish(source, version="1") == published
    assert [key for key in calls.writes() if not key.endswith(LEASE_FILE)] == []
    with pytest.raises(InvalidInput, match=r"version 1 is already published with different files \(model\.onnx\)"):
        store.publish(built(tmp_path, seed=3), version="1")
    assert store.manifest(TINY_TEXT, "1") == published


def test_a_bad_source_uploads_nothing(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    source = built(tmp_path)
    (source / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json: size"):
        store.publish(source)
    assert keys(s3) == set()


def test_the_seed_serves_until_the_bucket_holds_the_model(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    # GIVEN an image's baked store holding version 1 and an empty bucket
    seed_root = tmp_path / "baked"
    baked = build_tiny_text(seed_root)
    seeded = S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "cache"), seed=LocalModelStore(seed_root))
    calls = Calls(s3)
    # THEN the seed's versions serve, from the image, without a download
    assert seeded.model_names() == [TINY_TEXT] and seeded.versions(TINY_TEXT) == ["1"]
    assert seeded.fetch(TINY_TEXT, "1").directory == baked
    assert seeded.aliases(TINY_TEXT) == ModelAliases()
    # WHEN the same build is published THEN it goes into the bucket as version 1 and still serves from the image
    assert seeded.publish(baked).version == "1"
    assert f"{PREFIX}{TINY_TEXT}/1/model.onnx" in keys(s3)
    assert seeded.fetch(TINY_TEXT, "1").directory == baked
    # WHEN another build is published THEN it is version 2, downloaded into the cache
    assert seeded.publish(built(tmp_path, seed=3)).version == "2"
    assert seeded.fetch(TINY_TEXT, "2").directory == tmp_path / "cache" / TINY_TEXT / "2"
    assert calls.file_downloads() == [f"{PREFIX}{TINY_TEXT}/2/{f}" for f in ("model.onnx", "tokenizer.json")]


def test_a_seed_version_that_differs_from_the_buckets_is_not_served(
    store: S3ModelStore, s3: Any, tmp_path: Path
) -> None:
    store.publish(built(tmp_path, seed=3))  # the bucket's version 1
    seed_root = tmp_path / "baked"
    build_tiny_text(seed_root)  # the image's version 1: other bytes
    seeded = S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "cache"), seed=LocalModelStore(seed_root))
    artifact = seeded.fetch(TINY_TEXT, "1")
    assert artifact.directory == tmp_path / "cache" / TINY_TEXT / "1"
    assert artifact.manifest == store.manifest(TINY_TEXT, "1")


def test_aliases_round_trip_and_concurrent_changes_are_not_lost(store: S3ModelStore, s3: Any, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    store.publish(built(tmp_path, seed=3))
    versions = store.versions(TINY_TEXT)
    assert store.aliases(TINY_TEXT) == ModelAliases()
    first = promote(TINY_TEXT, ModelAliases(), "1", versions)
    store.write_aliases(TINY_TEXT, first)
    assert store.aliases(TINY_TEXT) == first
    # WHEN another operator promotes between this change's read and its write
    attempts: list[ModelAliases] = []

    def change(current: ModelAliases) -> ModelAliases:
        attempts.append(current)
        if len(attempts) == 1:
            store.write_aliases(TINY_TEXT, promote(TINY_TEXT, current, "2", versions, reason="someone else"))
        return promote(TINY_TEXT, current, "1", versions, reason="mine")

    updated = store.update_aliases(TINY_TEXT, change)
    # THEN the change is applied again on top of theirs: both are in the history
    assert len(attempts) == 2
    assert [c.reason for c in updated.history] == ["", "someone else", "mine"]
    assert store.aliases(TINY_TEXT) == updated


def test_a_missing_bucket_is_named(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="S3 bucket 'no-such-bucket' does not exist"):
        S3ModelStore(s3, "no-such-bucket", "", DownloadCache(tmp_path)).model_names()


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A tiny text build, and the same build sealed by ``aimass models encrypt`` under a new local master key:
    (plaintext build, sealed build, master key file)."""
    plain = built(tmp_path)
    key = tmp_path / "keys" / "master.key"
    environment = {"AIMASS_MASTER_KEY_FILE": str(key), "AIMASS_KMS_KEY_ID": None}
    result = CliRunner().invoke(cli, ["models", "encrypt", str(plain), str(tmp_path / "sealed")], env=environment)
    assert result.exit_code == 0, result.output
    return plain, tmp_path / "sealed", key


def sealed_store(s3: Any, tmp_path: Path, key: Path) -> S3ModelStore:
    """The store a serving process over ``key`` reads: the bucket, and the unsealer its settings make."""
    unsealer = unsealer_from_settings(Settings(master_key_file=key))
    return S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "cache"), unsealer=unsealer)


def test_an_encrypted_version_is_published_sealed_and_read_back_decrypted(
    sealed: tuple[Path, Path, Path], s3: Any, tmp_path: Path
) -> None:
    # GIVEN a build sealed by the CLI and published to the bucket
    plain, ciphered, key = sealed
    published = S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "publish-cache")).publish(ciphered)
    assert published.encryption is not None and published.encryption.key_provider == "local"
    # THEN the bucket holds ciphertext only: no object is, or contains, a plaintext file
    for entry in read_manifest(plain).files:
        stored = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{TINY_TEXT}/1/{entry.path}")["Body"].read()
        assert stored != (plain / entry.path).read_bytes() and (plain / entry.path).read_bytes()[:64] not in stored
    # WHEN a serving process's store fetches it THEN each file reads back as the plaintext build's bytes
    artifact = sealed_store(s3, tmp_path, key).fetch(TINY_TEXT, "1")
    for entry in read_manifest(plain).files:
        assert artifact.read(entry.path) == (plain / entry.path).read_bytes()


def test_a_sealed_version_in_the_bucket_answers_like_the_plaintext_model(
    sealed: tuple[Path, Path, Path], moto: MotoServer, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the sealed build in the bucket, and the app configured as a function reading it with the key
    _, ciphered, key = sealed
    S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "publish-cache")).publish(ciphered)
    for variable, value in moto.environment().items():
        monkeypatch.setenv(variable, value)
    settings = Settings(
        model_store=tmp_path / "no-baked-models", model_bucket=BUCKET, model_prefix="models",
        aws_endpoint_url=moto.endpoint, cache_dir=tmp_path / "cache", master_key_file=key,
    )  # fmt: skip
    texts = ["the cat sat on the mat", "a red car"]
    # WHEN a client asks for embeddings
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": texts})
    # THEN they are the plaintext model's (computed without ONNX Runtime)
    assert response.status_code == 200, response.text
    for text, item in zip(texts, response.json()["data"], strict=True):
        np.testing.assert_allclose(item["embedding"], reference_embedding(text), atol=1e-5)


def test_a_sealed_version_read_with_another_master_key_is_refused_as_wrong_key(
    sealed: tuple[Path, Path, Path], s3: Any, tmp_path: Path
) -> None:
    _, ciphered, key = sealed
    S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "publish-cache")).publish(ciphered)
    other = LocalKeyProvider.create_or_open(tmp_path / "other" / "master.key")
    artifact = sealed_store(s3, tmp_path, other.path).fetch(TINY_TEXT, "1")
    with pytest.raises(DecryptionError) as refused:
        artifact.read("model.onnx")
    assert refused.value.message == (
        f"model '{TINY_TEXT}' version 1: wrong key: sealed under local master key {LocalKeyProvider(key).key_id}, "
        f"but {other.path} is master key {other.key_id}; point AIMASS_MASTER_KEY_FILE at the key it was sealed with"
    )
    assert refused.value.public == "file model.onnx could not be decrypted"  # the key's names stay in the log


def test_a_sealed_object_altered_in_the_bucket_is_refused_as_tampered(
    sealed: tuple[Path, Path, Path], s3: Any, tmp_path: Path
) -> None:
    # GIVEN a sealed version whose model object someone with write access to the bucket changed by one byte,
    # rewriting the manifest's digest to match, so that only authentication can tell
    plain, ciphered, key = sealed
    S3ModelStore(s3, BUCKET, PREFIX, DownloadCache(tmp_path / "publish-cache")).publish(ciphered)
    folder = f"{PREFIX}{TINY_TEXT}/1/"
    altered = bytearray(s3.get_object(Bucket=BUCKET, Key=f"{folder}model.onnx")["Body"].read())
    altered[100] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=f"{folder}model.onnx", Body=bytes(altered))
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{folder}{MANIFEST_FILE}")["Body"].read())
    for entry in document["files"]:
        if entry["path"] == "model.onnx":
            entry["sha256"] = hashlib.sha256(altered).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=f"{folder}{MANIFEST_FILE}", Body=json.dumps(document).encode())
    # WHEN the serving store reads it THEN AES-GCM refuses it, and the untouched file still reads
    artifact = sealed_store(s3, tmp_path, key).fetch(TINY_TEXT, "1")
    with pytest.raises(DecryptionError, match=r"file 'model\.onnx' is tampered: its ciphertext fails AES-GCM"):
        artifact.read("model.onnx")
    assert artifact.read("tokenizer.json") == (plain / "tokenizer.json").read_bytes()


def test_open_store_picks_s3_when_a_bucket_is_set(
    moto: MotoServer, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in moto.environment().items():
        monkeypatch.setenv(variable, value)
    baked = tmp_path / "baked"
    build_tiny_text(baked)
    settings = Settings(
        model_store=baked, model_bucket=BUCKET, model_prefix="models", aws_endpoint_url=moto.endpoint,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    remote = open_store(settings)
    assert isinstance(remote, S3ModelStore) and remote.location == f"s3://{BUCKET}/{PREFIX}"
    assert remote.seed is not None and remote.versions(TINY_TEXT) == ["1"]  # served from the seed
    assert isinstance(open_store(settings, seeded=False), S3ModelStore)
    assert open_store(settings, seeded=False).versions(TINY_TEXT) == []
    local = open_store(Settings(model_store=baked))
    assert isinstance(local, LocalModelStore) and local.versions(TINY_TEXT) == ["1"]
