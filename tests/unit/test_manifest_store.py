"""Manifests and the local store refuse a model whose manifest or files are wrong, naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aimass.errors import ModelLoadError, NotFound
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass.store.manifest import MANIFEST_FILE, read_manifest, verify_files
from tests.tiny_models import TINY_TEXT, build_tiny_text


@pytest.fixture
def store(tmp_path: Path) -> LocalModelStore:
    build_tiny_text(tmp_path)
    return LocalModelStore(tmp_path)


def edit_manifest(store: LocalModelStore, **changes: object) -> Path:
    path = store.root / TINY_TEXT / "1" / MANIFEST_FILE
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))
    return path


def test_a_good_model_is_listed_and_fetched(store: LocalModelStore) -> None:
    assert store.model_names() == [TINY_TEXT]
    assert store.versions(TINY_TEXT) == ["1"]
    artifact = store.fetch(TINY_TEXT, "1")
    assert artifact.manifest.task == "embedding"
    assert artifact.read("tokenizer.json").startswith(b"{")


def test_a_changed_file_is_refused_naming_it(store: LocalModelStore) -> None:
    graph = store.root / TINY_TEXT / "1" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    artifact = store.fetch(TINY_TEXT, "1")  # same size: caught when the bytes are read
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        artifact.read("model.onnx")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        verify_files(artifact.directory, artifact.manifest)
    registry = ModelRegistry(store, SessionFactory(Settings()))
    registry.load_all()
    (state,) = registry.states()
    assert state.state == "UNAVAILABLE" and state.reason == "file model.onnx failed its integrity check"
    assert f"{graph}: sha256" in registry.rejections(TINY_TEXT)["1"].detail


def test_only_files_the_manifest_lists_can_be_read(store: LocalModelStore) -> None:
    (store.root / TINY_TEXT / "1" / "extra.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"no file 'extra\.bin' in its manifest"):
        store.fetch(TINY_TEXT, "1").read("extra.bin")


def test_a_missing_file_is_refused_naming_it(store: LocalModelStore) -> None:
    (store.root / TINY_TEXT / "1" / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json: file listed in the manifest is missing"):
        store.fetch(TINY_TEXT, "1")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": "01"}, "version: Value error, version must be a positive integer"),
        ({"name": "Bad Name"}, "name: Value error, name must be"),
        ({"inputs": [{"name": "text", "datatype": "STRING", "shape": [-1]}]}, "inputs.0.datatype"),
        ({"files": [{"path": "../x", "sha256": "0" * 64, "size": 1}]}, "files.0.path"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_manifest_is_refused_naming_the_field(
    store: LocalModelStore, changes: dict[str, object], message: str
) -> None:
    path = edit_manifest(store, **changes)
    with pytest.raises(ModelLoadError, match=str(path).replace(".", r"\.") + ": invalid manifest") as caught:
        read_manifest(path.parent)
    assert message in caught.value.message


def test_manifest_at_the_wrong_place_is_refused(tmp_path: Path) -> None:
    build_tiny_text(tmp_path)
    (tmp_path / TINY_TEXT / "1").rename(tmp_path / TINY_TEXT / "2")
    with pytest.raises(ModelLoadError, match="describes 'tiny-text' version 1, but lies at 'tiny-text/2'"):
        LocalModelStore(tmp_path).fetch(TINY_TEXT, "2")


def test_unknown_version_is_not_found(store: LocalModelStore) -> None:
    with pytest.raises(NotFound, match="version '9' is not in the store"):
        store.fetch(TINY_TEXT, "9")


def test_registry_serves_the_newest_version_and_reports_a_broken_one(tmp_path: Path) -> None:
    build_tiny_text(tmp_path, version="1")
    build_tiny_text(tmp_path, version="2", seed=3)
    build_tiny_text(tmp_path, name="broken")
    (tmp_path / "broken" / "1" / "model.onnx").write_bytes(b"not onnx")
    registry = ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings()))
    registry.load_all()
    assert registry.get(TINY_TEXT).manifest.version == "2"
    states = {s.name: s for s in registry.states()}
    assert states[TINY_TEXT].state == "READY"
    assert (
        states["broken"].state == "UNAVAILABLE"
        and states["broken"].reason == "file model.onnx failed its integrity check"
    )
    assert "model.onnx: size 8 does not match the manifest's" in registry.rejections("broken")["1"].detail
    assert not registry.ready


def test_a_graph_that_breaks_its_manifest_is_refused(tmp_path: Path) -> None:
    build_tiny_text(tmp_path)
    path = tmp_path / TINY_TEXT / "1" / MANIFEST_FILE
    document = json.loads(path.read_text())
    document["engine"]["outputs"][0]["name"] = "pooled"
    path.write_text(json.dumps(document))
    registry = ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings()))
    registry.load_all()
    (state,) = registry.states()
    assert "the graph has no output 'pooled'" in state.reason
