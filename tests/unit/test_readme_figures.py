"""The READMEs' measured figures cite the committed artefacts that hold them (scripts/readme_figures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.readme_figures import DOCUMENTS, REPO, blocks, main, measured, problems


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    records = tmp_path / "bench" / "records"
    records.mkdir(parents=True)
    record = {"llm": {"decode": {"http": {"best_tokens_per_s": 106.7}, "http_ratio": 1.004}, "peak_rss_mb": 1140.6}}
    (records / "llm.json").write_text(json.dumps(record))
    return tmp_path


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_measured_figure_of_the_readmes_is_in_an_artefact_it_cites(document: str) -> None:
    assert problems((REPO / document).read_text(), document) == []


def test_a_figure_that_no_cited_record_holds_fails_naming_it(repo: Path) -> None:
    # GIVEN a paragraph citing a record that holds 106.7 tokens/s and a ratio of 1.004, and a figure it does not
    text = "Decode runs at 106.7 tokens/s, 1.00x the engine, 1,141 MB at peak, first token after 75.0 ms\n"
    text += "(`bench/records/llm.json`).\n"

    # WHEN it is checked
    found = problems(text, "README.md", repo)

    # THEN the untraced figure alone is named, at its paragraph's line, with the record it is missing from
    assert len(found) == 1
    assert found[0].startswith("README.md:1: 75.0 ms is in none of bench/records/llm.json")


def test_a_figure_is_traced_at_the_precision_it_is_written(repo: Path) -> None:
    assert problems("1.00x and 107 tokens/s (bench/records/llm.json)", "README.md", repo) == []
    assert problems("1.01x (bench/records/llm.json)", "README.md", repo) != []
    assert problems("106.6 tokens/s (bench/records/llm.json)", "README.md", repo) != []


def test_a_measured_figure_that_cites_nothing_fails(repo: Path) -> None:
    found = problems("The server answers 453 req/s on two cores, a ratio of 0.97 to the engine.\n", "x.md", repo)
    assert len(found) == 1
    assert "453 req/s, 0.97 measured, but the paragraph cites no artefact" in found[0]


def test_a_cited_record_that_does_not_exist_fails(repo: Path) -> None:
    found = problems("It took 4.7 s (`bench/records/tensor.json`).", "README.md", repo)
    assert found == [
        "README.md:1: bench/records/tensor.json is cited but does not exist: commit the record, or cite one that exists"
    ]


def test_constants_of_the_design_are_not_measurements(repo: Path) -> None:
    text = (
        "A client gets `AIMASS_BODY_TIMEOUT_S` (30 s) to send a body; a file over `AIMASS_MAX_FILE_BYTES` (512 MiB)\n"
        "is a 413, on Lambda the 6 MiB body limit comes first, and a recording is transcribed up to 30 minutes.\n"
        'A plan: `free` 2/s; the history says "p95 3.2 ms, within 1.00% errors". You need Python 3.11; 16 rows.\n'
        "One keep-alive HTTP/1.1 connection; goal: ≥ 0.95x the engine, ≤ 1.3x its cold start.\n"
    )
    assert problems(text, "README.md", repo) == []


def test_a_table_row_is_measured_by_its_column_units_and_cites_through_the_paragraph_above(repo: Path) -> None:
    # GIVEN a table whose columns carry units, introduced by a paragraph that cites the record
    text = (
        "One stream, measured (`bench/records/llm.json`):\n\n"
        "| | tokens/s | peak MB | streams |\n|---|---:|---:|---:|\n"
        "| HTTP | 106.7 | 1,141 | 1 |\n"
        "| engine | 99 | 1,141 | 16 |\n"
    )
    # WHEN it is checked, THEN the cells under units are figures, the count column is not, and 99 is untraced
    rows = [block for block in blocks(text) if block.kind == "row"]
    assert [[match.group(0) for match in measured(row)] for row in rows] == [["106.7", "1,141"], ["99", "1,141"]]
    assert [problem.split(": ")[1] for problem in problems(text, "README.md", repo)] == [
        "99 is in none of bench/records/llm.json at the precision written"
    ]


def test_a_model_card_citation_reads_the_cards_sources() -> None:
    text = "Quality: accuracy of the held-out speakers 0.98 ([model card](models/speech/commands/MODEL_CARD.md))."
    assert problems(text, "README.md") == []
    assert problems(text.replace("0.98", "0.12"), "README.md") != []


def test_the_command_exits_1_naming_an_untraced_figure_and_0_on_the_readmes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "PAGE.md"
    page.write_text("# Speed\n\nIt answers in 3.65 ms.\n")
    assert main([str(page)]) == 1
    assert f"{page}:3: 3.65 ms measured" in capsys.readouterr().out
    assert main(list(DOCUMENTS)) == 0
