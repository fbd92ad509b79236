"""Batch inputs built from texts, images and audio files: the lines, their custom ids, and refusals that name
the option at fault."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from aimass_tools.batch_input import (
    CLASSIFY,
    EMBEDDINGS,
    TRANSCRIPTIONS,
    BadInput,
    audio_lines,
    image_lines,
    text_lines,
    walk_files,
    write_jsonl,
)


def written(lines: Any) -> list[dict[str, Any]]:
    """The lines as they land in the file: one JSON document per line."""
    stream = io.BytesIO()
    count = write_jsonl(lines, stream)
    parsed = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    assert len(parsed) == count
    return parsed


def test_texts_are_grouped_per_line_with_line_numbers(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("".join(f"text {n}\n" for n in range(1, 6)) + "\n   \n")
    lines = written(text_lines(source, model="m", per_line=2))
    assert [line["custom_id"] for line in lines] == ["line-1", "line-2", "line-3"]
    assert [line["body"]["input"] for line in lines] == [["text 1", "text 2"], ["text 3", "text 4"], ["text 5"]]
    assert all(line["method"] == "POST" and line["url"] == EMBEDDINGS for line in lines)
    assert all(line["body"]["model"] == "m" for line in lines)


def test_a_csv_column_and_its_ids(tmp_path: Path) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text('id,text,stars\nr1,"great, really",5\nr2,"line one\nline two",2\n', encoding="utf-8")
    by_line = written(text_lines(source, model="m", column="text"))
    assert by_line == [
        {"custom_id": "line-1", "method": "POST", "url": EMBEDDINGS,
         "body": {"model": "m", "input": ["great, really", "line one\nline two"]}},
    ]  # fmt: skip
    by_id = written(text_lines(source, model="m", per_line=1, column="text", id_column="id"))
    assert [(line["custom_id"], line["body"]["input"]) for line in by_id] == [
        ("r1", ["great, really"]),
        ("r2", ["line one\nline two"]),
    ]


def test_a_one_column_csv_needs_no_column_and_a_bom_is_not_part_of_its_name(tmp_path: Path) -> None:
    source = tmp_path / "texts.csv"
    source.write_bytes("\ufeffsentence\nhello\nworld\n".encode())
    assert written(text_lines(source, model="m"))[0]["body"]["input"] == ["hello", "world"]


@pytest.mark.parametrize(
    ("content", "options", "option", "reason"),
    [
        ("", {}, "--texts", "holds no texts"),
        ("\n\n", {}, "--texts", "holds no texts"),
        ("a\n", {"per_line": 0}, "--per-line", "--per-line must be at least 1, got 0"),
        ("a\n", {"column": "text"}, "--column", "--column applies to a .csv file"),
    ],
)
def test_bad_text_files_name_the_option(
    tmp_path: Path, content: str, options: dict[str, Any], option: str, reason: str
) -> None:
    source = tmp_path / "texts.txt"
    source.write_text(content)
    with pytest.raises(BadInput) as refused:
        written(text_lines(source, model="m", **options))
    assert refused.value.option == option and reason in refused.value.message


@pytest.mark.parametrize(
    ("content", "options", "option", "reason"),
    [
        ("id,text\n", {"column": "text"}, "--texts", "holds no texts"),
        ("", {}, "--texts", "not even a header row"),
        ("id,text\n1,a\n", {}, "--column", "has 2 columns (id, text): name one with --column"),
        ("id,text\n1,a\n", {"column": "body"}, "--column", "has no column 'body'; its columns: id, text"),
        ("id,text\n1,a\n", {"column": "text", "id_column": "key", "per_line": 1}, "--id-column", "no column 'key'"),
        ("id,text\n1,a\n2,\n", {"column": "text"}, "--column", "row 3: column 'text' is empty"),
        ("id,text\n1,a\n1,b\n", {"column": "text", "id_column": "id", "per_line": 1}, "--id-column", "appears twice"),
        ("id,text\n,a\n", {"column": "text", "id_column": "id", "per_line": 1}, "--id-column", "row 2: column 'id'"),
        ("id,text\n1,a\n", {"column": "text", "id_column": "id"}, "--id-column", "give --per-line 1"),
    ],
)
def test_bad_csv_files_name_the_option(
    tmp_path: Path, content: str, options: dict[str, Any], option: str, reason: str
) -> None:
    source = tmp_path / "texts.csv"
    source.write_text(content)
    with pytest.raises(BadInput) as refused:
        written(text_lines(source, model="m", **options))
    assert refused.value.option == option and reason in refused.value.message


def test_a_missing_text_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as refused:
        written(text_lines(tmp_path / "nope.txt", model="m"))
    assert refused.value.option == "--texts" and "cannot read" in refused.value.message


def images(folder: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    made: dict[str, bytes] = {}
    for name, count in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        made[name] = bytes([len(made)]) * count
        path.write_bytes(made[name])
    return made


def test_images_a_few_per_line_in_path_order_with_their_paths_as_id(tmp_path: Path) -> None:
    made = images(tmp_path, {"b/2.png": 10, "a/1.jpg": 10, "c.webp": 10, "d.GIF": 10, "notes.txt": 5, ".x.png": 3})
    lines = written(image_lines(tmp_path, model="vit", top_k=3, per_line=3))
    assert [line["custom_id"] for line in lines] == ["a/1.jpg|b/2.png|c.webp", "d.GIF"]
    assert all(line["url"] == CLASSIFY and set(line["body"]) == {"model", "images", "top_k"} for line in lines)
    assert lines[0]["body"]["top_k"] == 3 and lines[0]["body"]["model"] == "vit"
    decoded = [base64.b64decode(image) for image in lines[0]["body"]["images"]]
    assert decoded == [made["a/1.jpg"], made["b/2.png"], made["c.webp"]]


def test_a_line_of_images_stays_within_its_byte_budget(tmp_path: Path) -> None:
    images(tmp_path, {"1.png": 60, "2.png": 60, "3.png": 200, "4.png": 10})
    lines = written(image_lines(tmp_path, model="m", per_line=8, max_line_bytes=128))
    # An image larger than the budget still goes, alone.
    assert [line["custom_id"] for line in lines] == ["1.png|2.png", "3.png", "4.png"]


def test_links_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    images(outside, {"secret.png": 4, "more/deep.png": 4})
    folder = tmp_path / "in"
    images(folder, {"own.png": 4, "sub/other.png": 4})
    (folder / "escape.png").symlink_to(outside / "secret.png")
    (folder / "escape-dir").symlink_to(outside / "more", target_is_directory=True)
    (folder / "alias.png").symlink_to(folder / "sub" / "other.png")
    (folder / "dangling.png").symlink_to(tmp_path / "missing.png")
    found = [name for name, _ in walk_files(folder, frozenset({".png"}), "--images")]
    assert found == ["alias.png", "own.png", "sub/other.png"]


def test_a_path_with_the_separator_is_refused(tmp_path: Path) -> None:
    images(tmp_path, {"a|b.png": 4})
    with pytest.raises(BadInput) as refused:
        written(image_lines(tmp_path, model="m"))
    assert refused.value.option == "--images" and "rename the file" in refused.value.message


@pytest.mark.parametrize("builder", ["images", "audio"])
def test_folders_that_are_missing_or_hold_nothing_are_named(tmp_path: Path, builder: str) -> None:
    images(tmp_path / "empty", {"readme.md": 3})
    for folder, reason in ((tmp_path / "missing", "is not a folder"), (tmp_path / "empty", "holds no")):
        lines = image_lines(folder, model="m") if builder == "images" else audio_lines(folder, model="m")
        with pytest.raises(BadInput) as refused:
            written(lines)
        assert refused.value.option == f"--{builder}" and reason in refused.value.message


def test_audio_one_file_a_line_as_json(tmp_path: Path) -> None:
    made = images(tmp_path, {"day1/a.wav": 44, "b.FLAC": 8, "c.mp3": 9, "d.png": 3})
    lines = written(audio_lines(tmp_path, model="whisper"))
    assert [line["custom_id"] for line in lines] == ["b.FLAC", "c.mp3", "day1/a.wav"]
    body = lines[2]["body"]
    assert lines[2]["url"] == TRANSCRIPTIONS and body["model"] == "whisper" and body["response_format"] == "json"
    assert base64.b64decode(body["file"]) == made["day1/a.wav"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    images(tmp_path, {"a.wav": 4})
    (tmp_path / "a.wav").chmod(0)
    with pytest.raises(BadInput) as refused:
        written(audio_lines(tmp_path, model="m"))
    assert refused.value.option == "--audio" and "cannot read" in refused.value.message
