"""Observations in, actions out: the checks and the action choice shared by the server and the model builds.

The build plays its quality episodes through these same functions, so what it measures is what a
request gets. numpy only: the function image carries no simulator and no training framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aimass.errors import InvalidInput

Observations = npt.NDArray[np.float32]
Actions = npt.NDArray[np.int64]


def observation_batch(rows: Sequence[Sequence[float]], fields: Sequence[str], *, where: str) -> Observations:
    """JSON rows as FP32 ``[n, len(fields)]``; InvalidInput names the first row of the wrong size or value."""
    for index, row in enumerate(rows):
        if len(row) != len(fields):
            raise InvalidInput(
                f"{where}[{index}] has {len(row)} values; expected {len(fields)}: {', '.join(fields)}",
                param=f"{where}[{index}]",
            )
    with np.errstate(over="ignore"):  # a float64 past float32's range becomes inf, refused just below
        observations = np.array(rows, dtype=np.float32).reshape(len(rows), len(fields))
    check_finite(observations, fields, where=where)
    return observations


def check_finite(observations: Observations, fields: Sequence[str], *, where: str) -> None:
    """Refuse NaN, infinities and values past float32's range, naming the first one's row and field."""
    bad = ~np.isfinite(observations)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            f"{where}[{row}][{column}] ({fields[column]}) is {observations[row, column]}; "
            "expected a finite number within the float32 range",
            param=f"{where}[{row}]",
        )


def choose_actions(probabilities: npt.NDArray[Any], *, deterministic: bool, seed: int | None = None) -> Actions:
    """The most likely action of each row, or one drawn from its probabilities (reproducible with ``seed``)."""
    actions: Actions
    if deterministic:
        actions = probabilities.argmax(axis=1).astype(np.int64)
        return actions
    draws = np.random.default_rng(seed).random((len(probabilities), 1))
    # Inverse CDF: the action is the number of cumulative probabilities the draw reaches; the clip covers
    # rows whose float32 probabilities sum to a hair under 1.
    reached = (draws >= np.cumsum(probabilities, axis=1, dtype=np.float64)).sum(axis=1)
    actions = np.minimum(reached, probabilities.shape[1] - 1).astype(np.int64)
    return actions
