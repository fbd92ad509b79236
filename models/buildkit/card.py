"""Model cards rendered from what the builds wrote: ``MODEL_CARD.md`` = render(``card.md``, its sources).

``models/<domain>/<model>/card.md`` is the card's prose. Its first line names its sources, JSON files in the
model's folder (the build record first)::

    <!-- card sources: record=record.json previous=previous.json -->

and every figure that comes from a measurement is a placeholder, ``{{ path | filter :format }}``:

- ``path`` walks the sources from a source's name: ``record.quality.accuracy``, ``record.files.0.size``, a
  key that is not a name, ``record.quality.photos[chelsea.png]``, or a list's item by a key of it,
  ``record.files[path=model.onnx].size``;
- filters (any number, in order): ``k`` (to thousands), ``mb`` (to millions), ``gb``, ``mib`` (bytes to
  MiB), ``minutes`` (from seconds), ``sub1`` (1 - x), ``len``, ``sum``, ``min``, ``max``, ``join`` (a list
  as "a, b, c"), ``pairs`` (a mapping as "a 0.95, b 1"), ``sizes`` (file entries to their sizes:
  ``record.files | sizes | sum | mb``);
- ``:format`` is a Python format spec: ``:.3f``, ``:,`` (thousands), ``:.1%``.

``check`` fails when ``MODEL_CARD.md`` is not the rendering of its template (a hand edit or a stale card), or
when the template's own text states a figure no source holds (the rule is ``card_figures``'s docstring).

    python -m models.buildkit.card record models/text/minilm [--store model_store]   # the store -> record.json
    python -m models.buildkit.card render models/text/minilm                         # -> MODEL_CARD.md
    python -m models.buildkit.card check                                             # every catalogued model
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.buildkit.build_record import write_record
from models.buildkit.card_figures import literal_text, source_numbers, untraced
from models.buildkit.errors import BuildError
from models.catalogue import catalogue

TEMPLATE_FILE = "card.md"
CARD_FILE = "MODEL_CARD.md"
_REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_HEADER = re.compile(r"<!-- card sources:((?:\s+\w+=[\w./-]+)+)\s*-->\n")
_STEP = re.compile(r"\.?(?:([A-Za-z_][\w-]*)|(\d+)|\[(\w+)=([^\]]+)\]|\[([^\]=]+)\])")
_FILTERS: dict[str, Callable[[Any], Any]] = {
    "k": lambda x: x / 1e3,
    "minutes": lambda x: x / 60,
    "mib": lambda x: x / 2**20,
    "mb": lambda x: x / 1e6,
    "gb": lambda x: x / 1e9,
    "sub1": lambda x: 1 - x,
    "len": len,
    "sum": sum,
    "min": min,
    "max": max,
    "join": lambda xs: ", ".join(str(x) for x in xs),
    "sizes": lambda files: [file["size"] for file in files],
    "pairs": lambda mapping: ", ".join(f"{key} {value:.3g}" for key, value in mapping.items()),
}


class CardError(BuildError):
    """A template cannot be rendered (a missing source or value), or a card does not pass its check."""


@dataclass(frozen=True)
class Template:
    model_dir: Path
    source_files: dict[str, str]
    body: str

    def sources(self) -> dict[str, Any]:
        loaded: dict[str, Any] = {}
        for name, file in self.source_files.items():
            path = self.model_dir / file
            if not path.is_file():
                raise CardError(f"{self.model_dir / TEMPLATE_FILE} names source {name}={file}, but {path} is missing")
            loaded[name] = json.loads(path.read_text())
        return loaded


def read_template(model_dir: Path) -> Template:
    path = model_dir / TEMPLATE_FILE
    if not path.is_file():
        raise CardError(f"{model_dir} has no {TEMPLATE_FILE}: write the card there; render makes {CARD_FILE} of it")
    text = path.read_text()
    header = _HEADER.match(text)
    if header is None:
        raise CardError(f"{path}: the first line must name the sources, e.g. <!-- card sources: record=record.json -->")
    files = dict(pair.split("=", 1) for pair in header.group(1).split())
    return Template(model_dir, files, text[header.end() :])


def render(template: Template) -> str:
    sources = template.sources()
    where = template.model_dir.relative_to(_REPO) if template.model_dir.is_relative_to(_REPO) else template.model_dir
    note = (
        f"<!-- Generated from {TEMPLATE_FILE} and {', '.join(template.source_files.values())}: edit those, then "
        f"run `python -m models.buildkit.card render {where}`. -->\n"
    )
    return note + PLACEHOLDER.sub(lambda match: _fill(match.group(1), sources, template), template.body)


def check(model_dir: Path) -> list[str]:
    """Every reason ``model_dir``'s card is wrong; empty when it is the rendering of its template and sources."""
    template = read_template(model_dir)
    problems: list[str] = []
    card = model_dir / CARD_FILE
    if not card.is_file() or card.read_text() != render(template):
        problems.append(
            f"{card} is not the rendering of {TEMPLATE_FILE} with its sources (edited by hand, or stale): "
            f"run python -m models.buildkit.card render {model_dir}"
        )
    numbers = source_numbers(template.sources())
    for figure in untraced(literal_text(template.body, PLACEHOLDER), numbers):
        problems.append(
            f"{model_dir / TEMPLATE_FILE}:{figure.line + 1}: the figure {figure.text} is in no source "
            f"({', '.join(template.source_files.values())}); make it a placeholder into a source, or remove it"
        )
    return problems


