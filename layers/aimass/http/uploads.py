"""OpenAI's Uploads API: a large file in parts, resumable, so the OpenAI SDK's ``client.uploads`` works.

    POST /v1/uploads                       {filename, purpose ("batch", "model"), bytes, mime_type}: a pending upload
    POST /v1/uploads/{upload_id}/parts     multipart form: data (at most 64 MiB): a new part
    POST /v1/uploads/{upload_id}/complete  {part_ids (in order), md5 (optional)}: the upload, with its file
    POST /v1/uploads/{upload_id}/cancel

The rules are ``aimass.files.uploads``'; this module parses and answers. An upload is its tenant's alone:
another tenant's upload id is the same 404 as an unknown one. ``bytes`` is at most ``AIMASS_MAX_FILE_BYTES``
(a 413 naming it) and must be the listed parts' sum at completion (a 400 naming it). ``expires_after`` is
accepted, as the SDK may send it, and has no effect: a file is kept until it is deleted.

The local server reads a part's body up to 64 MiB and its form (``part_body_limit``); on Lambda the request
body limit (6 MiB) bounds a part first, so a client there sends parts of 6 MiB or less.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from aimass.errors import InvalidInput, NotFound
from aimass.files.base import FileRecord, FileStore
from aimass.files.factory import open_uploads
from aimass.files.uploads import PART_MAX_BYTES, UPLOAD_PREFIX, UploadRecord, Uploads, is_id
from aimass.http.dependencies import json_body
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.files import (
    FORM_OVERHEAD_BYTES,
    MAX_FILENAME,
    PURPOSES,
    FileObject,
    file_object,
    multipart_body,
    tenant_of,
)
from aimass.schema import Schema
from aimass.settings import Settings

PARTS_PATH = "/v1/uploads/{upload_id}/parts"
MAX_MIME_TYPE = 255
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_UPLOAD_ID_DOC = {"pattern": f"^{UPLOAD_PREFIX}[A-Za-z0-9]{{24}}$"}


def part_body_limit(settings: Settings) -> int:
    """The largest body ``POST /v1/uploads/{upload_id}/parts`` reads on the local server: a part and its form."""
    return max(settings.max_body_bytes, min(PART_MAX_BYTES, settings.max_file_bytes) + FORM_OVERHEAD_BYTES)


class CreateUpload(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    filename: str = Field(description=f"the file's name, 1 to {MAX_FILENAME} characters")
    purpose: str = Field(
        description="what the file is for: batch (a Batch API input), model (a model to import)",
        json_schema_extra={"enum": list(PURPOSES)},
    )
    bytes: int = Field(description="the file's size: what the parts will add up to (at most AIMASS_MAX_FILE_BYTES)")
    mime_type: str = Field(description=f"the file's MIME type, 1 to {MAX_MIME_TYPE} characters")
    expires_after: dict[str, Any] | None = Field(default=None, description="accepted for OpenAI's clients; no effect")


class CompleteUpload(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    part_ids: list[str] = Field(description="the parts that make the file, in their order")
    md5: str | None = Field(default=None, description="the file's md5 (32 hex digits), checked before the file is made")


class PartUrlRequest(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    bytes: int = Field(description=f"the part's exact size, 1 to {PART_MAX_BYTES} (and at most the upload's)")


class PartUrlObject(Schema):
    id: str = Field(description="the part's id, to list at completion once its bytes are PUT")
    object: Literal["upload.part.url"] = "upload.part.url"
    upload_id: str
    method: Literal["PUT"] = "PUT"
    url: str = Field(description="where to PUT the part's bytes, with exactly this Content-Length")
    bytes: int
    expires_at: int


class UploadObject(Schema):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: Literal["pending", "completed", "cancelled", "expired"]
    file: FileObject | None = None


class PartObject(Schema):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str


UploadId = Annotated[str, Path(json_schema_extra=_UPLOAD_ID_DOC)]


def uploads_router(store: FileStore, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["Uploads"])
    uploads = Uploads(store, open_uploads(store), max_file_bytes=settings.max_file_bytes)
    with_body = responses(*BODY, NotFound, *KEYED)

    def answer(record: UploadRecord, file: FileRecord | None = None) -> UploadObject:
        return UploadObject(
            id=record.id,
            bytes=record.size,
            created_at=record.created_at,
            expires_at=record.expires_at,
            filename=record.filename,
            purpose=record.purpose,
            status=uploads.status(record),
            file=file_object(file) if file is not None else None,
        )

    @router.post(
        "/uploads",
        summary="Start an upload in parts",
        response_model=UploadObject,
        dependencies=[Depends(json_body)],
        responses=responses(*BODY, *KEYED),
    )
    def create(request: Request, body: CreateUpload) -> UploadObject:
        tenant = tenant_of(request)
        if body.purpose not in PURPOSES:
            raise InvalidInput(
                f"purpose must be one of {', '.join(PURPOSES)} (files a client uploads), got {body.purpose!r}",
                param="purpose",
            )
        if not 1 <= len(body.filename) <= MAX_FILENAME:
            raise InvalidInput(
                f"filename must be 1 to {MAX_FILENAME} characters, got {len(body.filename)}", param="filename"
            )
        if not 1 <= len(body.mime_type) <= MAX_MIME_TYPE:
            raise InvalidInput(
                f"mime_type must be 1 to {MAX_MIME_TYPE} characters, got {len(body.mime_type)}", param="mime_type"
            )
        if body.bytes < 1:
            raise InvalidInput(f"bytes must be a whole number of at least 1, got {body.bytes}", param="bytes")
        record = uploads.create(
            tenant, filename=body.filename, purpose=body.purpose, size=body.bytes, mime_type=body.mime_type
        )
        return answer(record)

    @router.post(
        "/uploads/{upload_id}/parts",
        summary="Add a part to an upload",
        response_model=PartObject,
        dependencies=[Depends(multipart_body)],
        responses=with_body,
    )
    async def add_part(
        request: Request,
        upload_id: UploadId,
        data: Annotated[UploadFile, File(description=f"the part's bytes, at most {PART_MAX_BYTES}")],
    ) -> PartObject:
        tenant = tenant_of(request)
        _check_id(upload_id)
        part_id, created_at = await run_in_threadpool(uploads.add_part, tenant, upload_id, data.file)
        return PartObject(id=part_id, created_at=created_at, upload_id=upload_id)

    @router.post(
        "/uploads/{upload_id}/parts/url",
        summary="A URL to PUT a part to, straight to storage",
        response_model=PartUrlObject,
        dependencies=[Depends(json_body)],
        responses=with_body,
    )
    def part_url(request: Request, upload_id: UploadId, body: PartUrlRequest) -> PartUrlObject:
        """On AWS a part's bytes may skip the API (and its 6 MiB request limit): the part's id and a presigned
        URL of storage come back, the bytes are PUT there, and the part counts as one sent to ``/parts``."""
        tenant = tenant_of(request)
        _check_id(upload_id)
        part_id, url, expires_at = uploads.part_url(tenant, upload_id, body.bytes)
        return PartUrlObject(id=part_id, upload_id=upload_id, url=url, bytes=body.bytes, expires_at=expires_at)

    @router.post(
        "/uploads/{upload_id}/complete",
        summary="Complete an upload: its parts, in order, become a file",
        response_model=UploadObject,
        dependencies=[Depends(json_body)],
        responses=with_body,
    )
    def complete(request: Request, upload_id: UploadId, body: CompleteUpload) -> UploadObject:
        tenant = tenant_of(request)
        _check_id(upload_id)
        if body.md5 is not None and not _MD5.fullmatch(body.md5):
            raise InvalidInput(f"md5 must be 32 hexadecimal digits, got {body.md5!r}", param="md5")
        record, file = uploads.complete(tenant, upload_id, body.part_ids, body.md5)
        return answer(record, file)

    @router.post(
        "/uploads/{upload_id}/cancel",
        summary="Cancel an upload",
        response_model=UploadObject,
        responses=responses(InvalidInput, NotFound, *KEYED),
    )
    def cancel(request: Request, upload_id: UploadId) -> UploadObject:
        tenant = tenant_of(request)
        _check_id(upload_id)
        return answer(uploads.cancel(tenant, upload_id))

    return router


def _check_id(upload_id: str) -> None:
    if not is_id(upload_id, UPLOAD_PREFIX):
        raise InvalidInput(
            f"upload_id must be an upload id ('{UPLOAD_PREFIX}' and 24 of A-Z, a-z, 0-9), got {upload_id!r}",
            param="upload_id",
        )
