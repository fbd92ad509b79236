"""Continuous batching: every running generation of a model advances in one shared decode step per token.

A decode step at batch 1 reads every weight of the model to write one token; the same step at batch 8 reads
them once for eight tokens, so on CPU the step costs far less than eight separate ones (SmolLM2 on 2 cores:
10 ms for one row, 27 ms for eight). One engine thread per model owns the session: each request's prompt
runs on its own (prefill), then its rows (one per choice) join the running batch at the next token boundary
and leave it when they finish or their client leaves. Requests never wait for one another to finish.

The rows' KV caches differ in length, so the batch's cache is padded to the longest and ``attention_mask``
says which positions hold a token. Where the step writes a row's new entry depends on the graph:

- ``prefix``: ONNX Runtime's ``GroupQueryAttention`` (onnxruntime-genai's decoders) reads each row's length
  from the mask's sum and writes the new entry right after it, so a row's tokens are always a prefix of its
  cache and its mask is ones then zeros.
- ``appended``: a graph that concatenates the past and the new entry (most exporters' attention) writes every
  row's entry at the end, so a row's cache may have holes that its mask covers; positions come from
  ``position_ids``.

The engine thread runs only while there is work: it starts on the first request and ends when the batch is
empty, so a model that is swapped out leaves nothing running behind it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

Array = np.ndarray[Any, Any]
Layout = Literal["prefix", "appended"]


class Decoder(Protocol):
    def step(self, ids: Array, mask: Array, positions: Array, cache: Any) -> tuple[Array, Any]:
        """Token ids [rows, seq], attention mask [rows, past + seq], positions [rows, seq] and the cache in; the
        last position's logits [rows, vocab] and the cache the next step takes out."""

    def bind(self, buffers: list[Array]) -> Any:
        """A cache of ``buffers`` [rows, heads, capacity, head size] that the step reads and writes in place."""


class Job(ABC):
    """One request as the engine sees it: a prompt, its rows, and where their tokens go."""

    rows: int  # choices, each a row of the batch
    longest: int  # tokens a row may hold at most (prompt + completion): what its cache may grow to

    @property
    @abstractmethod
    def cancelled(self) -> bool:
        """The request was stopped (its client left): its rows leave at the next token boundary."""

    @abstractmethod
    def prefill(self) -> tuple[Array, list[Array]] | None:
        """Run the prompt alone: its last logits [1, vocab] and its cache (batch 1). None: nothing left to run."""

    @abstractmethod
    def first(self, logits: Array) -> list[bool]:
        """Choose every row's first token from the prompt's logits; which rows go on."""

    @abstractmethod
    def next(self, row: int, logits: Array) -> bool:
        """Choose row ``row``'s next token from its logits [vocab]; whether the row goes on."""

    @abstractmethod
    def last_token(self, row: int) -> int:
        """The token row ``row`` chose last: what the next step feeds it."""

    @abstractmethod
    def stepped(self) -> None:
        """A model step ran with this job's rows in it."""

    @abstractmethod
    def finish(self, error: BaseException | None = None) -> None:
        """The job has left the batch, whole or because of ``error``."""


class _Row:
    __slots__ = ("index", "job")

    def __init__(self, job: Job, index: int) -> None:
        self.job, self.index = job, index


