"""Word error rate: the words a transcript got wrong, as the edit distance between word sequences."""

from __future__ import annotations

import re
from collections.abc import Sequence

_NOT_IN_WORDS = re.compile(r"[^a-z0-9' ]+")
# The pronouncing dictionary spells these titles as abbreviations; a reference may spell them out.
_SPELLED = {"mister": "mr", "missus": "mrs", "doctor": "dr"}


def words(text: str) -> list[str]:
    """Lower case, punctuation and hyphens as spaces (the recogniser writes words, not punctuation), titles
    abbreviated as the dictionary spells them."""
    return [_SPELLED.get(w, w) for w in _NOT_IN_WORDS.sub(" ", text.lower().replace("-", " ")).split()]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning ``reference`` into ``hypothesis`` (Levenshtein on words)."""
    previous = list(range(len(hypothesis) + 1))
    for i, said in enumerate(reference, start=1):
        current = [i]
        for j, heard in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (said != heard)))
        previous = current
    return previous[-1]


def error_rate(pairs: Sequence[tuple[str, str]]) -> dict[str, float | int]:
    """The word error rate of (reference, hypothesis) texts together, over all their reference words."""
    errors = sum(word_errors(words(said), words(heard)) for said, heard in pairs)
    total = sum(len(words(said)) for said, _ in pairs)
    return {"wer": round(errors / total, 4) if total else 0.0, "errors": errors, "words": total}
