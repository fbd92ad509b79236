"""The manifest of this model version: what the server loads, what the observations are, the measured quality."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import timestamp
from models.rl.cartpole.spec import (
    ACTIONS,
    ENGINE_INPUT,
    ENGINE_OUTPUTS,
    ENV_ID,
    NAME,
    OBSERVATION_FIELDS,
    VERSION,
)


def build_manifest(work: Path, quality: dict[str, Any]) -> ModelManifest:
    """Describe the files built into ``work`` (hashed here, so call it after they are all written)."""
    gymnasium = metadata.version("gymnasium")
    observation = (TensorSpec(name=ENGINE_INPUT, datatype="FP32", shape=(-1, len(OBSERVATION_FIELDS))),)
    outputs = tuple(TensorSpec(name=name, datatype="FP32", shape=(-1, len(ACTIONS))) for name in ENGINE_OUTPUTS)
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="rl",
        validation="samples.json",  # run by every serving process before this version takes traffic
        task="policy",
        description=(
            f"A {ENV_ID} policy: a 4-64-64-2 tanh MLP trained with PPO. Observations in, action logits and "
            "probabilities out; the act task picks the most likely action or samples one."
        ),
        source=(
            f"trained from scratch by models/rl/cartpole/build.py in gymnasium {gymnasium}'s {ENV_ID}; "
            "no external weights"
        ),
        license="Apache-2.0",
        files=(file_entry(work, "model.onnx"), file_entry(work, "samples.json")),
        engine=EngineSpec(file="model.onnx", inputs=observation, outputs=outputs),
        inputs=observation,
        outputs=outputs,
        preprocessing={"environment": ENV_ID, "observation_fields": list(OBSERVATION_FIELDS)},
        labels=ACTIONS,
        quality=quality,
        created_at=timestamp(),
    )