def lookup(sources: Any, path: str) -> Any:
    value = sources
    position = 0
    while position < len(path):
        step = _STEP.match(path, position)
        if step is None or step.end() == position:
            raise KeyError(f"cannot read {path[position:]!r}")
        key, index, field, wanted, name = step.groups()
        if key is not None or name is not None:
            value = value[key if key is not None else name]
        elif index is not None:
            value = value[int(index)]
        else:
            value = next(item for item in value if str(item.get(field)) == wanted)
        position = step.end()
    return value


def _fill(expression: str, sources: dict[str, Any], template: Template) -> str:
    expression, spec = _split_format(expression)
    path, *filters = (part.strip() for part in expression.split("|"))
    try:
        value = lookup(sources, path)
        for name in filters:
            value = _FILTERS[name](value)
        return format(value, spec.strip()) if spec.strip() else _plain(value)
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as error:
        where = template.model_dir / TEMPLATE_FILE
        raise CardError(f"{where}: cannot render {{{{{expression}}}}}: {error!r}") from error


def _split_format(expression: str) -> tuple[str, str]:
    # The format spec follows the first colon outside brackets: a key in brackets may hold one (flite:rms).
    depth = 0
    for position, char in enumerate(expression):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == ":" and depth == 0:
            return expression[:position], expression[position + 1 :]
    return expression, ""


def _plain(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def model_dirs(given: Sequence[str]) -> list[Path]:
    if given:
        return [Path(path).resolve() for path in given]
    return [entry.build_script.parent for entry in catalogue()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.buildkit.card", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "render", "check"))
    parser.add_argument("model_dirs", nargs="*", help="models/<domain>/<model> folders [default: every model]")
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="where record reads the build")
    args = parser.parse_args(argv)
    failed = False
    for model_dir in model_dirs(args.model_dirs):
        try:
            if args.action == "record":
                print(f"wrote {write_record(model_dir, args.store)}")
            elif args.action == "render":
                (model_dir / CARD_FILE).write_text(render(read_template(model_dir)))
                print(f"wrote {model_dir / CARD_FILE}")
            else:
                for problem in check(model_dir):
                    failed = True
                    print(problem, file=sys.stderr)
        except BuildError as error:
            failed = True
            print(error, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
