"""OpenAI's Files API: upload, list, read and delete a tenant's files, so the OpenAI SDK's ``client.files`` works.

    POST   /v1/files                   multipart form: file, purpose ("batch")
    GET    /v1/files                   ?purpose=&after=<file id>&limit=&order=desc|asc
    GET    /v1/files/{file_id}
    GET    /v1/files/{file_id}/content
    DELETE /v1/files/{file_id}

A file belongs to the caller's tenant (``request.state.caller``, set by the metering middleware); another
tenant's file id answers the same 404 as an unknown one, whatever the key's scopes. Files are uploaded for
work the server does later (a batch); what the server writes itself (a batch's output) is not uploaded, so
``batch`` is the one purpose a client may give.

A file may be up to ``AIMASS_MAX_FILE_BYTES``: the local server reads the body of ``POST /v1/files`` up to
that and the form's framing (``upload_body_limit``); on Lambda the request body limit (6 MiB) comes first.
Content is checked for size and emptiness only here; what a batch needs of its file is checked when the
batch is made.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from aimass.errors import Forbidden, InvalidInput, NotFound
from aimass.files.base import FILE_ID, FileRecord, FileStore
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.media import MULTIPART, OCTET_STREAM, accepted_type
from aimass.metering.keys import Caller
from aimass.protocol import wire
from aimass.settings import Settings

PATH = "/v1/files"
PURPOSES = ("batch",)
MAX_FILENAME = 255
# A form's framing around the file: boundaries, part headers (the filename), the purpose field.
FORM_OVERHEAD_BYTES = 64 * 1024
_MOST_PER_PAGE = 10_000  # OpenAI's most, and its default
_ID_DOC = {"pattern": FILE_ID.pattern}


def upload_body_limit(settings: Settings) -> int:
    """The largest body ``POST /v1/files`` reads on the local server: the largest file and its form."""
    return max(settings.max_body_bytes, settings.max_file_bytes + FORM_OVERHEAD_BYTES)


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
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
            str, Form(description="what the file is for: batch", json_schema_extra={"enum": list(PURPOSES)})
        ],
    ) -> FileObject:
        tenant = _tenant(request)
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
        return _object(record)

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
        size = _limit(limit)
        if after is not None:
            _check_id(after, "after")
        records = store.list(_tenant(request), purpose=purpose or None)
        if order == "desc":
            records.reverse()
        first = 0
        if after is not None:
            first = next((n + 1 for n, record in enumerate(records) if record.id == after), -1)
            if first < 0:
                raise InvalidInput(f"after {after!r} is not one of your files (of this purpose)", param="after")
        page = [_object(record) for record in records[first : first + size]]
        return FileList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=first + size < len(records),
        )

    @router.get("/files/{file_id}", summary="A file's metadata", response_model=FileObject, responses=known)
    def retrieve(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> FileObject:
        return _object(_record(store, _tenant(request), file_id))

    @router.get(
        "/files/{file_id}/content",
        summary="A file's content",
        # No media type of its own, so that FastAPI documents the errors as JSON and the 200 as declared here.
        response_class=StreamingResponse,
        responses={200: {"content": {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}}}, **known},
    )
    def content(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> StreamingResponse:
        _check_id(file_id, "file_id")
        opened = store.open(_tenant(request), file_id)  # the record and the content in one lookup
        if opened is None:
            raise _not_found(file_id)
        record, chunks = opened
        return StreamingResponse(chunks, media_type=OCTET_STREAM, headers={"content-length": str(record.size)})

    @router.delete("/files/{file_id}", summary="Delete a file", response_model=FileDeleted, responses=known)
    def delete(request: Request, file_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> FileDeleted:
        _check_id(file_id, "file_id")
        if not store.delete(_tenant(request), file_id):
            raise _not_found(file_id)
        return FileDeleted(id=file_id, deleted=True)

    return router


def _tenant(request: Request) -> str:
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise Forbidden("files need an API key")
    return caller.tenant


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


def _limit(raw: str | None) -> int:
    if raw is None:
        return _MOST_PER_PAGE
    size = wire.decimal(raw)
    if size is None or not 1 <= size <= _MOST_PER_PAGE:
        raise InvalidInput(f"limit must be a whole number from 1 to {_MOST_PER_PAGE}, got {raw!r}", param="limit")
    return size


def _object(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id, bytes=record.size, created_at=record.created_at, filename=record.filename, purpose=record.purpose
    )
