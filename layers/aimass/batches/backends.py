"""The batch backends the settings name, and the shard runners that use them: the composition of batches.

AWS (DynamoDB, S3, AWS Batch) when the settings name batch targets (``AIMASS_BATCH_TARGETS``, set on the
front function and the workers by the CDK app); else local ones in ``state_dir`` (SQLite, a folder, worker
threads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aimass.batches.billing import BatchBilling
from aimass.batches.dispatch import LineClient, LineRoutes
from aimass.batches.local import BATCHES_DB, FolderWorkStore, LocalLauncher, SQLiteBatchStore
from aimass.batches.runner import ShardRunner
from aimass.batches.store import BatchStore, Launcher, WorkStore
from aimass.files.base import FileStore
from aimass.settings import Settings


@dataclass(frozen=True)
class Batches:
    store: BatchStore
    work: WorkStore
    launcher: Launcher
    local: SQLiteBatchStore | None  # the local queue, when the backends are local


def open_batches(settings: Settings) -> Batches:
    if settings.batch_targets:
        from aimass.batches.aws_factory import open_aws_batches

        store, work, launcher = open_aws_batches(settings)
        return Batches(store, work, launcher, None)
    local = SQLiteBatchStore(settings.state_dir / BATCHES_DB)
    return Batches(local, FolderWorkStore(settings.state_dir / "batches"), LocalLauncher(local), local)


def runner_factory(
    settings: Settings, routes: LineRoutes | None, batches: Batches, files: FileStore
) -> Callable[[], ShardRunner]:
    """Makes one ``ShardRunner`` per worker thread (each owns an event loop), running lines on ``routes``:
    the API's own app, without its metering (a batch is billed per shard: aimass.batches.billing). Without
    routes, the runners only finalize (the events handler)."""
    bill = None
    if settings.metering != "off":
        from aimass.metering.stores.usage_factory import open_usage

        bill = BatchBilling(open_usage(settings)[0], settings)

    def make() -> ShardRunner:
        return ShardRunner(
            store=batches.store,
            work=batches.work,
            files=files,
            client=LineClient(routes.app, routes.coalescers) if routes is not None else None,
            chunk_lines=settings.batch_chunk_lines,
            bill=bill,
        )

    return make
