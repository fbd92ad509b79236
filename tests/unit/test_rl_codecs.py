"""The rl domain's codecs: observation checks that name the bad row, and the action choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aimass.errors import InvalidInput
from aimass.serving.domains import checkout_domains

checkout_domains()  # functions/rl onto the import path, as the server finds the domain

from aimass_rl.codecs import check_finite, choose_actions, observation_batch  # noqa: E402

FIELDS = ("cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity")


def test_rows_become_one_float32_batch() -> None:
    batch = observation_batch([[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]], FIELDS, where="observations")
    assert batch.dtype == np.float32 and batch.shape == (2, 4)
    np.testing.assert_array_equal(batch[1], [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("rows", "expected", "param"),
    [
        ([[0.0] * 4, [0.0] * 3], "observations[1] has 3 values; expected 4: cart_position, cart_velocity", "[1]"),
        ([[0.0] * 5], "observations[0] has 5 values; expected 4", "[0]"),
        ([[0.0] * 4, [0.0, math.nan, 0.0, 0.0]], "observations[1][1] (cart_velocity) is nan; expected a finite", "[1]"),
        ([[0.0, 0.0, math.inf, 0.0]], "observations[0][2] (pole_angle) is inf", "[0]"),
        ([[0.0, 0.0, 0.0, -math.inf]], "observations[0][3] (pole_angular_velocity) is -inf", "[0]"),
        # Finite as a JSON (float64) number, infinite as the FP32 the graph takes.
        ([[1e39, 0.0, 0.0, 0.0]], "observations[0][0] (cart_position) is inf; expected a finite number within", "[0]"),
    ],
)
def test_bad_rows_are_named(rows: list[list[float]], expected: str, param: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        observation_batch(rows, FIELDS, where="observations")
    assert expected in raised.value.message
    assert raised.value.param == f"observations{param}"


def test_tensor_check_names_the_first_non_finite_value() -> None:
    tensor = np.zeros((3, 4), dtype=np.float32)
    tensor[2, 0], tensor[1, 3] = np.nan, np.inf
    with pytest.raises(InvalidInput, match=r"input 'observation'\[1\]\[3\] \(pole_angular_velocity\) is inf"):
        check_finite(tensor, FIELDS, where="input 'observation'")


def test_deterministic_choice_is_the_most_likely_action() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    actions = choose_actions(probabilities, deterministic=True)
    assert actions.tolist() == [0, 1, 0] and actions.dtype == np.int64


def test_sampling_follows_the_probabilities_and_repeats_with_a_seed() -> None:
    probabilities = np.tile(np.array([[0.25, 0.75]], dtype=np.float32), (20_000, 1))
    first = choose_actions(probabilities, deterministic=False, seed=7)
    assert first.tolist() == choose_actions(probabilities, deterministic=False, seed=7).tolist()
    assert first.tolist() != choose_actions(probabilities, deterministic=False, seed=8).tolist()
    assert abs(first.mean() - 0.75) < 0.02


def test_sampling_never_picks_an_impossible_action() -> None:
    # Rows that sum to a hair under 1 in float32 still land on a real action.
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.99999994]] * 1000, dtype=np.float32)
    actions = choose_actions(probabilities, deterministic=False, seed=0).reshape(-1, 3)
    assert (actions[:, 0] == 0).all() and (actions[:, 1] == 1).all() and (actions[:, 2] == 1).all()
