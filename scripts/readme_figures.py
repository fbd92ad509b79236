"""The rule that keeps measured figures in the README traced to the committed artefacts a script wrote.

A document is read block by block: a paragraph, a list item or a table row (fenced code is skipped). What a
block states is its literal text, as for a model card: ``card_figures.literal_text`` takes out code spans, link
targets, URLs and comments, and here quotations too (``"..."``: an error message or a history entry shown as an
example). Its figures are ``card_figures``'s, and here a figure may carry a unit.

A figure is **measured** when it is written

- with a unit of measurement: ``ms``, ``µs``, ``s``, a rate (``req/s``, ``tokens/s``, ``/s``, ``per s``), ``KB``,
  ``MB``, ``GB``, ``MiB``, ``GiB``, ``%``, a ratio (``x`` or the multiplication sign), or after ``$``;
- with a decimal part or an exponent (``0.72``, ``1e-5``): a quality, a ratio, a rate;
- or in a table column whose header holds one of those units (``| req/s |``).

Whole numbers without a unit count or name things (``16`` rows, a ``503``, ``384`` dimensions) and are not read,
so a measured range gives both of its bounds their unit (``15 % to 32 %``).
A figure that looks measured is a **constant** of the design (a limit, a default, a setting), and may stay
typed, when the text says so:

- it is a setting's value, written straight after the code that names it: `` `AIMASS_BODY_TIMEOUT_S` (30 s) ``,
  `` `free` 2/s ``;
- it is a bound: written after ``at most``, ``up to``, ``default``, ``every``, ``limit``, ``budget``,
  ``cache``/``cached``, ``past``, ``≥`` or ``≤``, or before ``limit``/``minimum`` (``the 6 MiB body limit``,
  ``Lambda's 1 ms minimum``, ``≥ 0.95x``);
- it is a version, after ``Python`` or ``HTTP/`` (``HTTP/1.1``).

A block that states a measured figure must **cite** the artefact it comes from: a committed bench record
``bench/records/<name>.json``, or a model's ``models/<domain>/<model>/record.json`` or ``MODEL_CARD.md`` (the
card's sources and its rendered text). A table row also has the citations of its table's header and of the
paragraph just above the table; a list item those of the paragraph just above the list. Every measured figure of
the block must then be **traced** to the artefacts it cites by ``card_figures.traced``: a number of theirs,
written to the figure's precision, gives it (a ``%`` figure is a fraction's percent).

    python scripts/readme_figures.py [FILE...]   # README.md and bench/README.md by default; exit 1 naming
                                                 # each figure that fails
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script, the repository root is not on sys.path
    sys.path.insert(0, str(REPO))

from models.buildkit.card import CARD_FILE, read_template  # noqa: E402
from models.buildkit.card_figures import (  # noqa: E402
    SourceNumbers,
    figure_pattern,
    literal_text,
    source_numbers,
    traced,
)

DOCUMENTS = ("README.md", "bench/README.md")

_RATE = r"(?:req|requests|tok|tokens|sentences|items|rows|images|files|clips|observations)?/s|per s"
_UNITS = rf"ms|µs|s|{_RATE}|KB|MB|GB|MiB|GiB|x|\u00d7"
FIGURE = figure_pattern(_UNITS)
CITATION = re.compile(r"bench/records/[\w.-]+\.json|models/[\w-]+/[\w-]+/(?:record\.json|MODEL_CARD\.md)")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_HEADER_UNIT = re.compile(rf"(?<![\w/])(?:{_UNITS}|%|\$)(?![\w/])")
_SETTING_VALUE = re.compile(rf"(?P<code>`[^`\n]+`\s?\(?)(?P<value>\$?{FIGURE.pattern})")
_BOUND_BEFORE = re.compile(
    r"(?:\b(?:at most|up to|default:?|every|limit|budget|cached|cache|past|Python|HTTP/)|[≥≤])\s*\(?\s*~?$",
    re.IGNORECASE,
)
_BOUND_AFTER = re.compile(r"^\s*(?:[\w-]+\s+)?(?:limit|minimum)\b")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+\.)\s")
_NOTHING = re.compile(r"(?!)")


class FigureError(Exception):
    """A README states a measured figure it does not cite, or one that no cited artefact holds."""


@dataclass(frozen=True)
class Block:
    text: str
    line: int  # of its first line, 1-based
    kind: str  # "paragraph", "item", "row"
    lead: str = ""  # what it inherits citations from: the table's header and the paragraph above
    header: tuple[str, ...] = ()  # a row's column headers


def blocks(markdown: str) -> list[Block]:
    """The paragraphs, list items and table rows of ``markdown``, without its fenced code."""
    found: list[Block] = []
    group: list[tuple[int, str]] = []
    fenced = False
    previous_paragraph = ""
    for number, line in enumerate([*markdown.splitlines(), ""], 1):
        if _FENCE.match(line):
            fenced = not fenced
            found.extend(_split(group, previous_paragraph))
            group = []
            continue
        if fenced:
            continue
        if line.strip():
            group.append((number, line))
            continue
        found.extend(_split(group, previous_paragraph))
        if group:
            last = found[-1]
            previous_paragraph = last.text if last.kind == "paragraph" else ""
        group = []
    return found


def _split(group: list[tuple[int, str]], above: str) -> Iterator[Block]:
    if not group:
        return
    lines = [text for _, text in group]
    if lines[0].lstrip().startswith("|"):
        header = _cells(lines[0])
        for number, text in group[1:]:
            if not re.fullmatch(r"[\s|:-]+", text):
                yield Block(text, number, "row", lead=above + "\n" + lines[0], header=header)
        return
    paragraph: list[tuple[int, str]] = []
    items: list[list[tuple[int, str]]] = []
    for number, text in group:
        if _ITEM.match(text):
            items.append([(number, text)])
        elif items:
            items[-1].append((number, text))
        else:
            paragraph.append((number, text))
    lead = ""
    if paragraph:
        lead = "\n".join(text for _, text in paragraph)
        yield Block(lead, paragraph[0][0], "paragraph")
    for item in items:
        yield Block("\n".join(text for _, text in item), item[0][0], "item", lead=lead or above)


def _cells(row: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in row.strip().strip("|").split("|"))


def measured(block: Block) -> list[re.Match[str]]:
    """The measured figures ``block`` states (the rule is this module's docstring)."""
    # Code first, so that a quotation mark inside code never pairs with one in prose.
    text = literal_text(literal_text(_SETTING_VALUE.sub(_blank_value, block.text), _NOTHING), _QUOTED)
    if block.kind != "row":
        return _measured(text, unit_column=False)
    found: list[re.Match[str]] = []
    for index, cell in enumerate(_cells(text)):
        title = literal_text(block.header[index], _NOTHING) if index < len(block.header) else ""
        found.extend(_measured(cell, unit_column=bool(_HEADER_UNIT.search(title))))
    return found


def _measured(text: str, *, unit_column: bool) -> list[re.Match[str]]:
    found: list[re.Match[str]] = []
    for match in FIGURE.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        dollar = before.endswith("$")
        written = match["unit"] or match["percent"] or match["fraction"] or match["exponent"] or dollar
        if (written or unit_column) and not _constant(before.removesuffix("$"), after):
            found.append(match)
    return found


def _constant(before: str, after: str) -> bool:
    return bool(_BOUND_BEFORE.search(before) or _BOUND_AFTER.match(after))


def _blank_value(match: re.Match[str]) -> str:
    return match["code"] + " " * (match.end() - match.start("value"))


def citations(block: Block) -> list[str]:
    return sorted(set(CITATION.findall(block.text + "\n" + block.lead)))


def cited_numbers(paths: Sequence[str], repo: Path = REPO) -> SourceNumbers:
    """The numbers of the cited artefacts; a missing one is an error naming it."""
    sources: dict[str, Any] = {}
    for path in paths:
        file = repo / path
        if not file.is_file():
            raise FigureError(f"{path} is cited but does not exist: commit the record, or cite one that exists")
        if file.name == CARD_FILE:
            sources[path] = {"card": file.read_text(), "sources": read_template(file.parent).sources()}
        else:
            sources[path] = json.loads(file.read_text())
    return source_numbers(sources)


def problems(markdown: str, name: str = "README.md", repo: Path = REPO) -> list[str]:
    """Every measured figure of ``markdown`` that cites nothing, or that no cited artefact holds."""
    found: list[str] = []
    for block in blocks(markdown):
        figures = measured(block)
        if not figures:
            continue
        cited = citations(block)
        written = ", ".join(_shown(match) for match in figures)
        if not cited:
            found.append(
                f"{name}:{block.line}: {written} measured, but the {block.kind} cites no artefact: name the "
                "bench/records/<name>.json or models/<domain>/<model>/record.json it comes from, or say it in words"
            )
            continue
        try:
            numbers = cited_numbers(cited, repo)
        except FigureError as error:
            found.append(f"{name}:{block.line}: {error}")
            continue
        for match in figures:
            if not traced(match, numbers):
                found.append(
                    f"{name}:{block.line}: {_shown(match)} is in none of {', '.join(cited)} at the "
                    "precision written: cite the record that holds it, measure it again, or say it in words"
                )
    return found


def _shown(match: re.Match[str]) -> str:
    return " ".join(match.group(0).split())


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:]) or list(DOCUMENTS)
    found = [problem for path in paths for problem in problems((REPO / path).read_text(), path)]
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
