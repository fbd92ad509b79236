"""The served path in-process: the rl domain's own runtime over a built model directory, as the server loads it.

The build's quick check plays episodes through ``PolicyRuntime.act`` (observation checks, ONNX Runtime
with the server's session options, the action choice of ``aimass_rl.codecs``), so what it measures is
what the ``act`` task answers; ``evaluate_http`` then measures the same through a real server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.rl.cartpole.episodes import Policy

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from aimass_rl.runtime import PolicyRuntime


def served_runtime(directory: Path) -> PolicyRuntime:
    """Load ``directory`` (a model version with its manifest) with the rl domain's runtime."""
    from aimass.serving.domains import checkout_domains
    from aimass.serving.session import SessionFactory
    from aimass.settings import Settings
    from aimass.store.base import ModelArtifact
    from aimass.store.manifest import read_manifest

    checkout_domains()  # functions/rl onto the import path
    from aimass_rl.runtime import PolicyRuntime

    artifact = ModelArtifact(manifest=read_manifest(directory), directory=directory)
    runtime = PolicyRuntime(artifact, SessionFactory(Settings(model_store=directory.parent)))
    runtime.load()
    return runtime


def act_policy(runtime: PolicyRuntime, *, sampling_seed: int | None = None) -> Policy:
    """The ``act`` task as a policy for ``play``: greedy actions for a batch of observations; with
    ``sampling_seed``, sampled ones (``deterministic: false``), the request of time step t seeded with
    ``sampling_seed + t`` so that a run is reproducible."""
    import itertools

    from aimass_rl.runtime import ActRequest

    steps = itertools.count()

    def policy(observations: npt.NDArray[np.float32]) -> list[int]:
        step = next(steps)
        request = ActRequest(
            observations=observations.tolist(),
            deterministic=sampling_seed is None,
            seed=None if sampling_seed is None else sampling_seed + step,
        )
        actions: list[int] = runtime.act(request).outputs["actions"]
        return actions

    return policy
