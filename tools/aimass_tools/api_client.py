"""A client of an AI Mass deployment's Files, Uploads and Batch APIs (OpenAI's shapes), for the ``aimass`` CLI.

Every failure is an ``ApiError`` whose message is fit to print: the server's own error message (AI Mass
answers ``{"error": {"message", "type", "code", "param"}, "request_id"}``) with the HTTP status and the
request id, or, when nothing answered, the base URL that could not be reached. The transport is injectable
(``httpx.MockTransport`` in unit tests).

A file over ``multipart_over`` bytes goes through the Uploads API in parts of ``part_size`` bytes: a part
that fails for a reason that may pass (a lost connection, a 429 or 5xx answer) is sent again, up to
``PART_ROUNDS`` rounds, before the upload is completed with every part in order.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, BinaryIO

import httpx

from aimass.errors import AimassError

# (name shown, bytes just moved, bytes in all), the shape of aimass_tools.cli.common.transfer_progress.
Progress = Callable[[str, int, int], None]
MULTIPART_OVER = 64 * 1024 * 1024
# A part, its form and base64 (API Gateway's encoding of binary bodies) fit the 6 MiB a Lambda request carries.
PART_SIZE = 4 * 1024 * 1024
PART_ROUNDS = 4
PARALLEL_PARTS = 4
# Answers worth asking again: the server was busy or failed, not the request.
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ApiError(AimassError):
    """A request that failed; ``status`` is the HTTP status, None when no answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in _TRANSIENT


def _ignore(name: str, amount: int, total: int) -> None:
    return None


