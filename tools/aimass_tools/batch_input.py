"""A batch's input file built from plain inputs, so nobody writes its JSONL by hand.

Each builder yields the lines of an OpenAI batch input (``{"custom_id", "method", "url", "body"}``) one at a
time, and ``write_jsonl`` writes them to a file as they come: a folder of images or audio is read one line's
files at a time, never whole. ``BadInput`` names the option whose value is wrong.

    texts   a .txt file (one text per line) or a .csv column    → /v1/embeddings, N texts a line
    images  the images under a folder                           → /v1/vision/classify, a few images a line
    audio   the audio files under a folder                      → /v1/audio/transcriptions, one file a line

Folders are walked without leaving them: a symbolic link is followed only when it resolves inside the folder,
so a link to /etc or to a sibling folder never puts outside files into a batch.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

EMBEDDINGS = "/v1/embeddings"
CLASSIFY = "/v1/vision/classify"
TRANSCRIPTIONS = "/v1/audio/transcriptions"

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3"})
TEXTS_PER_LINE = 64
IMAGES_PER_LINE = 4
# The most image bytes packed into one line: base64 makes them 4/3 larger, which keeps a line's body under
# the 6 MiB a synchronous request may carry (the size a batch worker holds a line to as well).
LINE_IMAGE_BYTES = 4 * 1024 * 1024
# Separates the relative paths of a line's images in its custom_id, in the order of the response's outputs.
PATH_SEPARATOR = "|"

Line = dict[str, Any]


class BadInput(ValueError):
    """An input the builders cannot use; ``option`` is the command-line option that named it."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.message = message
        self.option = option


def request_line(custom_id: str, url: str, body: dict[str, Any]) -> Line:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def write_jsonl(lines: Iterable[Line], stream: IO[bytes]) -> int:
    """Write ``lines`` as JSONL to ``stream`` as they are made; the number of lines written."""
    count = 0
    for line in lines:
        stream.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        count += 1
    return count


def text_lines(
    path: Path,
    *,
    model: str,
    per_line: int = TEXTS_PER_LINE,
    column: str | None = None,
    id_column: str | None = None,
) -> Iterator[Line]:
    """``/v1/embeddings`` lines of ``per_line`` texts each, custom_id ``line-<n>`` (n from 1).

    With ``id_column`` (CSV only) every row is its own line and its id is the custom_id, so a result is found
    by the id the caller already has; ids must then be unique and non-empty.
    """
    if per_line < 1:
        raise BadInput(f"--per-line must be at least 1, got {per_line}", "--per-line")
    if id_column is not None and per_line != 1:
        raise BadInput(
            "--id-column makes one request per row (its id is the line's custom_id): give --per-line 1 or leave "
            "--id-column out",
            "--id-column",
        )
    rows = _csv_rows(path, column, id_column) if path.suffix.lower() == ".csv" else _txt_rows(path, column, id_column)
    seen: set[str] = set()
    group: list[str] = []
    number = 0
    for row_id, text in rows:
        if row_id is not None:
            if row_id in seen:
                raise BadInput(f"{path}: id {row_id!r} appears twice in column {id_column!r}", "--id-column")
            seen.add(row_id)
            number += 1
            yield request_line(row_id, EMBEDDINGS, {"model": model, "input": [text]})
            continue
        group.append(text)
        if len(group) == per_line:
            number += 1
            yield request_line(f"line-{number}", EMBEDDINGS, {"model": model, "input": group})
            group = []
    if group:
        number += 1
        yield request_line(f"line-{number}", EMBEDDINGS, {"model": model, "input": group})
    if number == 0:
        raise BadInput(f"{path} holds no texts", "--texts")


def _txt_rows(path: Path, column: str | None, id_column: str | None) -> Iterator[tuple[str | None, str]]:
    if column is not None or id_column is not None:
        option = "--column" if column is not None else "--id-column"
        raise BadInput(f"{option} applies to a .csv file; {path} is read as text, one text per line", option)
    with _open_text(path) as stream:
        for raw in stream:
            text = raw.rstrip("\r\n")
            # Blank lines (a trailing newline, paragraph breaks) are not texts.
            if text.strip():
                yield None, text


