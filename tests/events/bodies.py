"""Request bodies for the generated events, written the way the clients named in their headers write them."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MEDIA = Path(__file__).parent / "media"


def media(name: str) -> bytes:
    """A file of ``media/``: held-out speakers' recordings (WAV, FLAC, raw float32) and plain-colour PNGs."""
    return (MEDIA / name).read_bytes()


def json_body(document: Any) -> str:
    """JSON as Python's ``json.dumps`` (httpx, the OpenAI SDK) writes it."""
    return json.dumps(document)


def kserve_binary(header: dict[str, Any], *tensors: bytes) -> tuple[bytes, dict[str, str]]:
    """A KServe V2 binary-extension body (JSON header, then each tensor's bytes) and its two headers."""
    head = json.dumps(header).encode()
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return head + b"".join(tensors), headers


def fp32(rows: Sequence[Sequence[float]]) -> bytes:
    return np.asarray(rows, dtype="<f4").tobytes()


def bytes_tensor(items: Sequence[bytes]) -> bytes:
    """A BYTES tensor's binary form: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def multipart(boundary: str, fields: Sequence[tuple[str, str | tuple[str, str, bytes]]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type; a field is text or (file name, media type, bytes)."""
    parts: list[bytes] = []
    for name, value in fields:
        if isinstance(value, str):
            head, content = f'Content-Disposition: form-data; name="{name}"', value.encode()
        else:
            filename, content_type, content = value
            disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
            head = f"{disposition}\r\nContent-Type: {content_type}"
        parts.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
