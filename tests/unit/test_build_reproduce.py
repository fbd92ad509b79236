"""The cards' claim that a rebuild is byte-identical, tested where a build is cheap enough for the suite.

tensor-wine builds in about 2 s: it is built twice into scratch stores and every file its manifest lists must
hash the same. The other builds take from 10 s to many minutes; ``python -m models.buildkit.reproduce <model>``
checks one against the store by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.buildkit.reproduce import compare, load_build, rebuild_and_compare
from models.catalogue import catalogue


@pytest.mark.real_model
def test_tensor_wine_rebuilds_byte_identical(tmp_path: Path) -> None:
    (entry,) = [entry for entry in catalogue() if entry.name == "tensor-wine"]
    first = load_build(entry).build(tmp_path / "first", force=True)

    comparison = rebuild_and_compare(entry, first, tmp_path / "second")

    assert comparison.identical, comparison.files
    assert comparison.quality == []  # nothing in its quality depends on the clock


def test_a_file_that_differs_is_named(tmp_path: Path) -> None:
    # GIVEN two copies of a version whose manifests list different hashes for one file
    (entry,) = [entry for entry in catalogue() if entry.name == "tensor-wine"]
    first = load_build(entry).build(tmp_path / "first")
    second = tmp_path / "second"
    second.mkdir()
    manifest = json.loads((first / "manifest.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    manifest["quality"]["accuracy"] = 0.5
    (second / "manifest.json").write_text(json.dumps(manifest))

    comparison = compare(first, second)

    path = manifest["files"][0]["path"]
    assert not comparison.identical and list(comparison.files) == [path]
    assert comparison.files[path][1] == "0" * 64 and comparison.quality == ["accuracy"]
