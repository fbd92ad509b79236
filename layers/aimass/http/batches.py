"""OpenAI's Batch API, so the OpenAI SDK's ``client.batches`` works against AI Mass for every model route.

    POST /v1/batches                    {input_file_id, endpoint, completion_window: "24h", metadata}
    GET  /v1/batches                    ?after=<batch id>&limit=
    GET  /v1/batches/{batch_id}
    POST /v1/batches/{batch_id}/cancel

A batch belongs to the caller's tenant (``request.state.caller``, set by the metering middleware); another
tenant's batch id answers the same 404 as an unknown one. Its input file may be one another tenant shared
with the caller; its output and error files are the caller's own (``/v1/files``). The operations are in
``aimass.batches.service``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from aimass.batches.model import BATCH_ID, BatchRecord
from aimass.batches.service import BatchService
from aimass.errors import InvalidInput, NotFound
from aimass.http.dependencies import json_body
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.files import caller_of
from aimass.http.pages import page_after, page_size
from aimass.schema import Schema

_MOST_PER_PAGE = 100  # OpenAI's most; its default is 20
_DEFAULT_PER_PAGE = 20
_ID_DOC = {"pattern": BATCH_ID.pattern}


class CreateBatch(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    input_file_id: str = Field(description="a file uploaded with purpose 'batch': one JSON request per line")
    endpoint: str = Field(
        description="the route every line calls: /v1/embeddings, /v1/<domain>/<task>, /v1/audio/transcriptions "
        "or /v2/models/<name>/infer",
        examples=["/v1/embeddings"],
    )
    completion_window: str = Field(description="how long the batch may take: 24h", examples=["24h"])
    metadata: dict[str, str] | None = Field(default=None, description="up to 16 pairs, kept with the batch")
    # OpenAI's option for how long the output files live; files here expire by the bucket's rule instead.
    output_expires_after: dict[str, Any] | None = None


class RequestCounts(Schema):
    total: int
    completed: int
    failed: int


class BatchErrorObject(Schema):
    code: str
    message: str
    line: int | None = None
    param: str | None = None


class BatchErrors(Schema):
    object: Literal["list"] = "list"
    data: list[BatchErrorObject]


class BatchObject(Schema):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: Literal[
        "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
    ]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    metadata: dict[str, str] | None


class BatchList(Schema):
    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


def batches_router(service: BatchService) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["Batches"])
    known = responses(InvalidInput, NotFound, *KEYED)

    @router.post(
        "/batches",
        summary="Create a batch",
        response_model=BatchObject,
        dependencies=[Depends(json_body)],
        responses=responses(*BODY, NotFound, *KEYED),
    )
    async def create(request: Request, body: CreateBatch) -> dict[str, Any]:
        record = await run_in_threadpool(
            service.create,
            caller_of(request),
            input_file_id=body.input_file_id,
            endpoint=body.endpoint,
            completion_window=body.completion_window,
            metadata=body.metadata,
        )
        return record.to_object()

    @router.get("/batches", summary="List your batches", response_model=BatchList, responses=known)
    def list_batches(
        request: Request,
        after: Annotated[
            str | None, Query(description="the last id of the previous page", json_schema_extra=_ID_DOC)
        ] = None,
        limit: Annotated[
            str | None,
            Query(
                description=f"batches per page, 1 to {_MOST_PER_PAGE} (default {_DEFAULT_PER_PAGE})",
                json_schema_extra={"pattern": "^[0-9]{1,3}$"},
            ),
        ] = None,
    ) -> BatchList:
        size = page_size(limit, most=_MOST_PER_PAGE, default=_DEFAULT_PER_PAGE)
        records = service.list(caller_of(request).tenant)
        kept, more = page_after(records, after, size, id_of=lambda r: r.id, what="your batches")
        page = [_object(record) for record in kept]
        return BatchList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=more,
        )

    @router.get("/batches/{batch_id}", summary="A batch", response_model=BatchObject, responses=known)
    def retrieve(request: Request, batch_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> BatchObject:
        return _object(service.get(caller_of(request).tenant, batch_id))

    @router.post("/batches/{batch_id}/cancel", summary="Cancel a batch", response_model=BatchObject, responses=known)
    def cancel(request: Request, batch_id: Annotated[str, Path(json_schema_extra=_ID_DOC)]) -> BatchObject:
        return _object(service.cancel(caller_of(request).tenant, batch_id))

    return router


def _object(record: BatchRecord) -> BatchObject:
    return BatchObject.model_validate(record.to_object())
