"""Running a batch's shards on AWS Batch: one array job per batch, one child per shard.

The job runs on the queue and job definition of the batch's domain (``Settings.batch_targets``): the
definition runs the domain's own image with ``python -m aimass.worker``, and the submission names the
batch in the environment (``BATCH_ID_ENV``, ``BATCH_TENANT_ENV``); AWS Batch gives each child its shard
(``ARRAY_INDEX_ENV``). A batch of one shard is a plain job, since an array job has 2 to 10,000 children;
its worker then reads no index and runs shard 0.

Each child is tried up to ``ATTEMPTS`` times: a shard whose host was reclaimed (Spot) or whose container was
killed runs again, and its worker resumes after the chunks it had written. The job is tagged with its batch
and tenant, and the tags are passed on to the ECS tasks, so cost reports can be read per tenant.

The client is any boto3 AWS Batch client (``aimass.batches.aws_factory`` makes it with ``aimass.aws``). A
client error is a ``ServiceUnavailable`` for the caller; its detail goes to the log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from aimass.batches.model import BatchRecord
from aimass.contract import BATCH_ID_ENV, BATCH_TENANT_ENV
from aimass.errors import ServiceUnavailable
from aimass.settings import BatchTarget

log = logging.getLogger("aimass.batches")

ATTEMPTS = 3
MAX_ARRAY_SIZE = 10_000
BATCH_TAG = "aimass:batch"
TENANT_TAG = "aimass:tenant"


def job_name(batch_id: str) -> str:
    return f"aimass-{batch_id}"


class AwsBatchLauncher:
    def __init__(self, client: Any, targets: Mapping[str, BatchTarget]) -> None:
        self.client = client
        self.targets = dict(targets)

    def launch(self, record: BatchRecord) -> str | None:
        if record.shards == 0:
            return None  # nothing to run
        if record.shards > MAX_ARRAY_SIZE:
            # An AimassError, as every refusal here, so the caller fails the batch rather than leave it running.
            log.error(
                "batch %s has %d shards, over an array job's %d: raise AIMASS_BATCH_SHARD_LINES or lower "
                "AIMASS_MAX_BATCH_LINES",
                record.id, record.shards, MAX_ARRAY_SIZE,
            )  # fmt: skip
            raise ServiceUnavailable(f"a batch of {record.shards} shards cannot be run here (at most {MAX_ARRAY_SIZE})")
        target = self.targets.get(record.domain)
        if target is None:
            log.error(
                "no AWS Batch target for domain %s (batch %s); set it in AIMASS_BATCH_TARGETS", record.domain, record.id
            )
            raise ServiceUnavailable(f"batches of domain '{record.domain}' cannot be run here now")
        submission: dict[str, Any] = {
            "jobName": job_name(record.id),
            "jobQueue": target.queue,
            "jobDefinition": target.job_definition,
            "containerOverrides": {
                "environment": [
                    {"name": BATCH_ID_ENV, "value": record.id},
                    {"name": BATCH_TENANT_ENV, "value": record.tenant},
                ]
            },
            "retryStrategy": {"attempts": ATTEMPTS},
            "tags": {BATCH_TAG: record.id, TENANT_TAG: record.tenant},
            "propagateTags": True,
        }
        if record.shards > 1:
            submission["arrayProperties"] = {"size": record.shards}
        with _unavailable("submit", record.id):
            job_id: str = self.client.submit_job(**submission)["jobId"]
        return job_id

    def cancel(self, record: BatchRecord) -> None:
        """Cancel the children still queued and terminate those running (their written chunks stay)."""
        if record.job_id is None:
            return
        reason = f"AI Mass batch {record.id} was cancelled"
        with _unavailable("cancel", record.id):
            self.client.cancel_job(jobId=record.job_id, reason=reason)
            self.client.terminate_job(jobId=record.job_id, reason=reason)


def shard_states(client: Any, job_id: str) -> dict[str, int]:
    """How many of job ``job_id``'s shards are in each AWS Batch state (SUBMITTED ... SUCCEEDED, FAILED);
    empty when AWS Batch no longer knows the job (it forgets finished jobs after about a week)."""
    with _unavailable("describe", job_id):
        jobs = client.describe_jobs(jobs=[job_id]).get("jobs", [])
    if not jobs:
        return {}
    job = jobs[0]
    summary = job.get("arrayProperties", {}).get("statusSummary")
    if summary:
        return {str(state): int(count) for state, count in summary.items() if count}
    return {str(job["status"]): 1}


@contextlib.contextmanager
def _unavailable(action: str, subject: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.error("AWS Batch %s for %s failed: %s", action, subject, exc)
        raise ServiceUnavailable("batch workers cannot be started or stopped now; retry shortly") from None
