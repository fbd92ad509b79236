"""The alias rules: promote, canary, rollback as a stack, and the history every change leaves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aimass.errors import InvalidInput, NotFound
from aimass.store.aliases import ModelAliases, canary, promote, rollback

NAME = "tiny-text"
VERSIONS = ["1", "2", "3", "4"]


def promoted(*versions: str) -> ModelAliases:
    aliases = ModelAliases()
    for version in versions:
        aliases = promote(NAME, aliases, version, VERSIONS)
    return aliases


def test_without_a_document_the_newest_version_serves_numerically() -> None:
    assert ModelAliases().serving(["2", "10", "9"]) == "10"
    assert ModelAliases().serving([]) is None


def test_promote_sets_production_ends_a_canary_and_records_why() -> None:
    # GIVEN production 1 with a canary on 2
    aliases = canary(NAME, promoted("1"), "2", 10, VERSIONS)
    # WHEN 3 is promoted
    aliases = promote(NAME, aliases, "3", VERSIONS, reason="better recall")
    # THEN 3 serves, the canary is over, and the history says so
    assert (aliases.production, aliases.canary, aliases.canary_percent) == ("3", None, 0)
    assert aliases.serving(VERSIONS) == "3"
    assert [c.action for c in aliases.history] == ["promote", "canary", "promote"]
    assert aliases.history[-1].reason == "better recall" and aliases.history[-1].production == "3"


def test_canary_takes_a_share_while_production_stays() -> None:
    aliases = canary(NAME, promoted("1"), "2", 25, VERSIONS)
    assert (aliases.production, aliases.canary, aliases.canary_percent) == ("1", "2", 25)
    assert aliases.history[-1].canary == "2" and aliases.history[-1].canary_percent == 25


@pytest.mark.parametrize("percent", [0, 100, -5, 250])
def test_a_canary_percent_outside_1_to_99_is_invalid(percent: int) -> None:
    with pytest.raises(InvalidInput, match=f"canary percent must be between 1 and 99, got {percent}") as caught:
        canary(NAME, promoted("1"), "2", percent, VERSIONS)
    assert caught.value.param == "percent"


def test_a_canary_of_the_serving_version_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="version 4 of model 'tiny-text' is already the one serving"):
        canary(NAME, ModelAliases(), "4", 10, VERSIONS)  # no production: the newest serves


@pytest.mark.parametrize(
    "change",
    [
        lambda: promote(NAME, ModelAliases(), "7", VERSIONS),
        lambda: canary(NAME, ModelAliases(), "7", 10, VERSIONS),
    ],
)
def test_an_unknown_version_is_not_found_and_the_published_ones_are_named(change: Callable[[], object]) -> None:
    with pytest.raises(NotFound, match=r"model 'tiny-text' has no version '7'; published versions: 1, 2, 3, 4"):
        change()


def test_rollback_with_a_canary_only_ends_the_canary() -> None:
    aliases = rollback(NAME, canary(NAME, promoted("1", "2"), "3", 10, VERSIONS), VERSIONS)
    assert (aliases.production, aliases.canary, aliases.canary_percent) == ("2", None, 0)
    assert aliases.history[-1].action == "end-canary"


def test_repeated_rollbacks_walk_back_through_earlier_production_versions() -> None:
    aliases = promoted("1", "2", "3")
    aliases = rollback(NAME, aliases, VERSIONS)
    assert aliases.production == "2"
    aliases = rollback(NAME, aliases, VERSIONS)
    assert aliases.production == "1"  # not back to 3: a rollback pops, it does not undo the last one
    with pytest.raises(InvalidInput, match="model 'tiny-text' has no earlier usable production version"):
        rollback(NAME, aliases, VERSIONS)


def test_a_promotion_after_a_rollback_is_rolled_back_to_what_served_before_it() -> None:
    aliases = rollback(NAME, promoted("1", "2", "3"), VERSIONS)  # production 2
    aliases = promote(NAME, aliases, "4", VERSIONS)
    assert rollback(NAME, aliases, VERSIONS).production == "2"


def test_nothing_to_roll_back_to_without_two_promotions() -> None:
    with pytest.raises(InvalidInput, match="no earlier usable production version") as caught:
        rollback(NAME, promoted("1"), VERSIONS)
    assert caught.value.param == "name"


def test_the_document_round_trips_through_json() -> None:
    aliases = canary(NAME, rollback(NAME, promoted("1", "2"), VERSIONS), "3", 5, VERSIONS)
    assert ModelAliases.model_validate_json(aliases.model_dump_json()) == aliases
