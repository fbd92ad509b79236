"""The batch worker: a domain's own image (or the local checkout) run with ``python -m aimass.worker``.

On AWS Batch it runs one shard and exits: the batch and tenant come from ``AIMASS_BATCH_ID`` and
``AIMASS_BATCH_TENANT``, the shard from ``AWS_BATCH_JOB_ARRAY_INDEX`` (0 for a job that is no array). A
shard that was partly run before (a killed attempt: AWS Batch retries it) resumes after its written
chunks. Locally it runs worker threads on the SQLite queue until it is stopped (SIGTERM or SIGINT), beside
``aimass serve``'s own or instead of them.

Each line runs through the same app the API serves (``aimass.batches.dispatch``), on the models this
process loaded: every line gets the answer, or the error, its request would get. This module sits above
the HTTP layer for that reason, and nothing imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from aimass import contract
from aimass.batches.backends import open_batches, runner_factory
from aimass.batches.runner import ShardRunner
from aimass.batches.store import BatchStore
from aimass.files.factory import open_files
from aimass.http.app import batch_line_routes
from aimass.serving.boot import configure_logging, load_models
from aimass.settings import get_settings

log = logging.getLogger("aimass.batches")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aimass.worker", description="Run batch shards.")
    parser.add_argument("--threads", type=int, default=1, help="local worker threads (default 1)")
    args = parser.parse_args(argv)
    configure_logging()
    settings = get_settings()
    registry = load_models(settings)
    batches = open_batches(settings)
    make = runner_factory(settings, batch_line_routes(registry, settings), batches, open_files(settings))
    batch_id = os.environ.get(contract.BATCH_ID_ENV)
    if batch_id:
        return _one_shard(make(), batches.store, batch_id)
    if batches.local is None:
        print(f"set {contract.BATCH_ID_ENV} to run a shard of an AWS batch", file=sys.stderr)
        return 2
    from aimass.batches.pool import WorkerPool

    pool = WorkerPool(batches.local, make, threads=args.threads, lease_s=settings.batch_lease_s)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    pool.start()
    log.info("batch workers running: %d threads", args.threads)
    stopped.wait()
    pool.stop()
    return 0


def _one_shard(runner: ShardRunner, store: BatchStore, batch_id: str) -> int:
    tenant = os.environ.get(contract.BATCH_TENANT_ENV, "")
    index = int(os.environ.get(contract.ARRAY_INDEX_ENV, "0"))
    batch = store.get(tenant, batch_id)
    if batch is None:
        log.error("no batch %s of tenant %r", batch_id, tenant)
        return 1
    if not 0 <= index < batch.shards:
        log.error("batch %s has %d shards; there is no shard %d", batch_id, batch.shards, index)
        return 1
    runner.run(batch, index)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
