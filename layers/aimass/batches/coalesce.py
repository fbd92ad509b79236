"""Many batch lines, one engine batch: embeddings lines gathered so that short requests run at batch speed.

A batch of one sentence a line would feed the engine one sentence at a time: a third of MiniLM's batched
throughput on two cores (bench/batch.json). So a chunk's ``/v1/embeddings`` lines are validated one by one,
exactly as the route validates a request (``OpenAIService.prepare_embeddings``), and the texts of the valid
lines that name the same model are embedded together, sorted by length so that each engine batch pads to
little, then put back in order and answered line by line with the route's own document and each line's own
tokens (``Prediction.per_item``). A line the route would refuse is left to the app (``None``), so that its
error is the route's, word for word; so is every line when a model does not report tokens per string.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from aimass.batches.dispatch import Answer
from aimass.errors import AimassError
from aimass.metering.meter import Metered, billable
from aimass.protocol.openai import EmbeddingsCall, OpenAIService

# At most this many texts go to the runtime at once: it feeds the engine 32 at a time, and keeps the
# outputs of the whole call; 2,048 MiniLM vectors are 3 MB.
MOST_TEXTS = 2048

Coalescer = Callable[[Sequence[tuple[str, dict[str, Any]]]], list[Answer | None]]


class EmbeddingsCoalescer:
    def __init__(self, service: OpenAIService, max_body_bytes: int) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes

    def __call__(self, requests: Sequence[tuple[str, dict[str, Any]]]) -> list[Answer | None]:
        answers: list[Answer | None] = [None] * len(requests)
        groups: dict[tuple[str, str], list[tuple[int, EmbeddingsCall]]] = {}
        for index, (_, body) in enumerate(requests):
            raw = json.dumps(body).encode()
            if len(raw) > self.max_body_bytes:
                continue  # the app answers it: a 413 from its body limit
            try:
                call = self.service.prepare_embeddings(raw)
            except AimassError:
                continue  # the app answers it, with the route's own error
            manifest = call.runtime.manifest
            groups.setdefault((manifest.name, manifest.version), []).append((index, call))
        for members in groups.values():
            start = 0
            while start < len(members):
                # Whole lines, up to MOST_TEXTS texts (a line of more goes alone).
                end, texts = start, 0
                while end < len(members) and (end == start or texts + len(members[end][1].texts) <= MOST_TEXTS):
                    texts += len(members[end][1].texts)
                    end += 1
                self._run(members[start:end], answers)
                start = end
        return answers

    def _run(self, members: list[tuple[int, EmbeddingsCall]], answers: list[Answer | None]) -> None:
        runtime = members[0][1].runtime
        manifest = runtime.manifest
        texts = [text for _, call in members for text in call.texts]
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))  # length buckets: little padding
        batch = np.empty(len(texts), dtype=object)
        batch[:] = [texts[n].encode() for n in order]
        started = time.perf_counter()
        try:
            prediction = runtime.predict({manifest.inputs[0].name: batch})
        except AimassError:
            return  # each line then runs alone through the app, which answers its own error
        elapsed_ms = (time.perf_counter() - started) * 1e3
        per_text = prediction.per_item.get("prompt_tokens")
        if per_text is None or len(per_text) != len(texts):
            return
        sorted_vectors = np.asarray(prediction.outputs[manifest.outputs[0].name], dtype="<f4")
        vectors = np.empty_like(sorted_vectors)
        vectors[order] = sorted_vectors
        tokens = np.empty(len(texts), dtype=np.int64)
        tokens[order] = per_text
        first = 0
        for index, call in members:
            count = len(call.texts)
            used = int(tokens[first : first + count].sum())
            body = self.service.embeddings_document(call, vectors[first : first + count], used)
            unit, units = billable(runtime, {"prompt_tokens": used})
            share = elapsed_ms * count / len(texts)
            metered = Metered(manifest.name, manifest.version, manifest.domain, unit, units, share)
            answers[index] = Answer(200, body, metered)
            first += count


def coalescers(service: OpenAIService, max_body_bytes: int) -> Mapping[str, Coalescer]:
    """The routes whose lines are gathered into engine batches, by path."""
    return {"/v1/embeddings": EmbeddingsCoalescer(service, max_body_bytes)}
