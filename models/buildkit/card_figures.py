"""The rule that keeps typed figures out of model cards: every figure in a template's own text is a source's.

A template's literal text is what is left of it once its placeholders, fenced code blocks, inline code
spans, URLs and link targets are taken out. In that text:

- a **figure** is a run of digits, optionally with thousands separators (``90,370,745``), a decimal part
  (``0.72``) and an exponent (``1.2e-06``), that touches no letter, digit, underscore or dot on either side
  and does not follow a word and a hyphen; so ``opset17``, ``int8``, ``v2``, ``Q4_1``, ``3.0x`` and
  ``ILSVRC-2012`` are names, not figures. A sign is not part of a figure: ``-0.0122`` is the figure ``0.0122``;
- a **version** is a dotted run of three or more numbers (``6.3.0``);
- a figure of a single digit with no decimal part (``4 epochs``, ``3 by 3``) is exempt: it counts things in
  prose.

A figure is **traced** when a number of the sources, written to the figure's own precision, gives the
figure: ``0.72`` is traced by 0.719179, ``90,370,745`` by 90370745, ``1.2e-06`` by 1.19209e-06. A figure
followed by ``%`` is compared as a fraction (``95.4%`` by 0.954198). A version is traced when a source
string contains it. The numbers of the sources are every number in them, every key that is a number
(``{"16": ...}``), and every figure and version written inside their strings ("opset 17", "133 train, 45
held-out rows"), compared without sign.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WHOLE_FIGURE = re.compile(r"\d+(\.\d+)?")
_VERSION = re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w]|\.\d)")
_NUMBER = r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?P<fraction>\.\d+)?(?P<exponent>[eE][-+]?\d+)?"


def figure_pattern(units: str = "") -> re.Pattern[str]:
    """Figures as the rule above reads them, in groups ``whole``, ``fraction``, ``exponent`` and ``percent``.

    ``units``, a regex alternation, lets a figure carry a unit, glued or after one space (``2.64x``, ``76.9 ms``),
    in group ``unit``: the README's check reads ratios such as ``2.64x`` as figures, where a card reads them as
    names.
    """
    unit = rf"(?:\s?(?P<unit>{units}))?" if units else ""
    return re.compile(rf"(?<![\w.])(?<![A-Za-z]-){_NUMBER}{unit}(?![\w]|\.\d)(?P<percent>\s?%)?")


_FIGURE = figure_pattern()


@dataclass(frozen=True)
class Figure:
    text: str
    line: int


@dataclass(frozen=True)
class SourceNumbers:
    numbers: frozenset[float]
    versions: frozenset[str]


def literal_text(body: str, placeholder: re.Pattern[str]) -> str:
    """The template's own text: what remains once everything a figure may legitimately sit in is blanked.

    Blanking keeps every character's line, so an untraced figure is reported at its line in ``card.md``.
    """
    text = body
    for pattern in (placeholder, _FENCED, _COMMENT, _CODE_SPAN, _LINK_TARGET, _URL):
        text = pattern.sub(_blank, text)
    return text


def untraced(text: str, sources: SourceNumbers) -> list[Figure]:
    found: list[Figure] = []
    for match in _VERSION.finditer(text):
        if match.group(0) not in sources.versions:
            found.append(Figure(match.group(0), _line(text, match.start())))
    text = _VERSION.sub(_blank, text)
    for match in _FIGURE.finditer(text):
        if len(match["whole"]) == 1 and not match["fraction"] and not match["exponent"]:
            continue
        if not traced(match, sources):
            found.append(Figure(match.group(0).strip(), _line(text, match.start())))
    return found


def source_numbers(sources: Mapping[str, Any]) -> SourceNumbers:
    numbers: set[float] = set()
    versions: set[str] = set()
    for leaf in _leaves(sources):
        if isinstance(leaf, str):
            versions.update(_VERSION.findall(leaf))
            for match in _FIGURE.finditer(_VERSION.sub(_blank, leaf)):
                numbers.add(_value(match))
        elif isinstance(leaf, int | float) and not isinstance(leaf, bool) and math.isfinite(leaf):
            numbers.add(abs(float(leaf)))
    return SourceNumbers(frozenset(numbers), frozenset(versions))


def traced(figure: re.Match[str], sources: SourceNumbers) -> bool:
    """Whether a number of the sources, written to the precision of ``figure`` (``figure_pattern``'s), gives it."""
    fraction = figure["fraction"] or ""
    value = _value(figure)
    digits = len(fraction) - 1 if fraction else 0
    if figure["exponent"]:
        return any(float(f"{number:.{digits}e}") == value for number in sources.numbers)
    scale = 100.0 if figure["percent"] else 1.0
    return any(float(f"{number * scale:.{digits}f}") == value for number in sources.numbers)


def _value(figure: re.Match[str]) -> float:
    return float(figure["whole"].replace(",", "") + (figure["fraction"] or "") + (figure["exponent"] or ""))


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _WHOLE_FIGURE.fullmatch(str(key)):
                yield float(key)  # a table keyed by a figure: {"16": {...}} for 16 streams
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
