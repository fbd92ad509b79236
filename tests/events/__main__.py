"""``python -m tests.events [--check]``: write every event of ``tests/events/specs.py`` to ``tests/events/``.

The events are the table's and those of the requests files in ``tests/events/requests/`` (a scaffolded
domain's). With ``--check`` nothing is written; the exit status is 1 when a file is missing, differs from what
the builder makes, or is in neither.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aimass_tools.events import event_text
from tests.events.specs import SPECS, build

EVENTS = Path(__file__).parent


def render(name: str) -> str:
    """The text of ``tests/events/<name>.json``."""
    return event_text(build(name))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale: list[str] = []
    for name in SPECS:
        path, text = EVENTS / f"{name}.json", render(name)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text, encoding="utf-8")
    strays = sorted(p.name for p in EVENTS.glob("*.json") if p.stem not in SPECS)
    for name in strays:
        print(f"tests/events/{name} is in neither tests/events/specs.py nor tests/events/requests/", file=sys.stderr)
    if check and stale:
        print(f"out of date (run python -m tests.events): {', '.join(stale)}", file=sys.stderr)
    elif stale:
        print(f"wrote {len(stale)} of {len(SPECS)} events: {', '.join(stale)}")
    return 1 if strays or (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
