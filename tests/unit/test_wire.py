"""Integers in headers and query strings: decimal digits as HTTP writes them, not Python's int() syntax."""

from __future__ import annotations

import pytest

from aimass.protocol.wire import decimal


@pytest.mark.parametrize(
    ("written", "value"), [("0", 0), ("104", 104), (b"104", 104), ("007", 7), ("9" * 18, 10**18 - 1)]
)
def test_decimal_digits_are_read(written: str | bytes, value: int) -> None:
    assert decimal(written) == value


@pytest.mark.parametrize(
    "written",
    [
        "",
        "1_0_4",
        "+104",
        "-1",
        " 104",
        "104\n",
        "1e3",
        "0x68",
        "10.0",
        "\u0661\u0660\u0664",
        "\u00b2",
        "9" * 19,
        "1" * 5000,
    ],
)
def test_anything_else_is_not_a_number(written: str) -> None:
    assert decimal(written) is None
