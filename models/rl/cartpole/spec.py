"""What this model is: the numbers the training, the graph, the server and the card agree on."""

from __future__ import annotations

NAME = "cartpole-ppo"
VERSION = "1"
ENV_ID = "CartPole-v1"
# Gymnasium's CartPole observation, in order, and its two actions.
OBSERVATION_FIELDS = ("cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity")
ACTIONS = ("push_left", "push_right")
HIDDEN = 64
OPSET = 17

ENGINE_INPUT = "observation"
ENGINE_OUTPUTS = ("logits", "probabilities")

# The quality criterion: CartPole-v1's own reward threshold (gymnasium's spec says 475) as the mean return
# of the greedy policy over 100 episodes; an episode ends at 500 steps at most.
EPISODES = 100
MIN_MEAN_RETURN = 475.0
MAX_RETURN = 500
# Training stops once the greedy policy clears a stricter bar in-process, on episodes of its own seeds, so
# that the measurement through the API (other seeds) has a margin: every one of 200 episodes lasts 500 steps.
# A policy that first averages 475 often still drops an episode in a hundred; this one rarely does.
GATE_EPISODES = 200

# Seeds: every random choice of the build derives from these.
TRAIN_SEED = 0
GATE_SEEDS = range(10_000, 10_000 + GATE_EPISODES)  # the in-process check during training
QUALITY_SEEDS = range(20_000, 20_000 + EPISODES)  # the measurement through the HTTP API
SAMPLE_SEEDS = range(30_000, 30_005)  # the episodes whose observations become samples.json
# Reported beside the criterion, not gated: the same episodes with sampled actions (the act task with
# deterministic false, time step t's request seeded SAMPLING_SEED + t), and a longer run through the API.
SAMPLING_SEED = 40_000
LONG_EPISODES = 1_000
LONG_SEEDS = range(20_000, 20_000 + LONG_EPISODES)  # QUALITY_SEEDS and 900 more
SAMPLE_COUNT = 8
SAMPLE_TOLERANCE = 1e-5  # max abs difference on logits and probabilities, ONNX Runtime vs PyTorch
