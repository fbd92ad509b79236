"""Local batch workers: threads that claim shards from the SQLite queue and run them.

Beside the API (``aimass serve`` starts ``batch_workers`` of them), or in a process of their own
(``python -m aimass.worker``): any number of either share the queue. A worker with no shard to run
does the housekeeping a scheduler would: it finalizes a cancelled batch once its running shards have
stopped, a batch whose window ended, and a batch whose last shard's worker died before finalizing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aimass.batches.local import SQLiteBatchStore
from aimass.batches.runner import ShardRunner

log = logging.getLogger("aimass.batches")


class WorkerPool:
    def __init__(
        self,
        store: SQLiteBatchStore,
        make_runner: Callable[[], ShardRunner],
        *,
        threads: int,
        lease_s: float = 120.0,
        idle_s: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.make_runner = make_runner
        self.threads = threads
        self.lease_s = lease_s
        self.idle_s = idle_s
        self.clock = clock
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"aimass-batch-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the chunk each worker is running; its shard's lease then lets another resume it."""
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout_s)
        self._workers.clear()

    def _loop(self) -> None:
        runner = self.make_runner()
        while not self._stop.is_set():
            try:
                busy = self.step(runner)
            except Exception:
                log.exception("batch worker step failed; retrying")
                busy = False
            if not busy:
                self._stop.wait(self.idle_s)

    def step(self, runner: ShardRunner) -> bool:
        """Run one shard, or do the housekeeping when there is none; True if there was work."""
        claimed = self.store.claim(self.lease_s)
        if claimed is None:
            return self.housekeep(runner)
        batch, shard = claimed
        log.info("batch %s: running shard %d of %d", batch.id, shard, batch.shards)

        def renew() -> None:
            if self._stop.is_set():
                raise _Stopping  # leave the shard to the next worker: its chunks so far are written
            self.store.renew(batch.id, shard, self.lease_s)

        try:
            runner.run(batch, shard, heartbeat=renew)
        except _Stopping:
            return True
        current = self.store.get(batch.tenant, batch.id)
        if current is None or shard not in current.shards_done:
            self.store.drop_shard(batch.id, shard)  # the batch was stopped: its shard will not run again
        return True

    def housekeep(self, runner: ShardRunner) -> bool:
        worked = False
        now = self.clock()
        for batch in self.store.unfinished():
            if batch.status == "in_progress" and now > batch.expires_at:
                self.store.drop(batch.id, queued_only=True)
            pending = self.store.pending(batch.id)
            done = len(batch.shards_done) == batch.shards
            stopped = batch.status == "cancelling" or now > batch.expires_at
            # A batch left in finalizing longer than a lease: its finalizer died (one that lives is not raced).
            orphaned = batch.status == "finalizing" and now - (batch.finalizing_at or now) > self.lease_s
            if pending == 0 and (orphaned or (batch.status != "finalizing" and (done or stopped))):
                worked = runner.finalize(batch) is not None or worked
        return worked


class _Stopping(Exception):
    """The pool is stopping: the shard in hand is left leased, to be resumed."""
