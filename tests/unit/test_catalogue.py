"""The model catalogue is read from source: every models/<domain>/<model>/ with build.py and spec.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.catalogue import CatalogueError, catalogue, domains


def model_dir(root: Path, domain: str, model: str, spec: str) -> None:
    directory = root / domain / model
    directory.mkdir(parents=True)
    (directory / "build.py").write_text("raise SystemExit('not run by the catalogue')\n")
    (directory / "spec.py").write_text(spec)


def test_the_repository_catalogue_holds_the_text_model() -> None:
    entries = {entry.name: entry for entry in catalogue()}
    assert entries["all-minilm-l6-v2"].domain == "text"
    assert entries["all-minilm-l6-v2"].build_script.name == "build.py"
    assert "text" in domains()


def test_models_are_found_without_running_anything(tmp_path: Path) -> None:
    model_dir(tmp_path, "vision", "net", 'import nothing_installed\nNAME = "net-a"\nVERSION = "2"\n')
    model_dir(tmp_path, "audio", "kws", 'NAME = "kws"\nVERSION = "1"\n')
    (tmp_path / "buildkit").mkdir()  # not a model: no domain/model/spec.py
    assert [(e.domain, e.name, e.version) for e in catalogue(tmp_path)] == [
        ("audio", "kws", "1"),
        ("vision", "net-a", "2"),
    ]


def test_a_spec_without_literals_is_refused(tmp_path: Path) -> None:
    model_dir(tmp_path, "vision", "net", 'NAME = "net"\nVERSION = str(1)\n')
    with pytest.raises(CatalogueError, match="assign VERSION as string literals"):
        catalogue(tmp_path)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    model_dir(tmp_path, "a", "one", 'NAME = "same"\nVERSION = "1"\n')
    model_dir(tmp_path, "b", "two", 'NAME = "same"\nVERSION = "1"\n')
    with pytest.raises(CatalogueError, match=r"\['same'\] appear more than once"):
        catalogue(tmp_path)
