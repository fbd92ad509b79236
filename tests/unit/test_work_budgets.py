"""The per-request work budgets' building blocks: the 413, the header pass before decoding, the string cut."""

from __future__ import annotations

import pytest

from aimass.errors import InvalidInput, PayloadTooLarge
from aimass.serving.batching import check_budget, decode_within
from aimass.serving.domains import checkout_domains

checkout_domains()
from aimass_text.runtime import WORD_CHARS, head  # noqa: E402


def test_a_request_within_its_budget_passes_and_one_over_it_is_a_413_naming_limit_value_and_remedy() -> None:
    check_budget(100, 100, unit="pixels", param="image")  # at the limit: accepted
    with pytest.raises(PayloadTooLarge) as raised:
        check_budget(1_568_000_000, 100_000_000, unit="pixels", param="image", counted=" (width x height)")
    assert raised.value.status_code == 413 and raised.value.code == "payload_too_large"
    assert raised.value.param == "image"
    assert raised.value.message == (
        "'image' holds 1,568,000,000 pixels (width x height), over the per-request limit of 100,000,000 pixels; "
        "split the request into smaller ones"
    )
    with pytest.raises(PayloadTooLarge, match=r"holds 30\.25 seconds of audio, over the per-request limit of 30 "):
        check_budget(30.25, 30.0, unit="seconds of audio", param="file", advice="split the audio")


class Recorder:
    """A codec whose items are their costs; it records what was asked of it, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def cost(self, item: int, *, where: str) -> int:
        self.calls.append(f"cost {where}")
        if item < 0:
            raise InvalidInput(f"{where} is broken", param=where)
        return item

    def decode(self, item: int, *, where: str) -> str:
        self.calls.append(f"decode {where}")
        return f"{where}={item}"


def test_every_header_is_read_before_anything_is_decoded_then_one_item_at_a_time() -> None:
    codec = Recorder()
    decoded = decode_within([3, 4], cost=codec.cost, decode=codec.decode, limit=7, unit="pixels", param="image")
    assert codec.calls == ["cost image[0]", "cost image[1]"]  # checked eagerly, nothing decoded yet
    assert next(decoded) == "image[0]=3"
    assert codec.calls[-1] == "decode image[0]"  # each item decoded only when the next one is asked for
    assert list(decoded) == ["image[1]=4"]


@pytest.mark.parametrize(("items", "refused"), [([3, 5], PayloadTooLarge), ([3, -1], InvalidInput)])
def test_a_request_over_budget_or_with_a_bad_item_decodes_nothing(items: list[int], refused: type[Exception]) -> None:
    codec = Recorder()
    with pytest.raises(refused):
        decode_within(items, cost=codec.cost, decode=codec.decode, limit=7, unit="pixels", param="image")
    assert not any(call.startswith("decode") for call in codec.calls)


def test_a_string_within_the_bound_is_kept_whole() -> None:
    text = "a few words " * 10
    assert head(text, len(text)) is text


def test_a_long_string_is_cut_at_its_last_whitespace_before_the_bound() -> None:
    assert head("alpha beta gamma", 12) == "alpha beta"  # "gamma" would be cut inside: the word is left out
    assert head("alpha beta gamma", 10) == "alpha beta"  # the bound falls on a whitespace: a cut between words
    assert head("alpha\tbeta\ngamma", 12) == "alpha\tbeta"  # any whitespace separates words


def test_a_long_stretch_without_whitespace_is_cut_at_the_bound() -> None:
    word = "x" * (WORD_CHARS + 50)
    assert head(f"short {word}", 160) == f"short {word}"[:160]  # no whitespace in the last WORD_CHARS
    assert head("y" * 1_000_000, 4096) == "y" * 4096
