"""What a request will cost, estimated before it runs, and whether it runs now or as a batch.

Every model route counts its request's items before the expensive step (decoding images, tokenising, the
engine): texts, V2 rows, a task's list (images, observations), files. ``Schedule.admit`` holds the count to
the synchronous limits and the estimate to the time budget:

    items > batch_max_items                  PayloadTooLarge    too large even for a batch: split it
    items > the synchronous item limit       OverSyncBudget     max_batch_items, or a task's own list limit
    units x seconds per unit > sync_budget_s OverSyncBudget     it would not end inside API Gateway's 29 s

``OverSyncBudget`` is a 413 whose message says how to run the request as a batch; the HTTP layer turns it
into a ``202 Accepted`` and a one-line batch when the client sent ``Prefer: respond-async``
(``aimass.http.hot_routes``). A batch's lines run under settings with no budget (``sync_budget_s`` infinite)
and ``batch_max_items`` as the item limit, so there only the first rule holds.

The estimate is ``units x seconds per unit``: a unit is what a route counts its work in (``Work.unit``),
usually its items; the embeddings route counts 64-character pieces of text, as a text's time follows its
length (a 16-token sentence is one). Seconds per unit start from a prior measured for each domain and unit
(``PRIORS``), then follow the model's own measured inference time (``Schedule.run``): an exponentially
weighted average, so that a slower or faster machine than the one measured is learnt within a few requests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from aimass.errors import PayloadTooLarge
from aimass.serving.admission import IN_FLIGHT, InFlight
from aimass.serving.microbatch import BATCHER, Inputs, MicroBatcher
from aimass.serving.runtime import ModelRuntime, Prediction
from aimass.settings import Settings

R = TypeVar("R")

# Seconds per unit, by (domain, unit), measured by `make bench` (bench/sizing.py, the numbers in each
# functions/<domain>/function.toml) at the thread count each function is deployed with: text and vision at
# two (two vCPU), speech and rl at one. bench/sync_budget.py measures them again on any machine.
PRIORS: dict[tuple[str, str], float] = {
    # One token of a generative model: SmolLM2-135M decodes 80 tokens/s served with sleeping threads on two
    # cores (bench/llm.py), 12.5 ms each; a prompt's tokens, read in one pass, are left in that margin.
    ("llm", "generated tokens"): 0.0125,
    # One 16-token sentence (~64 characters): 4.2 ms at two threads.
    ("text", "text pieces"): 0.0042,
    # A V2 row may be a text of up to 256 tokens, whose length the data plane does not read: 10.8 s for 256
    # of them at two threads, 42 ms each.
    ("text", "rows"): 0.042,
    # One photo, decoded, cropped and run: 8.7 ms at two threads (256 images: 2.0 s).
    ("vision", "rows"): 0.0087,
    ("vision", "images"): 0.0087,
    # A 1-second clip through the V2 JSON data plane: 2.0 ms at one thread (bench/sync_budget.py), reading its
    # 16,000 numbers costing more than the engine's 0.71 ms.
    ("speech", "rows"): 0.002,
    # The transcribe task's worst file: 30 s of 192 kHz 8-channel Vorbis, 1.0 s decoded and transcribed.
    ("speech", "files"): 1.0,
    # A second of a recording that a task reads the length of (sphinx-en-us): PocketSphinx's real-time factor on
    # one busy core, 0.24 (models/speech/sphinx/MODEL_CARD.md), decoding the file included.
    ("speech", "seconds of audio"): 0.25,
    # One CartPole observation: 0.012 ms at one thread (256 take 0.057 ms).
    ("rl", "rows"): 0.000012,
    ("rl", "observations"): 0.000012,
}
# A domain measured nowhere yet: 10 ms per unit, as slow as a photo, until its own runs say otherwise.
UNKNOWN_PRIOR_S = 0.01
# The weight of each new measurement in the average: about the last ten requests count.
SMOOTHING = 0.2
# A 16-token sentence is about 64 characters of English (3.4 to 4 characters a token).
TEXT_PIECE_CHARS = 64


class OverSyncBudget(PayloadTooLarge):
    """A request too large to answer synchronously (more items than a request may carry, or estimated past
    the time budget) that a batch can run: resent with ``Prefer: respond-async``, it is accepted as one."""


@dataclass(frozen=True)
class Work:
    """A request's work, counted from its body before any of it is decoded or run.

    ``items`` is held to ``limit`` (``what`` names them in messages, ``param`` is the field holding them,
    ``subject`` what the messages call it, by default the field); ``units`` of ``unit`` are what the time
    estimate multiplies by seconds per unit.
    """

    items: int
    limit: int
    what: str
    param: str
    unit: str
    units: float
    subject: str = ""

    @property
    def holder(self) -> str:
        return self.subject or f"'{self.param}'"


class Rates:
    """Seconds per unit of each model, a prior until measured, then an exponentially weighted average."""

    def __init__(self, priors: dict[tuple[str, str], float] | None = None) -> None:
        self._priors = PRIORS if priors is None else priors
        self._measured: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def seconds(self, runtime: ModelRuntime, unit: str) -> float:
        manifest = runtime.manifest
        known = self._measured.get((manifest.name, unit))
        if known is not None:
            return known
        return self._priors.get((manifest.domain, unit), UNKNOWN_PRIOR_S)

    def observe(self, runtime: ModelRuntime, unit: str, units: float, seconds: float) -> None:
        if units <= 0:
            return
        key, per_unit = (runtime.manifest.name, unit), seconds / units
        with self._lock:  # requests of one model run on several threads
            before = self._measured.get(key)
            self._measured[key] = per_unit if before is None else before + SMOOTHING * (per_unit - before)


# One per process: what the model's requests measured is shared by every route and app over it.
RATES = Rates()


class Schedule:
    def __init__(
        self,
        settings: Settings,
        rates: Rates = RATES,
        in_flight: InFlight = IN_FLIGHT,
        batcher: MicroBatcher = BATCHER,
    ) -> None:
        self.settings = settings
        self.rates = rates
        self.in_flight = in_flight
        self.batcher = batcher

    @property
    def synchronous(self) -> bool:
        """False in a batch's lines: no time budget, and a task's own per-request list limit is lifted."""
        return math.isfinite(self.settings.sync_budget_s)

    def admit(self, runtime: ModelRuntime, work: Work) -> None:
        """Refuse (413) the work unless it may run now; an ``OverSyncBudget`` where a batch would run it."""
        most = self.settings.batch_max_items
        if work.items > most:
            raise PayloadTooLarge(
                f"{work.holder} has {work.items:,} {work.what}; at most {most:,} are accepted per request, even in "
                "a batch: split it into smaller requests",
                param=work.param,
            )
        if work.items > work.limit:
            raise OverSyncBudget(
                f"{work.holder} has {work.items:,} {work.what}; at most {work.limit:,} are answered per synchronous "
                f"request. {_AS_BATCH}",
                param=work.param,
            )
        per_unit, budget = self.rates.seconds(runtime, work.unit), self.settings.sync_budget_s
        estimate = work.units * per_unit
        if estimate > budget:
            raise OverSyncBudget(
                f"{work.holder} holds {work.units:,.0f} {work.unit} of work for model '{runtime.manifest.name}', "
                f"estimated at {estimate:,.1f} s ({per_unit * 1e3:,.3g} ms each), over the {budget:g} s a synchronous "
                f"request may take. {_AS_BATCH}",
                param=work.param,
            )

    def run(self, runtime: ModelRuntime, work: Work, call: Callable[[], R]) -> R:
        """``call()``, its time learnt as the model's seconds per unit for the next estimates; a synchronous
        request only while the model has fewer than ``max_in_flight`` in flight (else 503, ``ModelOverloaded``)."""
        if not self.synchronous:  # a batch's lines run one chunk at a time on its worker threads
            return self._timed(runtime, work, call)
        with self.in_flight.admitted(runtime.manifest.name, self.settings.max_in_flight):
            return self._timed(runtime, work, call)

    def predict(self, runtime: ModelRuntime, inputs: Inputs) -> Prediction:
        """``runtime.predict(inputs)``, batched with other requests' where ``micro_batch_rows`` allows
        (``aimass.serving.microbatch``); a route runs it inside ``run``."""
        rows = self.settings.micro_batch_rows
        return self.batcher.predict(runtime, inputs, rows) if rows > 1 else runtime.predict(inputs)

    def _timed(self, runtime: ModelRuntime, work: Work, call: Callable[[], R]) -> R:
        started = time.perf_counter()
        result = call()
        self.rates.observe(runtime, work.unit, work.units, time.perf_counter() - started)
        return result


_AS_BATCH = (
    "Send it again with the header 'Prefer: respond-async' to run it as a batch (202 Accepted, then poll the "
    "batch at its Location), or upload a JSONL file of requests to /v1/files and POST /v1/batches"
)
