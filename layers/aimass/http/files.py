"""OpenAI's Files API: upload, list, read and delete a tenant's files, so the OpenAI SDK's ``client.files`` works.

    POST   /v1/files                   multipart form: file, purpose ("batch" or "model")
    GET    /v1/files                   ?purpose=&after=<file id>&limit=&order=desc|asc
    GET    /v1/files/{file_id}
    GET    /v1/files/{file_id}/content
    DELETE /v1/files/{file_id}
    POST   /v1/files/{file_id}/shares            {"tenant": "<another tenant>"}: grant it read access
    GET    /v1/files/{file_id}/shares            the file's grants
    DELETE /v1/files/{file_id}/shares/{tenant}   revoke one, from the next request on

A file belongs to the caller's tenant (``request.state.caller``, set by the metering middleware); another
tenant's file id answers the same 404 as an unknown one, whatever the key's scopes. Its owner may share it
with other tenants, read-only: a grantee may retrieve the file and read its content, nothing more (its
delete, its grants and the listing are the owner's, and answer a grantee as they answer a stranger: 404, or
the file not listed). Deleting a file ends its grants. Files are uploaded for
work the server does later: a batch (``batch``), or a model to import (``model``, ``POST /v1/admin/models``);
what the server writes itself (a batch's output) is not uploaded.

A file may be up to ``AIMASS_MAX_FILE_BYTES``: the local server reads the body of ``POST /v1/files`` up to
that and the form's framing (``upload_body_limit``); on Lambda the request body limit (6 MiB) comes first.
Content is checked for size and emptiness only here; what a batch needs of its file is checked when the
batch is made.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from pydantic import ConfigDict, Field
from pydantic.config import JsonDict
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from aimass.errors import Forbidden, InvalidInput, NotFound
from aimass.files.base import FILE_ID, TENANT, FileRecord, FileShare, FileStore, is_tenant
from aimass.http.dependencies import json_body
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.media import MULTIPART, OCTET_STREAM, accepted_type
from aimass.http.pages import page_after, page_size
from aimass.metering.keys import Caller
from aimass.schema import Schema
from aimass.settings import Settings

PATH = "/v1/files"
PURPOSES = ("batch", "model")
MAX_FILENAME = 255
# A form's framing around the file: boundaries, part headers (the filename), the purpose field.
FORM_OVERHEAD_BYTES = 64 * 1024
_MOST_PER_PAGE = 10_000  # OpenAI's most, and its default
_ID_DOC = {"pattern": FILE_ID.pattern}
_TENANT_DOC: JsonDict = {"pattern": TENANT.pattern}


def upload_body_limit(settings: Settings) -> int:
    """The largest body ``POST /v1/files`` reads on the local server: the largest file and its form."""
    return max(settings.max_body_bytes, settings.max_file_bytes + FORM_OVERHEAD_BYTES)


class FileObject(Schema):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"


class FileList(Schema):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(Schema):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class ShareRequest(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant: str = Field(
        description="the tenant to grant read access: 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or "
        "a digit",
        json_schema_extra=_TENANT_DOC,
    )


class ShareObject(Schema):
    object: Literal["file.share"] = "file.share"
    file_id: str
    tenant: str
    created_at: int


class ShareList(Schema):
    object: Literal["list"] = "list"
    data: list[ShareObject]


class ShareDeleted(Schema):
    object: Literal["file.share"] = "file.share"
    file_id: str
    tenant: str
    deleted: bool


async def multipart_body(request: Request) -> None:
    accepted_type(request, (MULTIPART,))


def files_router(store: FileStore, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["Files"])
    known = responses(InvalidInput, NotFound, *KEYED)

    @router.post(
        "/files",
        summary="Upload a file",
        response_model=FileObject,
        dependencies=[Depends(multipart_body)],
        responses=responses(*BODY, *KEYED),
    )
    async def upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the file's content, with its filename")],
        purpose: Annotated[
            str,
            Form(
                description="what the file is for: batch (a Batch API input), model (a model to import, "
                "POST /v1/admin/models)",
                json_schema_extra={"enum": list(PURPOSES)},
            ),
        ],
    ) -> FileObject:
        tenant = tenant_of(request)
        if purpose not in PURPOSES:
            raise InvalidInput(
                f"purpose must be one of {', '.join(PURPOSES)} (files a client uploads), got {purpose!r}",
                param="purpose",
            )
        filename = file.filename or ""
        if not filename or len(filename) > MAX_FILENAME:
            raise InvalidInput(
                f"file needs a filename of 1 to {MAX_FILENAME} characters, got {len(filename)}", param="file"
            )
        record = await run_in_threadpool(
            store.put, tenant, file.file, filename=filename, purpose=purpose, limit=settings.max_file_bytes
        )
        return file_object(record)

    @router.get("/files", summary="List your files", response_model=FileList, responses=known)
    def list_files(
        request: Request,
        purpose: Annotated[str | None, Query(description="only files of this purpose")] = None,
        after: Annotated[
            str | None, Query(description="the last id of the previous page", json_schema_extra=_ID_DOC)
        ] = None,
        limit: Annotated[
            str | None,
            Query(description=f"files per page, 1 to {_MOST_PER_PAGE}", json_schema_extra={"pattern": "^[0-9]{1,5}$"}),
        ] = None,
        order: Annotated[
            str,
            Query(
                description="by creation time: desc (newest first) or asc", json_schema_extra={"enum": ["desc", "asc"]}
            ),
        ] = "desc",
    ) -> FileList:
        if order not in ("desc", "asc"):
            raise InvalidInput(f"order must be desc or asc, got {order!r}", param="order")
        size = page_size(limit, most=_MOST_PER_PAGE, default=_MOST_PER_PAGE)
        if after is not None:
            _check_id(after, "after")
        records = store.list(tenant_of(request), purpose=purpose or None)
        if order == "desc":
            records.reverse()
        kept, more = page_after(records, after, size, id_of=lambda r: r.id, what="your files (of this purpose)")
        page = [file_object(record) for record in kept]
        return FileList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=more,
        )

    @router.get("/files/{file_id}", summary="A file's metadata", response_model=FileObject, responses=known)
    def retrieve(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> FileObject:
        _check_id(file_id, "file_id")
        record = store.readable(tenant_of(request), file_id)  # the owner's, or one shared with the caller
        if record is None:
            raise _not_found(file_id)
        return file_object(record)

    @router.get(
        "/files/{file_id}/content",
        summary="A file's content",
        # No media type of its own, so that FastAPI documents the errors as JSON and the 200 as declared here.
        response_class=StreamingResponse,
        responses={200: {"content": {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}}}, **known},
    )
    def content(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> StreamingResponse:
        _check_id(file_id, "file_id")
        tenant = tenant_of(request)
        opened = store.open(tenant, file_id)  # the owner's: the record and the content in one lookup
        if opened is None:
            shared = store.readable(tenant, file_id)
            opened = store.open(shared.tenant, file_id) if shared is not None else None
        if opened is None:
            raise _not_found(file_id)
        record, chunks = opened
        return StreamingResponse(chunks, media_type=OCTET_STREAM, headers={"content-length": str(record.size)})

    @router.delete("/files/{file_id}", summary="Delete a file", response_model=FileDeleted, responses=known)
    def delete(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> FileDeleted:
        _check_id(file_id, "file_id")
        if not store.delete(tenant_of(request), file_id):
            raise _not_found(file_id)
        return FileDeleted(id=file_id, deleted=True)

    @router.post(
        "/files/{file_id}/shares",
        summary="Share a file with another tenant, read-only",
        response_model=ShareObject,
        dependencies=[Depends(json_body)],
        responses=responses(*BODY, NotFound, *KEYED),
    )
    def share(
        request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)], body: ShareRequest
    ) -> ShareObject:
        owner = tenant_of(request)
        _record(store, owner, file_id)  # first: to anyone but the owner, the file is not there
        if not is_tenant(body.tenant):
            raise InvalidInput(
                f"tenant must be a tenant name (1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or a "
                f"digit), got {body.tenant!r}",
                param="tenant",
            )
        if body.tenant == owner:
            raise InvalidInput(f"tenant {owner!r} is your own; share with another tenant", param="tenant")
        granted = store.share(owner, file_id, body.tenant)
        if granted is None:
            raise _not_found(file_id)
        return _share(granted)

    @router.get("/files/{file_id}/shares", summary="A file's shares", response_model=ShareList, responses=known)
    def list_shares(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> ShareList:
        owner = tenant_of(request)
        _record(store, owner, file_id)  # the owner's only: a grantee's request is a stranger's
        return ShareList(data=[_share(granted) for granted in store.shares(owner, file_id)])

    @router.delete(
        "/files/{file_id}/shares/{tenant}", summary="Revoke a share", response_model=ShareDeleted, responses=known
    )
    def unshare(
        request: Request,
        file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)],
        tenant: Annotated[str, Path(json_schema_extra=_TENANT_DOC)],
    ) -> ShareDeleted:
        owner = tenant_of(request)
        _record(store, owner, file_id)
        if not is_tenant(tenant) or not store.unshare(owner, file_id, tenant):
            raise NotFound(f"file {file_id!r} is not shared with tenant {tenant!r}", param="tenant")
        return ShareDeleted(file_id=file_id, tenant=tenant, deleted=True)

    return router


def tenant_of(request: Request) -> str:
    return caller_of(request).tenant


def caller_of(request: Request) -> Caller:
    """The caller the metering middleware found (a tenant's key): every file and batch route needs one."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise Forbidden("files and batches need an API key")
    return caller


def _check_id(value: str, param: str) -> None:
    if not FILE_ID.fullmatch(value):
        raise InvalidInput(
            f"{param} must be a file id ('file-' and 24 of A-Z, a-z, 0-9, '_', '-'), got {value!r}", param=param
        )


def _record(store: FileStore, tenant: str, file_id: str) -> FileRecord:
    _check_id(file_id, "file_id")
    record = store.get(tenant, file_id)
    if record is None:
        raise _not_found(file_id)
    return record


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"no file {file_id!r}", param="file_id")


def _share(granted: FileShare) -> ShareObject:
    return ShareObject(file_id=granted.file_id, tenant=granted.tenant, created_at=granted.created_at)


def file_object(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id, bytes=record.size, created_at=record.created_at, filename=record.filename, purpose=record.purpose
    )
