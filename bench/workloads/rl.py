"""RL: CartPole observations in, action logits and probabilities out. An item is one observation.

The request carries the graph's own FP32 [n, 4] tensor, so the floor has nothing to decode: it feeds the
observations as they are (the default floor).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from bench.workload import Array, Feeds, Outputs, Request, Route, Workload, close

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.manifest import ModelManifest
    from aimass_rl.runtime import PolicyRuntime

Observation = tuple[float, ...]
BATCH = 32
# Half-widths of the states CartPole-v1 visits before it ends an episode: cart position and velocity,
# pole angle (rad) and angular velocity.
SPREAD = (2.0, 1.5, 0.2, 2.0)


def observations(count: int = BATCH, seed: int = 0) -> list[Observation]:
    """Varied, reproducible states; 4 decimals, so JSON carries exactly the float32 values fed to the graph."""
    rows = np.random.default_rng(seed).uniform(-1, 1, (count, len(SPREAD))) * SPREAD
    return [tuple(round(float(v), 4) for v in row) for row in rows]


def _act_request(manifest: ModelManifest, rows: Sequence[Observation]) -> Request:
    return Request("/v1/rl/act", json.dumps({"observations": [list(r) for r in rows], "deterministic": True}).encode())


class RlWorkload(Workload[Observation]):
    domain = "rl"
    noun = "observation"
    codec_label = "observations to FP32, finite check"
    v2_template = "apigw_http_v2_rl_infer"

    def items(self) -> Sequence[Observation]:
        return observations()

    def v2_input(self, manifest: ModelManifest, items: Sequence[Observation]) -> dict[str, Any]:
        spec = manifest.inputs[0]
        data = [value for row in items for value in row]
        return {"name": spec.name, "shape": [len(items), spec.shape[-1]], "datatype": "FP32", "data": data}

    def predict_inputs(self, manifest: ModelManifest, items: Sequence[Observation]) -> dict[str, Array]:
        return {manifest.inputs[0].name: np.asarray(items, dtype=np.float32)}

    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[Observation]) -> Feeds:
        from aimass_rl.codecs import check_finite

        policy = cast("PolicyRuntime", runtime)
        batch = np.asarray(items, dtype=np.float32)
        check_finite(batch, policy.pre.observation_fields, where=policy.input_name)
        return {policy.input_name: batch}

    def routes(self) -> tuple[Route[Observation], ...]:
        return (Route("act", "/v1/rl/act", "apigw_http_v2_rl_act", _act_request, self._act_agrees),)

    def _act_agrees(self, body: bytes | str, expected: Outputs) -> bool:
        outputs = json.loads(body)["outputs"]
        probabilities = expected["probabilities"]
        got = np.asarray(outputs["probabilities"], dtype=np.float32)
        actions = [int(a) for a in probabilities.argmax(axis=1)]
        return outputs["actions"] == actions and close(got, probabilities, atol=self.atol, rtol=self.rtol)

    def describe(self, runtime: ModelRuntime, item: Observation) -> dict[str, Any]:
        return {"observation": list(item)}


WORKLOAD = RlWorkload()
