"""PPO on CartPole-v1: a 4-64-64-2 tanh actor and a critic of the same shape, trained until the greedy
policy balances the pole for the full 500 steps in every gate episode, within a hard cap on steps and time.

Proximal Policy Optimisation with clipped objective and generalised advantage estimation, as in Schulman
et al. (2017) and CleanRL's single-file version. Experience comes from gymnasium's numpy-vectorised
CartPole (``vector_entry_point``), which resets a finished environment on the following step
("next-step" autoreset): that step's transition is not a real one and is masked out of the update. A
truncated episode (500 steps) is bootstrapped with the critic's value of its last state; a terminated one
is not. Every random choice derives from ``TRAIN_SEED``, and PyTorch runs on one thread, so a rebuild gives
the same weights.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, console
from models.rl.cartpole.episodes import play
from models.rl.cartpole.spec import ENV_ID, GATE_SEEDS, HIDDEN, MAX_RETURN, TRAIN_SEED

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch


@dataclass(frozen=True)
class PPOConfig:
    num_envs: int = 8
    num_steps: int = 256  # per environment and update: 2,048 transitions an update
    epochs: int = 4
    minibatches: int = 4
    learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    # The gate runs once the last 20 training episodes average this much (sampled actions, so below greedy).
    gate_after_mean: float = 450.0
    # Consecutive updates whose greedy policy must pass the gate: a policy that passes once can sit on the
    # edge of a collapse, and then still drops an episode in a hundred on other seeds.
    gate_streak: int = 2
    # Hard caps: past either, the build fails instead of serving a policy that did not clear the gate.
    max_env_steps: int = 600_000
    max_seconds: float = 180.0


@dataclass
class TrainingReport:
    env_steps: int = 0
    updates: int = 0
    seconds: float = 0.0
    gate_checks: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        passed = self.gate_checks[-1]
        return {
            "algorithm": "PPO (clipped objective, GAE)",
            "env_steps": self.env_steps,
            "updates": self.updates,
            "gate_checks": len(self.gate_checks),
            "gate_mean_return": passed["mean"],
            "gate_min_return": passed["min"],
        }


def train(config: PPOConfig | None = None) -> tuple[torch.nn.Module, TrainingReport]:
    """Train until the greedy actor lasts the full 500 steps in every gate episode; return it."""
    import gymnasium as gym
    import numpy as np
    import torch

    config = config or PPOConfig()
    torch.manual_seed(TRAIN_SEED)
    torch.set_num_threads(1)  # tiny matrices: threads cost more than they bring, and one thread is reproducible
    actor, critic = _network(2, 0.01), _network(1, 1.0)
    optimiser = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=config.learning_rate, eps=1e-5)
    envs = gym.make_vec(ENV_ID, num_envs=config.num_envs, vectorization_mode="vector_entry_point")
    observation, _ = envs.reset(seed=TRAIN_SEED)
    envs.action_space.seed(TRAIN_SEED)

    report = TrainingReport()
    started = time.perf_counter()
    shape = (config.num_steps, config.num_envs)
    buffers = {name: np.zeros(shape, dtype=np.float32) for name in ("reward", "value", "logp", "terminated", "done")}
    observations = np.zeros((*shape, 4), dtype=np.float32)
    actions = np.zeros(shape, dtype=np.int64)
    valid = np.zeros(shape, dtype=bool)
    previous_done = np.zeros(config.num_envs, dtype=bool)
    episode_return = np.zeros(config.num_envs, dtype=np.float64)
    recent: deque[float] = deque(maxlen=20)
    streak = 0

    while True:
        fraction = 1.0 - report.env_steps / config.max_env_steps
        optimiser.param_groups[0]["lr"] = config.learning_rate * max(fraction, 0.05)
        for step in range(config.num_steps):
            observations[step] = observation
            valid[step] = ~previous_done  # next-step autoreset: this step only resets the environment
            with torch.no_grad():
                obs = torch.from_numpy(observation)
                distribution = torch.distributions.Categorical(logits=actor(obs))
                action = distribution.sample()  # type: ignore[no-untyped-call]
                buffers["logp"][step] = distribution.log_prob(action).numpy()  # type: ignore[no-untyped-call]
                buffers["value"][step] = critic(obs).squeeze(-1).numpy()
            actions[step] = action.numpy()
            observation, reward, terminated, truncated, _ = envs.step(actions[step])
            buffers["reward"][step] = reward
            buffers["terminated"][step] = terminated
            done = terminated | truncated
            buffers["done"][step] = done
            episode_return += reward
            recent.extend(episode_return[done].tolist())
            episode_return[done] = 0.0
            previous_done = done
        with torch.no_grad():
            last_value = critic(torch.from_numpy(observation)).squeeze(-1).numpy()
        advantages = _gae(buffers, last_value, config)
        _update(actor, critic, optimiser, observations, actions, buffers, advantages, valid, config)
        report.env_steps += config.num_steps * config.num_envs
        report.updates += 1

        if len(recent) == recent.maxlen and float(np.mean(recent)) >= config.gate_after_mean:
            returns = np.array(play(greedy(actor), GATE_SEEDS))
            check = {"env_steps": report.env_steps, "mean": float(returns.mean()), "min": float(returns.min())}
            report.gate_checks.append(check)
            console.print(
                f"  gate after {report.env_steps:,} steps: greedy mean return {check['mean']:.1f} "
                f"(min {check['min']:.0f}) over {len(returns)} episodes"
            )
            streak = streak + 1 if check["min"] >= MAX_RETURN else 0
            if streak >= config.gate_streak:
                break
        report.seconds = time.perf_counter() - started
        if report.env_steps >= config.max_env_steps or report.seconds >= config.max_seconds:
            envs.close()
            best = max((c["mean"] for c in report.gate_checks), default=float(np.mean(recent or [0.0])))
            raise BuildError(
                f"PPO did not reach a return of {MAX_RETURN} in all {len(GATE_SEEDS)} gate episodes within "
                f"{report.env_steps:,} steps and {report.seconds:.0f} s; best greedy mean return {best:.1f}"
            )
    envs.close()
    report.seconds = time.perf_counter() - started
    return actor.eval(), report


def greedy(actor: torch.nn.Module) -> Any:
    """The actor as a policy for ``play``: the most likely action of each observation."""
    import torch

    def policy(observations: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        with torch.no_grad():
            return actor(torch.from_numpy(observations)).argmax(dim=1).numpy()  # type: ignore[no-any-return]

    return policy


def _network(outputs: int, last_gain: float) -> torch.nn.Module:
    import numpy as np
    import torch

    layers = [torch.nn.Linear(4, HIDDEN), torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.Linear(HIDDEN, outputs)]
    # Orthogonal initialisation, with a small last layer so the first policy is close to uniform.
    for layer, gain in zip(layers, (np.sqrt(2), np.sqrt(2), last_gain), strict=True):
        torch.nn.init.orthogonal_(layer.weight, gain)
        torch.nn.init.zeros_(layer.bias)
    return torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1], torch.nn.Tanh(), layers[2])


def _gae(
    buffers: dict[str, npt.NDArray[np.float32]], last_value: npt.NDArray[np.float32], config: PPOConfig
) -> npt.NDArray[np.float32]:
    import numpy as np

    values, rewards = buffers["value"], buffers["reward"]
    advantages = np.zeros_like(rewards)
    following = np.zeros_like(last_value)
    for step in reversed(range(config.num_steps)):
        # The state after step t is the next row's observation: the last state of a finished episode too,
        # since next-step autoreset returns it first. Terminal states are worth nothing; truncated ones are.
        next_value = last_value if step == config.num_steps - 1 else values[step + 1]
        delta = rewards[step] + config.gamma * next_value * (1.0 - buffers["terminated"][step]) - values[step]
        following = delta + config.gamma * config.gae_lambda * (1.0 - buffers["done"][step]) * following
        advantages[step] = following
    return advantages


def _update(
    actor: torch.nn.Module,
    critic: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    observations: npt.NDArray[np.float32],
    actions: npt.NDArray[np.int64],
    buffers: dict[str, npt.NDArray[np.float32]],
    advantages: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    config: PPOConfig,
) -> None:
    import torch

    keep = torch.from_numpy(valid.reshape(-1))
    obs = torch.from_numpy(observations.reshape(-1, 4))[keep]
    act = torch.from_numpy(actions.reshape(-1))[keep]
    old_logp = torch.from_numpy(buffers["logp"].reshape(-1))[keep]
    adv = torch.from_numpy(advantages.reshape(-1))[keep]
    returns = adv + torch.from_numpy(buffers["value"].reshape(-1))[keep]
    size = len(obs)
    batch = -(-size // config.minibatches)
    parameters = [*actor.parameters(), *critic.parameters()]
    for _ in range(config.epochs):
        order = torch.randperm(size)
        for start in range(0, size, batch):
            index = order[start : start + batch]
            distribution = torch.distributions.Categorical(logits=actor(obs[index]))
            ratio = (distribution.log_prob(act[index]) - old_logp[index]).exp()  # type: ignore[no-untyped-call]
            mb_adv = adv[index]
            mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            policy_loss = -torch.min(ratio * mb_adv, ratio.clamp(1 - config.clip, 1 + config.clip) * mb_adv).mean()
            value_loss = (critic(obs[index]).squeeze(-1) - returns[index]).pow(2).mean()
            entropy = distribution.entropy().mean()  # type: ignore[no-untyped-call]
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimiser.step()
