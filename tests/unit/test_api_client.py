"""The CLI's client of a deployment, over httpx's mock transport: uploads in parts (and parts sent again), pages,
and failures turned into messages that say what went wrong and where."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from aimass_tools import api_client
from aimass_tools.api_client import AimassClient, ApiError

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, key: str | None = "am_key") -> AimassClient:
    pauses: list[float] = []
    return AimassClient(
        "https://api.example/prod/v1/", key, transport=httpx.MockTransport(handler), sleep=pauses.append
    )


def part_of(request: httpx.Request) -> bytes:
    """The content of the multipart field ``data`` (the only part a part upload sends)."""
    body = request.read()
    boundary = re.search(rb"boundary=([^;]+)", request.headers["content-type"].encode())
    assert boundary is not None
    for section in body.split(b"--" + boundary[1]):
        if b'name="data"' in section:
            return section.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
    raise AssertionError("no data field")


class UploadsServer:
    """An Uploads API that fails the first tries of some parts."""

    def __init__(self, fail: dict[int, list[int]]) -> None:
        self.fail = fail  # part number (from 1, in arrival order of its content) -> statuses to answer first
        self.parts: dict[str, bytes] = {}
        self.declared: dict[str, Any] = {}
        self.completed: list[str] = []
        self.sent: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith("/prod/v1/") and request.headers["authorization"] == "Bearer am_key"
        if path == "/prod/v1/uploads":
            self.declared = json.loads(request.content)
            return httpx.Response(200, json={"id": "upload_1", "object": "upload", "status": "pending"})
        if path == "/prod/v1/uploads/upload_1/parts":
            data = part_of(request)
            self.sent.append(data)
            number = data[0] - ord("a") + 1  # each test part starts with its own letter
            if self.fail.get(number):
                status = self.fail[number].pop(0)
                return httpx.Response(status, json={"error": {"message": f"part {number} lost"}})
            part_id = f"part_{len(self.parts)}"
            self.parts[part_id] = data
            return httpx.Response(200, json={"id": part_id, "object": "upload.part"})
        if path == "/prod/v1/uploads/upload_1/complete":
            self.completed = json.loads(request.content)["part_ids"]
            file = {"id": "file-x", "bytes": sum(len(self.parts[p]) for p in self.completed)}
            return httpx.Response(200, json={"id": "upload_1", "status": "completed", "file": file})
        return httpx.Response(404, json={"error": {"message": f"no route {path}"}})


@pytest.fixture
def large(tmp_path: Path) -> tuple[Path, bytes]:
    content = b"".join(bytes([ord("a") + n]) * 10 for n in range(5))  # five parts of 10 bytes: a..., b..., ...
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    return path, content


def test_a_large_file_goes_in_parts_and_failed_parts_are_sent_again(large: tuple[Path, bytes]) -> None:
    path, content = large
    server = UploadsServer({2: [503], 4: [502, 429]})
    moved: list[int] = []
    with client(server) as api:
        uploaded = api.upload(path, multipart_over=16, part_size=10, progress=lambda _, n, total: moved.append(n))
    assert uploaded == {"id": "file-x", "bytes": 50}
    assert server.declared == {
        "filename": "input.jsonl",
        "purpose": "batch",
        "bytes": 50,
        "mime_type": "application/jsonl",
    }
    assert b"".join(server.parts[part_id] for part_id in server.completed) == content
    assert len(server.sent) == 8 and sum(moved) == 50  # five parts, three of them again; each counted once


def test_a_part_refused_for_good_ends_the_upload_naming_it(large: tuple[Path, bytes]) -> None:
    path, _ = large
    server = UploadsServer({3: [400]})
    with client(server) as api, pytest.raises(ApiError) as failed:
        api.upload(path, multipart_over=16, part_size=10)
    assert failed.value.message == "upload upload_1: part(s) 3 failed: part 3 lost (HTTP 400)"
    assert not server.completed and len(server.sent) == 5


def test_parts_that_keep_failing_end_the_upload(large: tuple[Path, bytes]) -> None:
    path, _ = large
    server = UploadsServer({1: [503] * 10, 5: [503] * 10})
    with client(server) as api, pytest.raises(ApiError) as failed:
        api.upload(path, multipart_over=16, part_size=10)
    assert failed.value.message.startswith("upload upload_1: part(s) 1, 5 failed: part 1 lost (HTTP 503)")
    assert len(server.sent) == 5 + 2 * (api_client.PART_ROUNDS - 1)


def test_a_small_file_is_one_form_with_a_known_length(large: tuple[Path, bytes]) -> None:
    path, content = large
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json={"id": "file-y"})

    moved: list[int] = []
    with client(handler) as api:
        assert api.upload(path, progress=lambda _, n, total: moved.append(n))["id"] == "file-y"
    (request,) = seen
    assert request.url.path == "/prod/v1/files" and int(request.headers["content-length"]) > len(content)
    assert b'name="purpose"\r\n\r\nbatch' in request.content and content in request.content
    assert sum(moved) == len(content)


def test_file_pages_are_followed() -> None:
    pages = {None: (["file-1", "file-2"], True), "file-2": (["file-3"], False)}

    def handler(request: httpx.Request) -> httpx.Response:
        ids, more = pages[request.url.params.get("after")]
        data = [{"id": file_id} for file_id in ids]
        return httpx.Response(200, json={"data": data, "has_more": more, "last_id": ids[-1]})

    with client(handler) as api:
        assert [found["id"] for found in api.files()] == ["file-1", "file-2", "file-3"]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(404, json={"error": {"message": "no file 'file-z'", "type": "invalid_request_error",
                                                "code": "not_found", "param": "file_id"}, "request_id": "req-1"}),
            "no file 'file-z' (HTTP 404, request req-1)",
        ),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "GET /prod/v1/files/file-z answered HTTP 502: <html>"),
        (httpx.Response(500), "GET /prod/v1/files/file-z answered HTTP 500: Internal Server Error"),
    ],
)  # fmt: skip
def test_error_answers_become_messages(response: httpx.Response, message: str) -> None:
    with client(lambda _: response) as api, pytest.raises(ApiError) as failed:
        api.file("file-z")
    assert failed.value.message.startswith(message) and failed.value.status == response.status_code


def test_an_unreachable_server_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with client(refuse) as api, pytest.raises(ApiError) as failed:
        list(api.batches())
    assert failed.value.message == "cannot reach AI Mass at https://api.example/prod: Connection refused"


def test_no_key_sends_no_authorization() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(200, json={"id": "batch_1", "status": "cancelling"})

    with client(handler, key=None) as api:
        assert api.cancel_batch("batch_1")["status"] == "cancelling"
