"""The committed sizing record (``bench/records/sizing.json``), and every ``function.toml`` checked against it.

``bench/sizing.py`` writes the record: when and on what machine it ran, and per domain what it measured and the
``memory_mb`` and ``timeout_s`` its rules suggest. A function whose size rests on another measurement is named
with the script that measures it (``SIZED_OTHERWISE``). ``disagreements`` lists every ``function.toml`` that
differs from the record by more than the tolerance below: the gate fails on a stale size
(tests/unit/test_bench_sizing_record.py), and the fix is a sizing run, or a file that follows the record.

Tolerance: ``memory_mb`` within ``MEMORY_TOLERANCE_MB`` of the suggestion (the rule's rounding step, so a peak
that moves by a few megabytes between runs does not fail the gate; a change of vCPU share does); ``timeout_s``
equal to the suggestion (already rounded to one of a few steps), or longer where the function also serves a
model this run does not time and its ``function.toml`` cites the script that measures that model
(``TIMED_ELSEWHERE``): speech's transcription model, sphinx-en-us.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "bench" / "records" / "sizing.json"
MEMORY_TOLERANCE_MB = 64


@dataclass(frozen=True)
class SizedOtherwise:
    by: str  # the script whose numbers the function.toml quotes
    why: str


# Functions whose memory and timeout bench/sizing.py does not suggest.
SIZED_OTHERWISE = {
    "tensor": SizedOtherwise(
        "bench/tensor.py",
        "serves imported models of any size: its memory is what the largest import it accepts needs "
        "(aimass.importing.memory, from bench/tensor.py's ratios), not what its catalogued import tensor-wine "
        "needs; its timeout is API Gateway's limit, as an imported model's cost is its owner's",
    ),
    "llm": SizedOtherwise(
        "bench/llm.py",
        "generation, not fixed-size requests: memory from the build's and bench/llm.py's peaks and the two "
        "threads its decode rate was measured with; its timeout is API Gateway's limit, what a long answer needs",
    ),
    "authorizer": SizedOtherwise("bench/authorizer.py", "not a model domain: a key check"),
}

# Models a function serves that bench/sizing.py does not time (it times each domain's workload model), and
# the script that measures them. The function's timeout may exceed the suggestion for them, if its
# function.toml cites that script.
TIMED_ELSEWHERE = {"sphinx-en-us": "bench/transcription.py"}
NOT_MEASURED = "not measured by any bench script"

TOLERANCE = {
    "memory_mb": f"within {MEMORY_TOLERANCE_MB} MB of the suggestion",
    "timeout_s": "equal to the suggestion; longer only where the function serves a model this run does not "
    "time ('timed_elsewhere') and function.toml cites the script that measures it",
}
ABOUT = (
    "Written by bench/sizing.py; functions/<domain>/function.toml's memory_mb and timeout_s are checked against "
    "each domain's 'suggested' within 'tolerance' (bench/sizing_record.py)."
)


@dataclass(frozen=True)
class FunctionSize:
    """What a function.toml says: its size and, for the citations, its whole text."""

    memory_mb: int
    timeout_s: int
    text: str


def read_functions(repo: Path = REPO) -> dict[str, FunctionSize]:
    """Every ``functions/<name>/function.toml``, by name."""
    found = {}
    for path in sorted(repo.glob("functions/*/function.toml")):
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
        found[path.parent.name] = FunctionSize(int(raw["memory_mb"]), int(raw["timeout_s"]), text)
    return found


def timed_elsewhere(models: Sequence[str], timed: str) -> dict[str, str]:
    """The function's models other than ``timed``, each with the script that measures it."""
    return {model: TIMED_ELSEWHERE.get(model, NOT_MEASURED) for model in models if model != timed}


def merged(
    previous: Mapping[str, Any] | None, entries: Mapping[str, Any], *, measured_at: str, machine: Mapping[str, Any]
) -> dict[str, Any]:
    """The record after a run: this run's domains replace theirs, every other domain's entry is kept."""
    domains = dict(previous.get("domains", {})) if previous else {}
    domains.update(entries)
    return {
        "about": ABOUT,
        "updated_at": measured_at,  # each domain's own time is its entry's measured_at
        "machine": dict(machine),
        "tolerance": TOLERANCE,
        "sized_otherwise": {name: {"by": s.by, "why": s.why} for name, s in sorted(SIZED_OTHERWISE.items())},
        "domains": dict(sorted(domains.items())),
    }


def _cites(function: FunctionSize, script: str) -> bool:
    return script in function.text


def disagreements(record: Mapping[str, Any], functions: Mapping[str, FunctionSize]) -> list[str]:
    """Every way the function.toml files differ from the record beyond the tolerance; empty when they agree."""
    domains: Mapping[str, Any] = record.get("domains", {})
    problems = []
    for name in sorted(set(domains) - set(functions)):
        problems.append(f"the sizing record has {name}, but there is no functions/{name}/function.toml")
    for name, function in sorted(functions.items()):
        where = f"functions/{name}/function.toml"
        if name in SIZED_OTHERWISE:
            if not _cites(function, SIZED_OTHERWISE[name].by):
                problems.append(f"{where} is sized by {SIZED_OTHERWISE[name].by}, but does not cite it")
            continue
        entry = domains.get(name)
        if entry is None:
            problems.append(f"{where}: no sizing in the record; run bench/sizing.py --domains {name}")
            continue
        suggested, when = entry["suggested"], entry.get("measured_at", "?")
        rerun = f"(record of {when}; rerun bench/sizing.py --domains {name} on a quiet machine, or follow it)"
        if abs(function.memory_mb - suggested["memory_mb"]) > MEMORY_TOLERANCE_MB:
            problems.append(
                f"{where}: memory_mb {function.memory_mb}, the record suggests {suggested['memory_mb']} "
                f"(within {MEMORY_TOLERANCE_MB} MB) {rerun}"
            )
        if function.timeout_s != suggested["timeout_s"]:
            elsewhere = entry.get("timed_elsewhere", {})
            cited = bool(elsewhere) and all(
                script != NOT_MEASURED and _cites(function, script) for script in elsewhere.values()
            )
            if not (cited and function.timeout_s > suggested["timeout_s"]):
                because = f"; longer only citing {sorted(elsewhere.values())}" if elsewhere else ""
                problems.append(
                    f"{where}: timeout_s {function.timeout_s}, the record suggests {suggested['timeout_s']}"
                    f"{because} {rerun}"
                )
    return problems
