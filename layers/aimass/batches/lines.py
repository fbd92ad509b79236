"""The JSONL line formats of OpenAI's Batch API: a request line in, a result line out.

In: ``{"custom_id": "...", "method": "POST", "url": "/v1/embeddings", "body": {...}}``, one per line.

Out, in the output file for a 2xx answer and in the error file for any other:
``{"id": "batch_req_...", "custom_id": "...", "response": {"status_code", "request_id", "body"}, "error": null}``;
and for a line that is no request at all (not JSON, no custom_id, a wrong method or url), in the error file:
``{"id", "custom_id", "response": null, "error": {"code", "message", "line"}}``.

Result lines are assembled from the route's answer bytes as they are (a JSON document): an embeddings answer
is most of the output, and parsing it to write it again would cost more than the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_CUSTOM_ID = 512
METHODS = ("POST",)


@dataclass(frozen=True)
class LineRequest:
    number: int  # 0-based, in the input file
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LineRefusal:
    """A line that is no request: it goes to the error file as is, with the reason."""

    number: int
    custom_id: str | None
    code: str
    message: str


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a stream of chunks, without their end of line; blank lines are skipped (not requests)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if line.strip():
                yield line
    if rest.strip():
        yield rest


def custom_id_of(raw: bytes) -> str | None:
    """The line's custom_id if it is a JSON object with a string one (validation's duplicate check)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get("custom_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def parse_line(raw: bytes, number: int, endpoint: str) -> LineRequest | LineRefusal:
    """Line ``number`` as a request to ``endpoint`` (the batch's), or why it is not one."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return LineRefusal(number, None, "invalid_json_line", f"line {number + 1} is not JSON: {exc}")
    if not isinstance(data, dict):
        return LineRefusal(number, None, "invalid_json_line", f"line {number + 1} is not a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        return LineRefusal(
            number, None, "missing_custom_id", f"line {number + 1}: custom_id must be a string of 1 to {MAX_CUSTOM_ID}"
        )
    method, url, body = data.get("method"), data.get("url"), data.get("body")
    unknown = sorted(set(data) - {"custom_id", "method", "url", "body"})
    if unknown:
        return LineRefusal(number, custom_id, "invalid_request", f"line {number + 1}: unknown fields {unknown}")
    if method not in METHODS:
        return LineRefusal(
            number, custom_id, "invalid_method", f"line {number + 1}: method must be POST, got {method!r}"
        )
    if url != endpoint:
        return LineRefusal(
            number,
            custom_id,
            "invalid_url",
            f"line {number + 1}: url must be the batch's endpoint {endpoint!r}, got {url!r}",
        )
    if not isinstance(body, dict):
        return LineRefusal(number, custom_id, "invalid_request", f"line {number + 1}: body must be a JSON object")
    return LineRequest(number, custom_id, endpoint, body)


def line_id(batch_id: str, number: int) -> str:
    """The result line's id: derived from the batch and the line, so a rerun writes the same line."""
    return f"batch_req_{batch_id.removeprefix('batch_')}_{number}"


def result_line(batch_id: str, number: int, custom_id: str, status: int, request_id: str, body: bytes) -> bytes:
    """The result of a request line; ``body`` is the route's answer, a JSON document."""
    return b"".join(
        (
            b'{"id":',
            _json(line_id(batch_id, number)),
            b',"custom_id":',
            _json(custom_id),
            b',"response":{"status_code":',
            str(status).encode(),
            b',"request_id":',
            _json(request_id),
            b',"body":',
            body,
            b'},"error":null}',
        )
    )


def refusal_line(batch_id: str, refusal: LineRefusal) -> bytes:
    return _json(
        {
            "id": line_id(batch_id, refusal.number),
            "custom_id": refusal.custom_id,
            "response": None,
            "error": {"code": refusal.code, "message": refusal.message, "line": refusal.number + 1},
        }
    )


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
