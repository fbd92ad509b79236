"""Policies: observations → ONNX policy network → action logits and probabilities; the ``act`` task on top."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import ConfigDict, Field

from aimass.errors import ModelLoadError
from aimass.schema import Schema
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import TaskResult, TaskSpec
from aimass_rl.codecs import check_finite, choose_actions, observation_batch

# The act task's batch limit, the V2 routes' default (Settings.max_batch_items): the task route does not
# see the settings, and one environment step per row keeps a request far below Lambda's 6 MB response.
MAX_OBSERVATIONS = 256
PROBABILITIES = "probabilities"


class PolicyPreprocessing(Schema):
    """The ``preprocessing`` block of a policy's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    environment: str = Field(description="the environment the policy was trained in, e.g. CartPole-v1")
    observation_fields: tuple[str, ...] = Field(min_length=1, description="what each observation column is")


class ActRequest(Schema):
    """``POST /v1/rl/act``: one observation per environment, one action back for each."""

    model_config = ConfigDict(extra="forbid")

    observations: list[list[float]] = Field(
        min_length=1, max_length=MAX_OBSERVATIONS, description="a batch of observations, one row per environment"
    )
    deterministic: bool = Field(default=True, description="take the most likely action; false samples one")
    seed: int | None = Field(default=None, ge=0, description="makes sampling reproducible; unused when deterministic")


class PolicyRuntime(ModelRuntime):
    def load(self) -> None:
        self.pre = self.preprocessing(PolicyPreprocessing)
        self.session = self.engine_session()
        engine = self.manifest.engine

        served, width = self.manifest.inputs, len(self.pre.observation_fields)
        # Observations go to the graph as they arrive: the served input is the graph's, one row per environment.
        if (
            len(served) != 1
            or engine.inputs != served
            or (served[0].datatype, served[0].shape) != ("FP32", (-1, width))
        ):
            raise ModelLoadError(f"{self.label}: the rl runtime serves one FP32 [-1, {width}] input, the graph's own")
        self.input_name = served[0].name
        self.engine_outputs = [spec.name for spec in engine.outputs]
        self.served_outputs = [spec.name for spec in self.manifest.outputs]
        missing = {PROBABILITIES, *self.served_outputs} - set(self.engine_outputs)
        if missing:
            raise ModelLoadError(f"{self.label}: the graph has no output(s) {sorted(missing)}")
        self._tasks = {
            "act": TaskSpec(request=ActRequest, run=self.act, summary="Choose an action for each observation")
        }

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        observations = np.asarray(inputs[self.input_name], dtype=np.float32)
        check_finite(observations, self.pre.observation_fields, where=f"input '{self.input_name}'")
        outputs = self._run(observations)
        return Prediction(
            outputs={name: outputs[name] for name in self.served_outputs},
            usage={"observations": len(observations)},
        )

    def tasks(self) -> dict[str, TaskSpec]:
        return self._tasks

    def act(self, request: ActRequest) -> TaskResult:
        observations = observation_batch(request.observations, self.pre.observation_fields, where="observations")
        probabilities = self._run(observations)[PROBABILITIES]
        actions = choose_actions(probabilities, deterministic=request.deterministic, seed=request.seed)
        return TaskResult(
            outputs={"actions": actions.tolist(), "probabilities": probabilities.tolist()},
            usage={"observations": len(observations)},
        )

    def _run(self, observations: Tensor) -> dict[str, Tensor]:
        values = self.session.run(self.engine_outputs, {self.input_name: observations})
        return dict(zip(self.engine_outputs, values, strict=True))
