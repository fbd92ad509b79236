"""The handler EventBridge calls on every state change of an AWS Batch job of a batch (in the front image).

A batch's array job ends SUCCEEDED when every shard did, or FAILED when a shard failed all its attempts,
or when a cancel terminated it. Either way its shards run no more, so the batch is finalized: the results
written so far are joined into the output and error files, and each line no shard answered goes to the
error file (``ShardRunner.finalize``). Usually the last shard's worker has finalized the batch already;
then this finds it at its end and does nothing. Events of single array children are ignored: their
parent's event follows.
"""

from __future__ import annotations

import logging
from typing import Any

from aimass import contract
from aimass.batches.aws_batch import job_name
from aimass.batches.backends import open_batches, runner_factory
from aimass.batches.model import BATCH_ID, TERMINAL
from aimass.batches.runner import ShardRunner
from aimass.files.factory import open_files
from aimass.settings import get_settings

log = logging.getLogger("aimass.batches")
ENDED = frozenset({"SUCCEEDED", "FAILED"})
TENANT_TAG = "aimass:tenant"

_runner: ShardRunner | None = None


def handler(event: dict[str, Any], context: object) -> dict[str, str]:
    detail = event.get("detail") or {}
    if detail.get("status") not in ENDED or "index" in (detail.get("arrayProperties") or {}):
        return {"batch": "", "outcome": "ignored"}
    batch_id = str(detail.get("jobName", "")).removeprefix(job_name(""))
    tenant = _tenant(detail)
    if not BATCH_ID.fullmatch(batch_id) or tenant is None:
        log.warning("a batch job event without a batch: job %s", detail.get("jobId"))
        return {"batch": "", "outcome": "ignored"}
    runner = _runner_here()
    batch = runner.store.get(tenant, batch_id)
    if batch is None or batch.status in TERMINAL:
        return {"batch": batch_id, "outcome": "already final"}
    ended = runner.finalize(batch)
    return {"batch": batch_id, "outcome": ended.status if ended is not None else "finalized elsewhere"}


def _tenant(detail: dict[str, Any]) -> str | None:
    """The batch's tenant: from the job's environment (set at submission), else its tag."""
    environment = (detail.get("container") or {}).get("environment") or []
    for variable in environment:
        if variable.get("name") == contract.BATCH_TENANT_ENV:
            return str(variable.get("value"))
    tag = (detail.get("tags") or {}).get(TENANT_TAG)
    return str(tag) if tag else None


def _runner_here() -> ShardRunner:
    """One runner per execution environment, made on the first event (warm invocations reuse it)."""
    global _runner
    if _runner is None:
        settings = get_settings()
        _runner = runner_factory(settings, None, open_batches(settings), open_files(settings))()
    return _runner
