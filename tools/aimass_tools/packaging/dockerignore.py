""".dockerignore: the twin copies what the build context holds, not what the checkout holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

# (is an exception "!", the pattern as a regular expression over context-relative POSIX paths)
Rule = tuple[bool, re.Pattern[str]]


def read_dockerignore(context: Path) -> list[Rule]:
    """(is an exception "!", pattern) per line, in order: the last pattern that matches decides."""
    path = context / ".dockerignore"
    rules: list[Rule] = []
    if not path.exists():
        return rules
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    # Docker's matching: "**" spans directories, "*" and "?" stay within one path component.
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(table.get(part, re.escape(part)) for part in parts)


def is_ignored(path: PurePosixPath, rules: Sequence[Rule]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out; a pattern excludes what is below it."""
    candidates = [str(path), *(str(parent) for parent in path.parents if str(parent) != ".")]
    ignored = False
    for negate, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negate
    return ignored
