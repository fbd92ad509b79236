"""The local store's write side: publishing new, immutable versions atomically, and the aliases document."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aimass.errors import InvalidInput, ModelLoadError, NotFound
from aimass.store.aliases import ALIASES_FILE, ModelAliases, promote
from aimass.store.local import LocalModelStore
from aimass.store.manifest import MANIFEST_FILE, read_manifest, verify_files
from tests.tiny_models import TINY_TEXT, build_tiny_text


def built(tmp_path: Path, seed: int = 7, version: str = "1") -> Path:
    """A built model folder outside the store, as a build leaves it."""
    return build_tiny_text(tmp_path / f"build-{seed}-{version}", version=version, seed=seed)


@pytest.fixture
def store(tmp_path: Path) -> LocalModelStore:
    return LocalModelStore(tmp_path / "store")


def leftovers(store: LocalModelStore) -> list[str]:
    return sorted(p.name for p in (store.root / TINY_TEXT).iterdir() if p.name.startswith(".") and p.is_dir())


def test_publish_makes_the_next_version_with_the_manifest_rewritten(store: LocalModelStore, tmp_path: Path) -> None:
    # GIVEN a build whose manifest says version 7
    source = built(tmp_path, version="7")
    # WHEN it is published into an empty store, then another build after it
    first = store.publish(source)
    second = store.publish(built(tmp_path, seed=3))
    # THEN they are versions 1 and 2, each manifest says so, and the files are the build's
    assert (first.version, second.version) == ("1", "2")
    assert store.versions(TINY_TEXT) == ["1", "2"] and store.model_names() == [TINY_TEXT]
    assert read_manifest(store.root / TINY_TEXT / "1") == first
    assert first == read_manifest(source).model_copy(update={"version": "1"})
    artifact = store.fetch(TINY_TEXT, "1")
    assert artifact.read("model.onnx") == (source / "model.onnx").read_bytes()
    assert read_manifest(source).version == "7"  # the source is left as it was
    assert leftovers(store) == []


def test_an_explicit_version_is_used_and_the_next_one_follows_it(store: LocalModelStore, tmp_path: Path) -> None:
    assert store.publish(built(tmp_path), version="5").version == "5"
    assert store.publish(built(tmp_path, seed=3)).version == "6"


def test_publishing_the_same_bytes_again_is_a_no_op(store: LocalModelStore, tmp_path: Path) -> None:
    source = built(tmp_path)
    published = store.publish(source)
    stamp = (store.root / TINY_TEXT / "1" / MANIFEST_FILE).stat().st_mtime_ns
    assert store.publish(source) == published
    assert store.publish(source, version="1") == published
    assert store.versions(TINY_TEXT) == ["1"]
    assert (store.root / TINY_TEXT / "1" / MANIFEST_FILE).stat().st_mtime_ns == stamp


def test_different_bytes_under_an_existing_version_are_refused(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    original = (store.root / TINY_TEXT / "1" / "model.onnx").read_bytes()
    with pytest.raises(InvalidInput, match=r"version 1 is already published with different files \(model\.onnx\)"):
        store.publish(built(tmp_path, seed=3), version="1")
    assert (store.root / TINY_TEXT / "1" / "model.onnx").read_bytes() == original
    assert store.versions(TINY_TEXT) == ["1"]


@pytest.mark.parametrize("version", ["0", "01", "two", "-1", ""])
def test_a_version_that_is_not_a_positive_integer_is_invalid(
    store: LocalModelStore, tmp_path: Path, version: str
) -> None:
    with pytest.raises(InvalidInput, match=f"version must be a positive integer such as '3', got '{version}'"):
        store.publish(built(tmp_path), version=version)


def test_a_publish_whose_source_has_a_corrupt_file_leaves_no_version(store: LocalModelStore, tmp_path: Path) -> None:
    # GIVEN version 1 in the store and a build whose graph changed after its manifest was written
    store.publish(built(tmp_path))
    source = built(tmp_path, seed=3)
    graph = bytearray((source / "model.onnx").read_bytes())
    graph[-1] ^= 0xFF
    (source / "model.onnx").write_bytes(bytes(graph))
    # WHEN it is published THEN the bad file is named and nothing of it is left in the store
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        store.publish(source)
    assert store.versions(TINY_TEXT) == ["1"]
    assert leftovers(store) == []


def test_a_publish_whose_source_lacks_a_file_names_it(store: LocalModelStore, tmp_path: Path) -> None:
    source = built(tmp_path)
    (source / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json: file listed in the manifest is missing"):
        store.publish(source)
    assert store.model_names() == []


def test_a_killed_publish_is_never_listed_and_is_cleared_by_the_next(store: LocalModelStore, tmp_path: Path) -> None:
    # GIVEN the temp directory of a publish killed halfway
    half = store.root / TINY_TEXT / ".publish-killed"
    half.mkdir(parents=True)
    (half / "model.onnx").write_bytes(b"half")
    assert store.model_names() == [] and store.versions(TINY_TEXT) == []
    # WHEN another publish runs THEN it becomes version 1 and the leftover is gone
    assert store.publish(built(tmp_path)).version == "1"
    assert leftovers(store) == []


def test_concurrent_publishes_of_one_model_each_get_their_own_version(store: LocalModelStore, tmp_path: Path) -> None:
    sources = [built(tmp_path, seed=seed) for seed in (1, 2, 3, 4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        published = list(pool.map(store.publish, sources))
    assert sorted(m.version for m in published) == ["1", "2", "3", "4"]
    for manifest, source in zip(published, sources, strict=True):
        directory = store.root / TINY_TEXT / manifest.version
        verify_files(directory, read_manifest(directory))
        assert (directory / "model.onnx").read_bytes() == (source / "model.onnx").read_bytes()


def test_publish_reports_progress_for_every_byte(store: LocalModelStore, tmp_path: Path) -> None:
    moved: dict[str, int] = {}
    totals: dict[str, int] = {}

    def progress(path: str, amount: int, total: int) -> None:
        moved[path] = moved.get(path, 0) + amount
        totals[path] = total

    manifest = store.publish(built(tmp_path), progress=progress)
    assert moved == totals == {f.path: f.size for f in manifest.files}


def test_manifest_reads_one_version_and_unknown_ones_are_not_found(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    assert store.manifest(TINY_TEXT, "1").task == "embedding"
    with pytest.raises(NotFound, match="model 'tiny-text' version '2' is not in the store"):
        store.manifest(TINY_TEXT, "2")


def test_verify_reads_every_file_and_names_a_bad_one(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    assert store.verify(TINY_TEXT, "1").version == "1"
    tokenizer = store.root / TINY_TEXT / "1" / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b"cat", b"cow"))
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json: sha256 .* does not match the manifest"):
        store.verify(TINY_TEXT, "1")


def test_aliases_round_trip_through_the_models_directory(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    store.publish(built(tmp_path, seed=3))
    assert store.aliases(TINY_TEXT) == ModelAliases()  # no document yet: the newest serves
    aliases = promote(TINY_TEXT, ModelAliases(), "1", ["1", "2"], reason="pinned")
    store.write_aliases(TINY_TEXT, aliases)
    assert store.aliases(TINY_TEXT) == aliases
    assert json.loads((store.root / TINY_TEXT / ALIASES_FILE).read_text())["production"] == "1"
    assert not list((store.root / TINY_TEXT).glob(".aliases-*"))
    assert store.versions(TINY_TEXT) == ["1", "2"]  # the document is no version


def test_update_aliases_changes_the_stored_document(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    store.publish(built(tmp_path, seed=3))
    store.update_aliases(TINY_TEXT, lambda current: promote(TINY_TEXT, current, "1", ["1", "2"]))
    updated = store.update_aliases(TINY_TEXT, lambda current: promote(TINY_TEXT, current, "2", ["1", "2"]))
    assert store.aliases(TINY_TEXT) == updated
    assert [c.production for c in updated.history] == ["1", "2"]


def test_a_damaged_aliases_document_is_refused_naming_it(store: LocalModelStore, tmp_path: Path) -> None:
    store.publish(built(tmp_path))
    (store.root / TINY_TEXT / ALIASES_FILE).write_text('{"production": "1", "canary_percent": 140}')
    with pytest.raises(ModelLoadError, match=r"aliases\.json: invalid aliases document: canary_percent"):
        store.aliases(TINY_TEXT)
