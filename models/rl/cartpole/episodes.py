"""Playing CartPole episodes with any policy: the one loop the training gate and the quality checks share.

A policy maps a batch of observations FP32 ``[k, 4]`` to ``k`` actions. Every episode runs in its own
``gymnasium.make("CartPole-v1")`` environment, reset with its own seed, and all still-running episodes are
stepped together: one policy call per time step for the whole batch, which is what makes 100 episodes
through the HTTP API about 500 requests instead of 50,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from models.rl.cartpole.spec import ENV_ID

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Policy = Callable[["npt.NDArray[np.float32]"], "npt.ArrayLike"]


def play(policy: Policy, seeds: Iterable[int]) -> list[float]:
    """The return of one episode per seed, in seed order."""
    import gymnasium as gym
    import numpy as np

    seeds = list(seeds)
    envs = [gym.make(ENV_ID) for _ in seeds]
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    returns = [0.0] * len(envs)
    running = list(range(len(envs)))
    while running:
        actions = np.asarray(policy(np.stack([observations[i] for i in running]).astype(np.float32)))
        if actions.shape != (len(running),):
            raise ValueError(f"the policy answered {actions.shape} actions for {len(running)} observations")
        still = []
        for index, action in zip(running, actions.tolist(), strict=True):
            observation, reward, terminated, truncated, _ = envs[index].step(int(action))
            returns[index] += float(reward)
            observations[index] = observation
            if not (terminated or truncated):
                still.append(index)
        running = still
    for env in envs:
        env.close()
    return returns