class AimassClient:
    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sleep = sleep  # the pause before parts are sent again
        # An OpenAI-style base URL (".../v1") names the same deployment; every path here starts with /v1.
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=_TIMEOUT, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AimassClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # One place that sends, so every call reports failures the same way.
    def call(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        _raise_for(response)
        return response.json() if response.content else None

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(f"cannot reach AI Mass at {self.base_url}: {exc or type(exc).__name__}")

    # Files

    def upload(
        self,
        path: Path,
        *,
        purpose: str = "batch",
        filename: str | None = None,
        progress: Progress = _ignore,
        multipart_over: int = MULTIPART_OVER,
        part_size: int = PART_SIZE,
    ) -> dict[str, Any]:
        """Upload ``path`` (named ``filename``); the file object. Large files go in parts (Uploads API)."""
        name = filename or path.name
        size = path.stat().st_size
        if size > multipart_over:
            return self._upload_in_parts(path, name, size, purpose, progress, part_size)
        with path.open("rb") as stream:
            counted = _Counted(stream, lambda amount: progress(name, amount, size))
            files = {"file": (name, counted, _mime_type(name))}
            uploaded: dict[str, Any] = self.call("POST", "/v1/files", files=files, data={"purpose": purpose})
        return uploaded

    def _upload_in_parts(
        self, path: Path, name: str, size: int, purpose: str, progress: Progress, part_size: int
    ) -> dict[str, Any]:
        body = {"filename": name, "purpose": purpose, "bytes": size, "mime_type": _mime_type(name)}
        upload_id = str(self.call("POST", "/v1/uploads", json=body)["id"])
        offsets = list(range(0, size, part_size)) or [0]
        part_ids: dict[int, str] = {}
        failures: dict[int, ApiError] = {}

        def send(index: int) -> None:
            with path.open("rb") as stream:
                stream.seek(offsets[index])
                data = stream.read(part_size)
            try:
                files = {"data": (f"{name}.part{index + 1}", data, "application/octet-stream")}
                part_ids[index] = str(self.call("POST", f"/v1/uploads/{upload_id}/parts", files=files)["id"])
            except ApiError as exc:
                failures[index] = exc
                return
            failures.pop(index, None)
            progress(name, len(data), size)

        pending = list(range(len(offsets)))
        for round_ in range(PART_ROUNDS):
            if round_:
                self._sleep(min(2.0**round_, 10.0))
            with ThreadPoolExecutor(PARALLEL_PARTS) as pool:
                list(pool.map(send, pending))
            lasting = [index for index in pending if index in failures and not failures[index].transient]
            if lasting:
                raise _part_error(upload_id, lasting, failures)
            pending = sorted(failures)
            if not pending:
                break
        if pending:
            raise _part_error(upload_id, pending, failures)
        ordered = [part_ids[index] for index in range(len(offsets))]
        completed = self.call("POST", f"/v1/uploads/{upload_id}/complete", json={"part_ids": ordered})
        uploaded: dict[str, Any] = completed["file"]
        return uploaded

    def files(self, purpose: str | None = None) -> Iterator[dict[str, Any]]:
        """Every file of the caller's tenant, newest first, page by page."""
        params: dict[str, str] = {"order": "desc"} | ({"purpose": purpose} if purpose else {})
        while True:
            page = self.call("GET", "/v1/files", params=params)
            yield from page["data"]
            if not page.get("has_more") or not page.get("last_id"):
                return
            params["after"] = page["last_id"]

    def file(self, file_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/v1/files/{file_id}")
        return found

    def download(self, file_id: str, sink: IO[bytes], *, name: str = "", progress: Progress = _ignore) -> int:
        """Stream ``file_id``'s content into ``sink``; the bytes written."""
        written = 0
        try:
            with self._http.stream("GET", f"/v1/files/{file_id}/content") as response:
                if response.is_error:
                    response.read()
                    _raise_for(response)
                total = int(response.headers.get("content-length", 0))
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
                    progress(name or file_id, len(chunk), total)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return written

    def delete_file(self, file_id: str) -> None:
        self.call("DELETE", f"/v1/files/{file_id}")

    def share(self, file_id: str, tenant: str) -> dict[str, Any]:
        shared: dict[str, Any] = self.call("POST", f"/v1/files/{file_id}/shares", json={"tenant": tenant})
        return shared

    def unshare(self, file_id: str, tenant: str) -> None:
        self.call("DELETE", f"/v1/files/{file_id}/shares/{tenant}")

    def shares(self, file_id: str) -> list[dict[str, Any]]:
        listed = self.call("GET", f"/v1/files/{file_id}/shares")
        data: list[dict[str, Any]] = listed["data"] if isinstance(listed, dict) else listed
        return data

    # Batches

    def create_batch(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {"input_file_id": input_file_id, "endpoint": endpoint, "completion_window": "24h"}
        if metadata:
            body["metadata"] = metadata
        created: dict[str, Any] = self.call("POST", "/v1/batches", json=body)
        return created

    def batch(self, batch_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/v1/batches/{batch_id}")
        return found

    def batches(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The caller's batches, newest first, page by page (at most ``limit``)."""
        params: dict[str, str] = {}
        given = 0
        while True:
            page = self.call("GET", "/v1/batches", params=params)
            for batch in page["data"]:
                if limit is not None and given >= limit:
                    return
                given += 1
                yield batch
            if not page.get("has_more") or not page.get("last_id"):
                return
            params["after"] = page["last_id"]

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        cancelled: dict[str, Any] = self.call("POST", f"/v1/batches/{batch_id}/cancel")
        return cancelled


def _raise_for(response: httpx.Response) -> None:
    if not response.is_error:
        return
    where = f"HTTP {response.status_code}"
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        message = str(document["error"].get("message") or "no message")
        if document.get("request_id"):
            where += f", request {document['request_id']}"
        raise ApiError(f"{message} ({where})", response.status_code)
    text = " ".join(response.text.split())[:200] or response.reason_phrase
    raise ApiError(
        f"{response.request.method} {response.request.url.path} answered {where}: {text}", response.status_code
    )


def _part_error(upload_id: str, indexes: list[int], failures: dict[int, ApiError]) -> ApiError:
    numbers = ", ".join(str(index + 1) for index in indexes)
    return ApiError(
        f"upload {upload_id}: part(s) {numbers} failed: {failures[indexes[0]].message}", failures[indexes[0]].status
    )


def _mime_type(name: str) -> str:
    if name.lower().endswith(".jsonl"):
        return "application/jsonl"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Counted:
    """A file that reports each read, so that a streamed multipart upload can drive a progress bar.

    ``fileno`` is passed through so that httpx learns the size without reading (a Content-Length, not chunks).
    """

    def __init__(self, stream: BinaryIO, report: Callable[[int], None]) -> None:
        self._stream = stream
        self._report = report

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._report(len(data))
        return data

    def fileno(self) -> int:
        return self._stream.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()