def _csv_rows(path: Path, column: str | None, id_column: str | None) -> Iterator[tuple[str | None, str]]:
    with _open_text(path, newline="") as stream:
        reader = csv.DictReader(stream)
        header = reader.fieldnames or []
        if not header:
            raise BadInput(f"{path} holds no texts (not even a header row)", "--texts")
        if column is None:
            if len(header) != 1:
                raise BadInput(
                    f"{path} has {len(header)} columns ({', '.join(header)}): name one with --column", "--column"
                )
            column = header[0]
        for option, name in (("--column", column), ("--id-column", id_column)):
            if name is not None and name not in header:
                raise BadInput(f"{path} has no column {name!r}; its columns: {', '.join(header)}", option)
        for row in reader:
            # Row numbers as a spreadsheet shows them: the header is row 1.
            where = f"{path}, row {reader.line_num}"
            text = row.get(column) or ""
            if not text.strip():
                raise BadInput(f"{where}: column {column!r} is empty (every row needs a text)", "--column")
            row_id = None
            if id_column is not None:
                row_id = (row.get(id_column) or "").strip()
                if not row_id:
                    raise BadInput(f"{where}: column {id_column!r} is empty (every row needs an id)", "--id-column")
            yield row_id, text


def _open_text(path: Path, newline: str | None = None) -> IO[str]:
    try:
        return path.open(encoding="utf-8-sig", newline=newline)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", "--texts") from None


def image_lines(
    folder: Path,
    *,
    model: str,
    top_k: int = 5,
    per_line: int = IMAGES_PER_LINE,
    max_line_bytes: int = LINE_IMAGE_BYTES,
) -> Iterator[Line]:
    """``/v1/vision/classify`` lines of up to ``per_line`` images (and ``max_line_bytes`` of them, unless one
    image alone is larger); custom_id: the images' paths relative to ``folder``, joined by ``|``."""
    if per_line < 1:
        raise BadInput(f"--per-line must be at least 1, got {per_line}", "--per-line")
    group: list[tuple[str, bytes]] = []
    size = 0
    found = False

    def line() -> Line:
        images = [base64.b64encode(data).decode("ascii") for _, data in group]
        custom_id = PATH_SEPARATOR.join(name for name, _ in group)
        return request_line(custom_id, CLASSIFY, {"model": model, "images": images, "top_k": top_k})

    for name, path in walk_files(folder, IMAGE_SUFFIXES, "--images"):
        found = True
        if PATH_SEPARATOR in name:
            raise BadInput(
                f"{path}: a path in a batch of images may not contain {PATH_SEPARATOR!r} (it separates a line's "
                "paths in its custom_id); rename the file",
                "--images",
            )
        data = _read(path, "--images")
        if group and (len(group) == per_line or size + len(data) > max_line_bytes):
            yield line()
            group, size = [], 0
        group.append((name, data))
        size += len(data)
    if group:
        yield line()
    if not found:
        raise BadInput(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})", "--images")


def audio_lines(folder: Path, *, model: str) -> Iterator[Line]:
    """``/v1/audio/transcriptions`` lines, one audio file each, custom_id its path relative to ``folder``.

    The body is JSON with the file in base64: a batch line cannot carry a multipart form, and the batch worker
    makes the form the route reads from it.
    """
    found = False
    for name, path in walk_files(folder, AUDIO_SUFFIXES, "--audio"):
        found = True
        audio = base64.b64encode(_read(path, "--audio")).decode("ascii")
        yield request_line(name, TRANSCRIPTIONS, {"model": model, "file": audio, "response_format": "json"})
    if not found:
        raise BadInput(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})", "--audio")


def walk_files(folder: Path, suffixes: frozenset[str], option: str) -> Iterator[tuple[str, Path]]:
    """(path relative to ``folder`` in POSIX form, path) of every file under ``folder`` with one of
    ``suffixes``, sorted by relative path so that a batch's lines come in the same order every time.

    Linked folders are not entered (a loop, or a way out); a linked file counts only if it resolves to a
    file inside ``folder``.
    """
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder", option)
    root = folder.resolve()
    found: list[tuple[str, Path]] = []
    for current, folders, files in os.walk(root, followlinks=False):
        # Hidden folders (.git, .cache) hold no inputs; pruning them also keeps the walk short.
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            path = Path(current) / name
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                # Read through the link's resolved target, so that the file read is the one checked here.
                path = path.resolve()
                if not path.is_relative_to(root) or not path.is_file():
                    continue
            found.append((relative, path))
    yield from sorted(found)


def _read(path: Path, option: str) -> bytes:
    try:
        # O_NOFOLLOW: a file swapped for a link after the walk checked it is refused, not followed.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(descriptor, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", option) from None
