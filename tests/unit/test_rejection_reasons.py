"""A version that cannot serve has two reasons: the public one any client may read, and the operator's detail.

The public reason is what the error says for clients (``ModelLoadError.public``), a domain runtime's own
refusal as written (unless it quotes another library's error), or else the step that failed: an error nobody
wrote for clients never reaches one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aimass.errors import ModelLoadError, ModelNotReady, NotFound
from aimass.serving.registry import ModelRegistry, Rejection
from aimass.serving.runtime import ModelRuntime
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.local import LocalModelStore
from aimass.store.manifest import TensorSpec, read_manifest, write_manifest
from tests.tiny_models import TINY_TEXT, build_tiny_text


class VanishingStore(LocalModelStore):
    """Lists a version, then cannot find it when it is fetched (as when it is deleted in between)."""

    def fetch(self, name: str, version: str) -> ModelArtifact:
        raise NotFound(f"model '{name}' version '{version}' is not in the store at {self.root}")


def refuse_samples(runtime: ModelRuntime) -> None:
    raise ModelLoadError(f"{runtime.artifact.directory}: <object at 0x7f00> exploded")


def loaded(registry: ModelRegistry) -> ModelRegistry:
    registry.load_all()
    return registry


def test_an_error_without_a_public_reason_gets_the_failed_steps(tmp_path: Path) -> None:
    build_tiny_text(tmp_path)
    registry = loaded(ModelRegistry(VanishingStore(tmp_path), SessionFactory(Settings())))
    (state,) = registry.states()
    assert state.reason == "its files could not be read from the model store"
    assert registry.rejections(TINY_TEXT)["1"] == Rejection(
        "its files could not be read from the model store",
        f"model '{TINY_TEXT}' version '1' is not in the store at {tmp_path}",
    )

    registry = loaded(ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings()), validate=refuse_samples))
    assert registry.rejected(TINY_TEXT) == {"1": "its validation samples could not be run"}
    assert "<object at 0x7f00> exploded" in registry.rejections(TINY_TEXT)["1"].detail


def test_errors_of_a_model_with_no_serving_version_say_only_the_public_reason(tmp_path: Path) -> None:
    build_tiny_text(tmp_path)
    (tmp_path / TINY_TEXT / "1" / "model.onnx").write_bytes(b"not onnx")
    registry = loaded(ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings())))
    with pytest.raises(ModelNotReady) as unpinned:
        registry.get(TINY_TEXT)
    assert unpinned.value.message == (
        f"model '{TINY_TEXT}' is not available: version 1 was rejected: file model.onnx failed its integrity check"
    )
    assert str(tmp_path) in registry.rejections(TINY_TEXT)["1"].detail


def test_a_load_refusal_is_public_as_written_unless_it_quotes_another_librarys_error(tmp_path: Path) -> None:
    # GIVEN a graph that lacks an output its manifest names, and a version whose preprocessing pydantic refuses
    build_tiny_text(tmp_path, name="renamed")
    renamed = read_manifest(tmp_path / "renamed" / "1")
    engine = renamed.engine.model_copy(update={"outputs": (TensorSpec(name="pooled", datatype="FP32", shape=(-1, 8)),)})
    write_manifest(tmp_path / "renamed" / "1", renamed.model_copy(update={"engine": engine}))
    build_tiny_text(tmp_path, name="unbounded")
    unbounded = read_manifest(tmp_path / "unbounded" / "1")
    preprocessing = {**unbounded.preprocessing, "max_length": 0}
    write_manifest(tmp_path / "unbounded" / "1", unbounded.model_copy(update={"preprocessing": preprocessing}))
    # WHEN they are loaded
    registry = loaded(ModelRegistry(LocalModelStore(tmp_path), SessionFactory(Settings())))
    # THEN the first is refused in its own words; the second's detail quotes pydantic: clients get the runtime's
    # public reason alone (a domain runtime's own refusals, raised on their own, are public as written:
    # tests/functional/test_vision_http)
    reasons = {state.name: state.reason for state in registry.states()}
    assert reasons["renamed"] == "the graph has no output 'pooled'"
    assert reasons["unbounded"] == "its manifest's preprocessing block is invalid"
    assert "input_value=0" in registry.rejections("unbounded")["1"].detail
