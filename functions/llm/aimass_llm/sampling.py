"""Choosing the next token from a step's logits: penalties, temperature, nucleus (top-p), greedy.

Pure numpy over one row of logits, so every rule is tested without a model. The penalties are OpenAI's: each
token's logit falls by ``frequency_penalty`` for every time it was generated so far, and by
``presence_penalty`` once if it was generated at all. Log-probabilities are reported from the penalised logits
before temperature, so they describe the model's view of the text rather than the sampler's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]
# A temperature below this is greedy: the draw would be greedy's anyway.
GREEDY_BELOW = 1e-6
NUCLEUS_FIRST = 256  # tokens sorted first when looking for a nucleus


@dataclass(frozen=True)
class Choice:
    token: int
    logprob: float | None  # None unless asked for
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


def nucleus(probs: npt.NDArray[np.floating[Any]], top_p: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """The fewest likeliest tokens whose share of ``probs`` (unnormalised weights) reaches ``top_p``: their ids,
    likeliest first, and their weights.

    A vocabulary is tens of thousands of tokens and a nucleus usually a handful: the likeliest ``k`` are found
    by partition, and sorted; only when they hold less than ``top_p`` is ``k`` grown (a full sort at worst).
    """
    target = top_p * float(probs.sum(dtype=np.float64))
    size = len(probs)
    k = min(NUCLEUS_FIRST, size)
    while True:
        candidates = np.argpartition(probs, size - k)[size - k :] if k < size else np.arange(size)
        order = candidates[np.argsort(-probs[candidates], kind="stable")]
        mass = np.cumsum(probs[order], dtype=np.float64)
        if mass[-1] >= target or k == size:
            # The token that crosses top_p is kept: at least one token always is.
            keep = order[: min(int(np.searchsorted(mass, target, side="left")) + 1, k)]
            return keep, probs[keep]
        k = min(4 * k, size)


def draw(weights: npt.NDArray[Any], rng: np.random.Generator) -> int:
    """An index drawn in proportion to ``weights`` (non-negative, not all zero), by one uniform draw."""
    cumulative = np.cumsum(weights, dtype=np.float64)
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(weights) - 1)


def choose(
    logits: Logits,
    *,
    temperature: float,
    top_p: float,
    rng: np.random.Generator,
    logprobs: bool = False,
    top_logprobs: int = 0,
) -> Choice:
    """The next token: the likeliest at temperature 0 (or nearly), else a draw over the tempered nucleus.

    Its log-probability (and the ``top_logprobs`` likeliest) only when asked: they cost a softmax over the
    whole vocabulary, as much as the rest of the choice.
    """
    if temperature < GREEDY_BELOW:
        token = int(np.argmax(logits))
    else:
        # Shifted by the maximum before exp, float32 cannot overflow however small the temperature: the
        # likeliest token weighs 1, the rest less (or 0).
        scaled = logits / np.float32(temperature)
        weights = np.exp(scaled - scaled.max())
        if top_p < 1.0:
            kept, kept_weights = nucleus(weights, top_p)
            token = int(kept[draw(kept_weights, rng)])
        else:
            token = draw(weights, rng)
    if not logprobs and not top_logprobs:
        return Choice(token, None, ())
    every = log_softmax(logits)
    top: tuple[tuple[int, float], ...] = ()
    if top_logprobs:
        best = np.argsort(-every, kind="stable")[:top_logprobs]
        top = tuple((int(i), float(every[i])) for i in best)
    return Choice(token, float(every[token]), top)
