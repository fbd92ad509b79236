"""Tensor (imported models): wine measurements in, the imported pipeline's label and probabilities out. An item
is one row of 13 measurements.

The request carries the graph's own FP32 [n, 13] tensor (the tensor domain serves an imported graph's own
tensors), so the floor has nothing to decode: it feeds the rows as they are (the default floor). What this
measures is what the generic function adds over the raw engine, with no domain code for the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.workload import Array, Feeds, Outputs, Request, Route, Workload, close, v2_outputs

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.manifest import ModelManifest

Row = tuple[float, ...]
BATCH = 32
# Centres and half-widths of the 13 measurements of scikit-learn's wine data (alcohol .. proline): rows across
# the range the pipeline was trained on.
CENTRE = (13.0, 2.3, 2.4, 19.5, 100.0, 2.3, 2.0, 0.36, 1.6, 5.1, 0.96, 2.6, 750.0)
SPREAD = (1.0, 1.5, 0.4, 4.0, 20.0, 0.8, 1.2, 0.15, 0.7, 2.5, 0.3, 0.9, 400.0)
SCORES = "probabilities"


def rows(count: int = BATCH, seed: int = 0) -> list[Row]:
    """Varied, reproducible rows; 3 decimals, so JSON carries exactly the float32 values fed to the graph."""
    drawn = np.asarray(CENTRE) + np.random.default_rng(seed).uniform(-1, 1, (count, len(CENTRE))) * SPREAD
    return [tuple(float(np.float32(round(float(v), 3))) for v in row) for row in drawn]


def _classify_request(manifest: ModelManifest, items: Sequence[Row]) -> Request:
    body = {"model": manifest.name, "rows": [list(r) for r in items], "top_k": 3}
    return Request("/v1/tensor/classify-rows", json.dumps(body).encode())


class TensorWorkload(Workload[Row]):
    domain = "tensor"
    noun = "row"
    codec_label = "the graph's own FP32 rows, cast"
    v2_template = "apigw_http_v2_tensor_infer"

    def items(self) -> Sequence[Row]:
        return rows()

    def v2_input(self, manifest: ModelManifest, items: Sequence[Row]) -> dict[str, Any]:
        spec = manifest.inputs[0]
        return {"name": spec.name, "shape": [len(items), spec.shape[-1]], "datatype": "FP32", "data": list(items)}

    def predict_inputs(self, manifest: ModelManifest, items: Sequence[Row]) -> dict[str, Array]:
        return {manifest.inputs[0].name: np.asarray(items, dtype=np.float32)}

    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[Row]) -> Feeds:
        return {runtime.manifest.engine.inputs[0].name: np.asarray(items, dtype=np.float32)}

    def v2_agrees(self, body: bytes | str, expected: Outputs) -> bool:
        """The probabilities (the second output: the first is the label, strings) against the graph's."""
        names = [output["name"] for output in json.loads(body)["outputs"]]
        got = v2_outputs(body)[names.index(SCORES)]
        return close(np.asarray(got, dtype=np.float32), expected[SCORES], atol=self.atol, rtol=self.rtol)

    def routes(self) -> tuple[Route[Row], ...]:
        return (Route("classify", "/v1/tensor/classify-rows", self.v2_template, _classify_request, self._ranks),)

    def _ranks(self, body: bytes | str, expected: Outputs) -> bool:
        ranked = json.loads(body)["outputs"]
        probabilities = expected[SCORES]
        best = [[item["score"] for item in row] for row in ranked]
        return all(
            close(np.asarray(row, dtype=np.float32), np.sort(p)[::-1], atol=self.atol, rtol=self.rtol)
            for row, p in zip(best, probabilities, strict=True)
        )

    def describe(self, runtime: ModelRuntime, item: Row) -> dict[str, Any]:
        return {"row": list(item), "imported_from": runtime.manifest.source}


WORKLOAD = TensorWorkload()