class Batch:
    """The running rows and their padded KV cache, for the ``appended`` layout: each step returns a cache one
    position wider. Only the engine thread touches it."""

    def __init__(self, decoder: Decoder, layout: Layout) -> None:
        self.decoder, self.layout = decoder, layout
        self.empty()

    def empty(self) -> None:
        self.rows: list[_Row] = []
        self.cache: Any = []
        self.mask = np.zeros((0, 0), dtype=np.int64)  # [rows, width]: the positions that hold a token
        self.lengths = np.zeros(0, dtype=np.int64)  # tokens in each row: the position of its next one

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def join(self, job: Job, going_on: Sequence[bool], prompt: list[Array]) -> None:
        """Add the rows of ``job`` that go on, from the cache of its prompt (batch 1)."""
        indices = [i for i, on in enumerate(going_on) if on]
        length = int(prompt[0].shape[2])
        width = max(self.width, length)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        mask[:, :length] = 1
        lengths = np.full(len(indices), length, dtype=np.int64)
        if self.rows:
            mask = np.concatenate([np.pad(self.mask, ((0, 0), (0, width - self.width))), mask])
            lengths = np.concatenate([self.lengths, lengths])
        self._place(job, indices, prompt, width)
        self.mask, self.lengths = mask, lengths
        self.rows += [_Row(job, i) for i in indices]

    def _place(self, job: Job, indices: list[int], prompt: list[Array], width: int) -> None:
        joining = [np.repeat(_pad(layer, width), len(indices), axis=0) for layer in prompt]
        if self.rows:
            past = [_pad(layer, width) for layer in self.cache]
            joining = [np.concatenate(pair) for pair in zip(past, joining, strict=True)]
        self.cache = joining

    def step_inputs(self) -> tuple[Array, Array, Array]:
        ids = np.array([[row.job.last_token(row.index)] for row in self.rows], dtype=np.int64)
        mask = np.pad(self.mask, ((0, 0), (0, 1)))
        if self.layout == "prefix":
            mask[np.arange(len(self.rows)), self.lengths] = 1
        else:
            mask[:, -1] = 1
        return ids, mask, self.lengths[:, None].copy()

    def stepped(self, mask: Array, cache: Any) -> None:
        self.mask, self.cache = mask, cache
        self.lengths = self.lengths + 1

    def keep(self, kept: list[int]) -> None:
        """Keep only the rows at ``kept``, and drop the cache positions no kept row holds."""
        if len(kept) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in kept]
        if not kept:
            self.empty()
            return
        index = np.array(kept)
        mask = self.mask[index]
        columns = np.flatnonzero(mask.any(axis=0))
        self._select(index, columns)
        self.mask, self.lengths = mask[:, columns], self.lengths[index]

    def _select(self, index: Array, columns: Array) -> None:
        if len(columns) == self.width:
            self.cache = [layer[index] for layer in self.cache]
        else:
            self.cache = [np.ascontiguousarray(layer[index][:, :, columns]) for layer in self.cache]


class SharedBatch(Batch):
    """The ``prefix`` layout's batch: every row's cache lives in one buffer per layer, wide enough for the longest
    any row may grow, that each step reads and writes in place (the attention's past and present are the same
    memory). Nothing is copied between steps, only when rows join or leave; the buffers' unwritten tail is
    never touched, so it costs no memory until a row reaches it."""

    def empty(self) -> None:
        super().empty()
        self.buffers: list[Array] = []

    def _place(self, job: Job, indices: list[int], prompt: list[Array], width: int) -> None:
        rows, length = len(self.rows), int(prompt[0].shape[2])
        capacity = max([job.longest, *(row.job.longest for row in self.rows)])
        buffers = []
        for layer, cache in enumerate(prompt):
            heads, size = cache.shape[1], cache.shape[3]
            buffer = np.zeros((rows + len(indices), heads, capacity, size), dtype=cache.dtype)
            if rows:
                buffer[:rows, :, : self.width] = self.buffers[layer][:, :, : self.width]
            buffer[rows:, :, :length] = cache[0]
            buffers.append(buffer)
        self.buffers, self.cache = buffers, self.decoder.bind(buffers)

    def _select(self, index: Array, columns: Array) -> None:
        # A row's tokens are a prefix of its cache, so the positions kept are the first len(columns).
        capacity = max(row.job.longest for row in self.rows)
        width = len(columns)
        buffers = []
        for old in self.buffers:
            buffer = np.zeros((len(index), old.shape[1], capacity, old.shape[3]), dtype=old.dtype)
            buffer[:, :, :width] = old[index, :, :width]
            buffers.append(buffer)
        self.buffers, self.cache = buffers, self.decoder.bind(buffers)


def _pad(layer: Array, width: int) -> Array:
    extra = width - layer.shape[2]
    return layer if extra == 0 else np.pad(layer, ((0, 0), (0, 0), (0, extra), (0, 0)))


