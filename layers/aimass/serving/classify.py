"""Classifiers over one ONNX graph: the load checks, the run and the top-k answer, written once.

Every ``aimass new-domain`` template serves a graph that maps one batch ``[n, ...]`` to outputs among
which ``probabilities`` is ``[n, labels]``, one manifest label per column. A domain built on
``ClassifierRuntime`` keeps only what is its own: its ``Preprocessing`` block, the codecs that turn a request
into the fed batch, and its task request models:

    class ShapesRuntime(ClassifierRuntime):
        def load(self) -> None:
            self.pre = self.preprocessing(ShapesPreprocessing)
            self.open_session((-1, self.pre.features))

        def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
            return self.prediction(encode(inputs[self.served_input], self.pre), unit="shapes")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np
import onnxruntime as ort
from pydantic import ConfigDict

from aimass.errors import ModelLoadError
from aimass.schema import Schema
from aimass.serving.batching import decode_within
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import TaskResult

PROBABILITIES = "probabilities"  # the graph output a classifier ranks: one row of scores per item, one per label


class Preprocessing(Schema):
    """Base of a domain's ``preprocessing`` block: how its build turned raw inputs into the graph's.

    Frozen, because every request thread reads it; keys it does not name are ignored, because a build may
    record more than the serving codecs need.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class Ranked(TypedDict):
    label: str
    score: float


def top_k(probabilities: Tensor, labels: Sequence[str], k: int) -> list[list[Ranked]]:
    """Each row's ``k`` most likely labels, best first (all of them when ``k`` is larger).

    The sort is stable so that tied scores keep the labels' order: the same request gets the same answer.
    """
    scores = np.asarray(probabilities, dtype=np.float32)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[{"label": labels[j], "score": float(row[j])} for j in top] for row, top in zip(scores, best, strict=True)]


class ClassifierRuntime(ModelRuntime):
    """A runtime over one graph with one input ``[n, ...]`` and a ``probabilities`` ``[n, labels]`` output.

    ``load`` calls ``preprocessing`` (``ModelRuntime``'s) and ``open_session``; ``predict`` and the tasks build
    the fed batch with the domain's codecs (``decoded_batch`` where they decode client media) and answer with
    ``prediction`` (V2) or ``classify_batch`` (a top-k task).
    """

    session: ort.InferenceSession
    labels: tuple[str, ...]  # the manifest's, one per column of PROBABILITIES
    fed: str  # the graph's input
    served_input: str  # the manifest's first served input: what a V2 request sends
    engine_outputs: list[str]
    served_outputs: list[str]

    def open_session(self, input_shape: tuple[int, ...], *, serves_graph_input: bool = False) -> None:
        """Load the graph and refuse one that does not map ``input_shape`` to PROBABILITIES ``[-1, labels]``.

        ``serves_graph_input``: V2 requests send the graph's own input (a table of numbers, say), so the
        manifest's served inputs must be the graph's, or the protocol's shape checks would not hold for it.
        """
        engine, self.labels = self.manifest.engine, self.manifest.labels or ()
        if len(engine.inputs) != 1 or not self.manifest.inputs:
            has = f"{len(engine.inputs)} graph inputs and {len(self.manifest.inputs)} served"
            raise ModelLoadError(f"{self.label}: a classifier feeds one graph input from a served one; has {has}")
        self.session = self.engine_session()  # names and datatypes
        shapes, expected = {t.name: t.shape for t in engine.outputs}, (-1, len(self.labels))
        if (engine.inputs[0].shape, shapes.get(PROBABILITIES)) != (input_shape, expected):
            raise ModelLoadError(f"{self.label}: the graph must map {input_shape} to {PROBABILITIES} {expected}")
        if serves_graph_input and self.manifest.inputs != engine.inputs:
            raise ModelLoadError(f"{self.label}: the manifest must serve the graph's own input {input_shape}")
        self.served_outputs = [t.name for t in self.manifest.outputs]
        if missing := sorted(set(self.served_outputs) - set(shapes)):  # found here, not by the first request
            raise ModelLoadError(f"{self.label}: the manifest serves outputs the graph lacks: {missing}")
        self.fed, self.served_input = engine.inputs[0].name, self.manifest.inputs[0].name
        self.engine_outputs = list(shapes)

    def decoded_batch(
        self,
        items: Sequence[Any],
        cost: Callable[..., float],
        decode: Callable[..., Tensor],
        *,
        limit: float,
        unit: str,
        param: str,
    ) -> Tensor:
        """The fed batch from client media (images, audio files): every item's ``cost(item, where=...)``, read
        from its header, summed and held to ``limit`` (a 413) before any is decoded; then each item's
        ``decode(item, where=...)``, shrunk to what the graph takes before the next is decoded, stacked.
        """
        each = decode_within(items, cost=cost, decode=decode, limit=limit, unit=unit, param=param)
        return np.stack(list(each))

    def run(self, batch: Tensor) -> dict[str, Tensor]:
        """Every output of the graph for one fed batch, by name."""
        values = self.session.run(self.engine_outputs, {self.fed: batch})
        return dict(zip(self.engine_outputs, values, strict=True))

    def prediction(self, batch: Tensor, *, unit: str) -> Prediction:
        """The manifest's served outputs for ``batch``, its length billed as ``unit`` (images, rows, ...)."""
        outputs = self.run(batch)
        return Prediction(outputs={name: outputs[name] for name in self.served_outputs}, usage={unit: len(batch)})

    def classify_batch(self, batch: Tensor, *, k: int, unit: str) -> TaskResult:
        """A top-k task's answer: each item's ``k`` most likely labels and their scores, best first."""
        answers = top_k(self.run(batch)[PROBABILITIES], self.labels, k)
        return TaskResult(outputs=answers, usage={unit: len(answers)})
