"""Model cards are renderings of their templates, and every figure in them is one a build wrote."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from aimass.store.manifest import ModelManifest
from models.buildkit import publish, seal
from models.buildkit.build_record import make_record, report_path
from models.buildkit.card import CardError, check, main, read_template, render
from models.catalogue import catalogue

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "model_store"
MODELS = [pytest.param(entry, id=entry.name) for entry in catalogue()]
# What a build measures of time and memory: it varies with the machine and its load, so a rebuild differs.
VOLATILE = re.compile(r"per_s|rss|real_time|seconds|_ms\b")
RESERVED = ("build", "constants", "recorded_at")


def _model_dir(tmp_path: Path, template: str, record: dict[str, Any]) -> Path:
    (tmp_path / "card.md").write_text("<!-- card sources: record=record.json -->\n" + template)
    (tmp_path / "record.json").write_text(json.dumps(record))
    return tmp_path


RECORD = {
    "quality": {"accuracy": 0.954198, "rows": 45, "reference": "sentence-transformers 6.3.0 on PyTorch 2.13.0"},
    "files": [{"path": "labels.txt", "size": 21675}, {"path": "model.onnx", "size": 90370745}],
    "scaling": {"16": {"tokens_per_s": 346.6}},
}


@pytest.mark.parametrize("entry", MODELS)
def test_every_card_is_the_rendering_of_its_template_with_only_traced_figures(entry: Any) -> None:
    assert check(entry.build_script.parent) == []


def test_placeholders_format_walk_lists_and_filter(tmp_path: Path) -> None:
    # GIVEN a template with each kind of placeholder
    model = _model_dir(
        tmp_path,
        "{{ record.quality.accuracy:.1% }}; {{ record.files[path=model.onnx].size:, }} bytes "
        "({{ record.files.1.size | mib :.1f }} MiB); {{ record.files | len }} files\n",
        RECORD,
    )
    # WHEN it is rendered THEN each placeholder is its value, formatted, below a note on how to regenerate it
    note, text = render(read_template(model)).split("\n", 1)
    assert text == "95.4%; 90,370,745 bytes (86.2 MiB); 2 files\n"
    assert "python -m models.buildkit.card render" in note


def test_a_placeholder_into_nothing_is_an_error_naming_it(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, "{{ record.quality.recall }}\n", RECORD)
    with pytest.raises(CardError, match=r"record\.quality\.recall"):
        render(read_template(model))


def test_a_figure_typed_into_the_template_that_no_source_holds_fails_the_check(tmp_path: Path) -> None:
    # GIVEN a template whose own text states figures, most of which the record holds
    model = _model_dir(
        tmp_path,
        "Accuracy 0.954 (95.4 %) on the 45 held-out rows, a file of 90,370,745 bytes,\n"
        "measured with sentence-transformers 6.3.0, 347 tokens/s over 16 streams; it answers in 24 ms.\n"
        "Names and code are not figures: opset17, int8, v2, `--top 17`, [a link](https://x.org/1/2).\n",
        RECORD,
    )
    main(["render", str(model)])
    # WHEN it is checked THEN the one figure no source holds is named, with its line
    problems = check(model)
    assert len(problems) == 1
    assert "card.md:3: the figure 24 is in no source" in problems[0]


def test_a_version_other_than_the_recorded_one_fails_the_check(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, "Measured against sentence-transformers 6.2.0 and 0.9543.\n", RECORD)
    main(["render", str(model)])
    assert [problem.split(" is in")[0].rsplit(" ", 1)[1] for problem in check(model)] == ["6.2.0", "0.9543"]


def test_a_hand_edited_or_stale_card_fails_the_check(tmp_path: Path) -> None:
    # GIVEN a rendered card
    model = _model_dir(tmp_path, "Accuracy {{ record.quality.accuracy:.3f }}.\n", RECORD)
    assert main(["render", str(model)]) == 0
    assert main(["check", str(model)]) == 0
    card = model / "MODEL_CARD.md"
    # WHEN the card is edited by hand THEN the check fails
    card.write_text(card.read_text().replace("0.954", "0.960"))
    assert "is not the rendering" in check(model)[0]
    # WHEN it is rendered again, then the record changes under it THEN the check fails again
    main(["render", str(model)])
    (model / "record.json").write_text(json.dumps({**RECORD, "quality": {"accuracy": 0.9}}))
    assert main(["check", str(model)]) == 1


def test_the_record_holds_the_manifest_the_build_report_and_the_spec(tmp_path: Path) -> None:
    # GIVEN a store holding the wine model's manifest and a report of its build, written after it
    model_dir = ROOT / "models" / "tensor" / "wine"
    committed = json.loads((model_dir / "record.json").read_text())
    manifest = {key: value for key, value in committed.items() if key not in RESERVED}
    version_dir = tmp_path / manifest["name"] / manifest["version"]
    version_dir.mkdir(parents=True)
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    report = {"built_at": "2999-01-01T00:00:00Z", "seconds": 1.5}
    report_path(tmp_path, manifest["name"], manifest["version"]).write_text(json.dumps(report))
    # WHEN the record is made THEN it is the manifest, the report and the spec's constants
    record = make_record(model_dir, tmp_path)
    assert {key: record[key] for key in manifest} == manifest
    assert record["build"] == report
    assert record["constants"]["spec"]["MIN_ACCURACY"] == 0.9
    # WHEN the report is older than the manifest (it was an earlier build's) THEN the record has none
    report_path(tmp_path, manifest["name"], manifest["version"]).write_text(json.dumps({"built_at": "2000"}))
    assert make_record(model_dir, tmp_path)["build"] is None


def test_publish_writes_the_build_report_beside_the_version(tmp_path: Path) -> None:
    committed = json.loads((ROOT / "models" / "tensor" / "wine" / "record.json").read_text())
    data = b"not a graph; publish does not read it"
    files = [{"path": "model.onnx", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]
    fields = {key: value for key, value in committed.items() if key not in RESERVED}
    manifest = ModelManifest.model_validate({**fields, "files": files, "validation": None})

    def build_into(work: Path) -> None:
        (work / "model.onnx").write_bytes(data)
        seal(work, manifest)

    final = publish(tmp_path, manifest.name, manifest.version, build_into)
    report = json.loads(report_path(tmp_path, manifest.name, manifest.version).read_text())
    assert report["seconds"] >= 0 and report["machine"]["cpus"] >= 1
    assert sorted(path.name for path in final.iterdir()) == ["manifest.json", "model.onnx"]


@pytest.mark.parametrize("entry", MODELS)
def test_the_committed_record_is_the_built_version(entry: Any) -> None:
    """Where the suite has built the model, the record's quality and files are the build's (timings aside)."""
    manifest_path = STORE / entry.name / entry.version / "manifest.json"
    if not manifest_path.is_file():
        pytest.skip(f"{entry.name} v{entry.version} is not built in {STORE}")
    built = json.loads(manifest_path.read_text())
    record = json.loads((entry.build_script.parent / "record.json").read_text())
    report = report_path(STORE, entry.name, entry.version)
    recorded_on = (record.get("build") or {}).get("machine")
    built_on = json.loads(report.read_text())["machine"] if report.is_file() else None
    if recorded_on and built_on and _kind(recorded_on) != _kind(built_on):
        # Builds are byte-identical on the same kind of machine; trained weights depend on the CPU's kernels.
        pytest.skip(f"{entry.name} was recorded on {_kind(recorded_on)} and built here on {_kind(built_on)}")
    again = f"the build changed; run python -m models.buildkit.card record {entry.build_script.parent}, then render"
    assert record["files"] == built["files"], again
    assert _steady(record["quality"]) == _steady(built["quality"]), again


def _kind(machine: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(machine.get(key) for key in ("architecture", "cpu", "cpus"))


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _steady(item) for key, item in value.items() if not VOLATILE.search(key)}
    return value
