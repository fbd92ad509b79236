"""Validating a batch's input file: count its lines, find where its shards start, refuse duplicate custom_ids.

One pass over the file, streamed (no more than a line and a chunk held). A shard boundary is the offset of
every ``shard_lines``-th line (blank lines are no requests and count as none), so each shard has
``shard_lines`` lines but the last. Lines are not checked
further here: a malformed line is answered in the error file by the worker, and the rest proceeds. Only
what would make the output ambiguous fails the whole batch (a custom_id used twice: the output could not
be joined back to the input), a file over ``max_lines`` lines, or a line over ``max_line_bytes`` (a request
no route would read, and a line a worker would have to hold whole).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from aimass.batches.lines import custom_id_of
from aimass.batches.model import BatchError

MOST_ERRORS = 10  # OpenAI lists a few; enough to fix the file


@dataclass(frozen=True)
class Scanned:
    lines: int
    offsets: tuple[int, ...]  # each shard's first byte; the file's size last
    errors: tuple[BatchError, ...]


def scan(chunks: Iterator[bytes], *, shard_lines: int, max_lines: int, max_line_bytes: int) -> Scanned:
    offsets = [0]
    seen: dict[bytes, int] = {}  # a digest of each custom_id: 16 bytes a line, whatever the id's length
    errors: list[BatchError] = []
    lines = 0
    position = 0  # offset of the start of ``rest``
    rest = b""
    for chunk in chunks:
        rest += chunk
        start = 0
        while (end := rest.find(b"\n", start)) >= 0:
            lines = _line(rest[start:end], position + start, lines, offsets, seen, errors, shard_lines)
            start = end + 1
        position += start
        rest = rest[start:]
        if lines > max_lines:
            break
        if len(rest) > max_line_bytes:
            errors.insert(0, _too_long(lines, max_line_bytes))
            return Scanned(lines, (0, position + len(rest)), tuple(errors[:MOST_ERRORS]))
    if len(rest) > max_line_bytes:
        errors.insert(0, _too_long(lines, max_line_bytes))
    if rest:
        lines = _line(rest, position, lines, offsets, seen, errors, shard_lines)
    size = position + len(rest)
    if lines > max_lines:
        errors.insert(0, BatchError("too_many_lines", f"the input file has more than {max_lines} lines"))
    elif lines == 0:
        errors.append(BatchError("empty_file", "the input file has no request lines"))
    return Scanned(lines, (*offsets, size), tuple(errors[:MOST_ERRORS]))


def _too_long(lines: int, limit: int) -> BatchError:
    return BatchError(
        "line_too_long", f"line {lines + 1} is longer than {limit} bytes, the most one request may be", line=lines + 1
    )


def _line(
    raw: bytes,
    offset: int,
    lines: int,
    offsets: list[int],
    seen: dict[bytes, int],
    errors: list[BatchError],
    shard_lines: int,
) -> int:
    if not raw.strip():
        return lines  # blank lines are no requests (aimass.batches.lines.split_lines skips them too)
    if lines and lines % shard_lines == 0:
        offsets.append(offset)
    custom_id = custom_id_of(raw)
    if custom_id is not None:
        digest = hashlib.blake2b(custom_id.encode(), digest_size=16).digest()
        first = seen.setdefault(digest, lines)
        if first != lines and len(errors) < MOST_ERRORS:
            errors.append(
                BatchError(
                    "duplicate_custom_id",
                    f"custom_id {custom_id!r} of line {lines + 1} is also line {first + 1}'s; each must be unique",
                    line=lines + 1,
                    param="custom_id",
                )
            )
    return lines + 1
