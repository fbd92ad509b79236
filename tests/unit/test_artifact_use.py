"""A file used while its hash is checked beside it (ModelArtifact.use) is refused as read() refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimass.errors import ModelLoadError
from aimass.store import base
from aimass.store.local import LocalModelStore
from tests.tiny_models import TINY_TEXT, build_tiny_text

CHANGED = r"model\.onnx: sha256 .* does not match the manifest"


@pytest.fixture(params=[0, 1 << 30], ids=["hashed-beside", "hashed-first"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalModelStore:
    # Every file counts as large (hashed on a thread) or as small (hashed before its use).
    monkeypatch.setattr(base, "HASH_BESIDE_BYTES", request.param)
    build_tiny_text(tmp_path)
    return LocalModelStore(tmp_path)


def change_graph(store: LocalModelStore) -> None:
    graph = store.root / TINY_TEXT / "1" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))


def test_the_use_of_a_good_file_is_returned(store: LocalModelStore) -> None:
    artifact = store.fetch(TINY_TEXT, "1")
    assert artifact.use("model.onnx", len) == len(artifact.read("model.onnx"))


def test_a_changed_file_is_refused_whatever_its_use_made_of_it(store: LocalModelStore) -> None:
    change_graph(store)
    artifact = store.fetch(TINY_TEXT, "1")
    with pytest.raises(ModelLoadError, match=CHANGED):
        artifact.use("model.onnx", len)


def test_a_changed_file_is_refused_before_its_use_s_own_error(store: LocalModelStore) -> None:
    change_graph(store)
    artifact = store.fetch(TINY_TEXT, "1")

    def unreadable(data: bytes) -> int:
        raise ValueError("not a graph")

    with pytest.raises(ModelLoadError, match=CHANGED):
        artifact.use("model.onnx", unreadable)


def test_a_good_file_s_use_raises_its_own_error(store: LocalModelStore) -> None:
    artifact = store.fetch(TINY_TEXT, "1")

    def unreadable(data: bytes) -> int:
        raise ValueError("not a graph")

    with pytest.raises(ValueError, match="not a graph"):
        artifact.use("model.onnx", unreadable)
