"""Choosing the next token from a step's logits: penalties, temperature, nucleus (top-p), greedy.

Pure numpy over one row of logits, so every rule is tested without a model. The penalties are OpenAI's: each
token's logit falls by ``frequency_penalty`` for every time it was generated so far, and by
``presence_penalty`` once if it was generated at all. Log-probabilities are reported from the penalised logits
before temperature, so they describe the model's view of the text rather than the sampler's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]
# A temperature below this is greedy: dividing by it overflows float64, and the draw is greedy's anyway.
GREEDY_BELOW = 1e-6


@dataclass(frozen=True)
class Choice:
    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]  # the likeliest tokens and their log-probabilities, best first


def penalised(logits: Logits, counts: dict[int, int], presence: float, frequency: float) -> Logits:
    if not counts or (presence == 0 and frequency == 0):
        return logits
    out = logits.astype(np.float32, copy=True)
    ids = np.fromiter(counts, dtype=np.int64)
    times = np.fromiter(counts.values(), dtype=np.float32)
    out[ids] -= times * np.float32(frequency) + np.float32(presence)
    return out


def log_softmax(logits: Logits) -> npt.NDArray[np.float64]:
    wide = logits.astype(np.float64)
    shifted = wide - wide.max()
    out: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum())
    return out


def nucleus(probs: npt.NDArray[np.float64], top_p: float) -> npt.NDArray[np.float64]:
    """``probs`` kept to the fewest likeliest tokens whose mass reaches ``top_p``, renormalised."""
    if top_p >= 1.0:
        return probs
    order = np.argsort(-probs, kind="stable")
    mass = np.cumsum(probs[order])
    # The token that crosses top_p is kept: at least one token always is.
    keep = order[: int(np.searchsorted(mass, top_p, side="left")) + 1]
    kept = np.zeros_like(probs)
    kept[keep] = probs[keep]
    out: npt.NDArray[np.float64] = kept / kept.sum()
    return out


def choose(
    logits: Logits,
    *,
    temperature: float,
    top_p: float,
    rng: np.random.Generator,
    top_logprobs: int = 0,
) -> Choice:
    """The next token: the likeliest at temperature 0 (or nearly), else a draw over the tempered nucleus."""
    logprobs = log_softmax(logits)
    if temperature < GREEDY_BELOW:
        token = int(np.argmax(logits))
    else:
        # In float64: a temperature near 0 scales logits past float32's range, and a draw needs finite odds.
        scaled = logits.astype(np.float64) / temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        probs = nucleus(probs, top_p)
        token = int(rng.choice(len(probs), p=probs))
    top: tuple[tuple[int, float], ...] = ()
    if top_logprobs:
        best = np.argsort(-logprobs, kind="stable")[:top_logprobs]
        top = tuple((int(i), float(logprobs[i])) for i in best)
    return Choice(token, float(logprobs[token]), top)