class Engine:
    """Runs every job of one model in one batch, on a thread that lives while there is work.

    ``row_bytes`` is the cache of one token in one row; a job joins while the padded cache it would make
    (rows x the longest any row may grow) stays within ``cache_bytes`` and the batch under ``max_rows``.
    A job that does not fit waits for rows to leave; a job alone always runs.
    """

    def __init__(self, decoder: Decoder, layout: Layout, *, row_bytes: int, cache_bytes: int, max_rows: int) -> None:
        self._decoder, self._layout = decoder, layout
        self._row_bytes, self._cache_bytes, self._max_rows = row_bytes, cache_bytes, max_rows
        self._lock = threading.Lock()
        self._waiting: deque[Job] = deque()
        self._running = False
        self.largest_batch = 0  # rows of the largest step so far: what the batching is observed by

    def submit(self, job: Job) -> None:
        with self._lock:
            self._waiting.append(job)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="aimass-llm-engine", daemon=True).start()

    def _run(self) -> None:
        batch = (SharedBatch if self._layout == "prefix" else Batch)(self._decoder, self._layout)
        while True:
            with self._lock:
                joining = self._admit(batch)
                if not joining and not batch.rows:
                    self._running = False
                    return
            try:
                for job in joining:
                    self._join(batch, job)
                self._leave(batch)
                if batch.rows:
                    self._decode(batch)
            except BaseException as error:
                # A fault of the engine itself (the model's own are caught where they happen): every reader
                # hears of it rather than waiting forever, and the next request starts from an empty batch.
                for job in _jobs(batch.rows):
                    job.finish(error)
                batch.keep([])
                if not isinstance(error, Exception):
                    with self._lock:
                        self._running = False
                    raise

    def _admit(self, batch: Batch) -> list[Job]:
        admitted: list[Job] = []
        rows = len(batch.rows)
        longest = max((row.job.longest for row in batch.rows), default=0)
        while self._waiting:
            job = self._waiting[0]
            total, reach = rows + job.rows, max(longest, job.longest)
            alone = rows == 0 and not admitted
            if not alone and (total > self._max_rows or total * reach * self._row_bytes > self._cache_bytes):
                break
            admitted.append(self._waiting.popleft())
            rows, longest = total, reach
        return admitted

    def _join(self, batch: Batch, job: Job) -> None:
        """Run the job's prompt and choose its first tokens; the rows that go on join the batch."""
        try:
            ran = job.prefill()
            if ran is None:
                job.finish()
                return
            logits, cache = ran
            job.stepped()
            going_on = job.first(logits[0])
            if not any(going_on):
                job.finish()
                return
            batch.join(job, going_on, cache)
        except Exception as error:  # the job's reader raises it; the batch goes on
            job.finish(error)

    def _leave(self, batch: Batch) -> None:
        """Drop the rows of cancelled jobs before the next step."""
        gone = [row for row in batch.rows if row.job.cancelled]
        if gone:
            for job in _jobs(gone):
                job.finish()
            batch.keep([i for i, row in enumerate(batch.rows) if not row.job.cancelled])

    def _decode(self, batch: Batch) -> None:
        """One step for every row: feed each its last token, choose its next, drop the rows that end."""
        ids, mask, positions = batch.step_inputs()
        jobs = _jobs(batch.rows)
        try:
            logits, cache = self._decoder.step(ids, mask, positions, batch.cache)
        except Exception as error:  # every job in the step gets it; the engine goes on
            for job in jobs:
                job.finish(error)
            batch.keep([])
            return
        self.largest_batch = max(self.largest_batch, len(batch.rows))
        batch.stepped(mask, cache)
        for job in jobs:
            job.stepped()
        kept = [i for i, row in enumerate(batch.rows) if row.job.next(row.index, logits[i])]
        going_on = {id(batch.rows[i].job) for i in kept}
        for job in jobs:
            if id(job) not in going_on:
                job.finish()
        batch.keep(kept)


def _jobs(rows: Iterable[_Row]) -> list[Job]:
    """The jobs of ``rows``, each once (jobs compare by identity: a generation is not hashable)."""
    return list({id(row.job): row.job for row in rows}.values())
