"""The committed sizing record (``bench/records/sizing.json``), and every ``function.toml`` checked against it.

``bench/sizing.py`` writes the record: when and on what machine it ran, and per domain what it measured and the
``memory_mb`` and ``timeout_s`` its rules suggest. A function whose size rests on another measurement is named
with the script that measures it (``SIZED_OTHERWISE``). ``disagreements`` lists every ``function.toml`` that
differs from the record by more than the tolerance below: the gate fails on a stale size
(tests/unit/test_bench_sizing_record.py), and the fix is a sizing run, or a file that follows the record.

Tolerance: ``memory_mb`` within ``MEMORY_TOLERANCE_MB`` of the suggestion (the rule's rounding step, so a peak
that moves by a few megabytes between runs does not fail the gate; a change of vCPU share does); ``timeout_s``
equal to the suggestion (already rounded to one of a few steps). A function that also serves a model this run
does not time (``TIMED_ELSEWHERE``: speech's transcription model, sphinx-en-us) must cite the script that times
it, and is held to the larger of the two suggestions once that script's record (``bench/records/<script>.json``,
the model's ``suggested``, by the same rules) exists; until then its timeout may be longer than this record's.
"""

from __future__ import annotations

import json
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
# the script that times them, which the function's function.toml must cite: the function follows the larger
# of that script's record's suggestion and this record's.
TIMED_ELSEWHERE = {"sphinx-en-us": "bench/transcription.py"}
NOT_MEASURED = "not measured by any bench script"

TOLERANCE = {
    "memory_mb": f"within {MEMORY_TOLERANCE_MB} MB of the suggestion",
    "timeout_s": "equal to the suggestion",
    "timed_elsewhere": "function.toml cites the script; the suggestion is the larger of this record's and that "
    "script's record's (bench/records/<script>.json); without that record yet, the timeout may be longer",
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


def elsewhere_record(script: str, repo: Path = REPO) -> Path:
    """Where a script that times a model writes its record: ``bench/records/<script's name>.json``."""
    return repo / "bench" / "records" / f"{Path(script).stem}.json"


def measured_elsewhere(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    """What the scripts of TIMED_ELSEWHERE suggest for their models, from their records (where written yet):
    model -> its entry's ``suggested`` (``memory_mb``, ``timeout_s``, by ``suggest``'s rules), with the record."""
    found = {}
    for model, script in TIMED_ELSEWHERE.items():
        path = elsewhere_record(script, repo)
        entry = json.loads(path.read_text()).get(model) if path.is_file() else None
        if isinstance(entry, dict) and isinstance(entry.get("suggested"), dict):
            found[model] = {**entry["suggested"], "record": path.relative_to(repo).as_posix()}
    return found


def _cites(function: FunctionSize, script: str) -> bool:
    return script != NOT_MEASURED and script in function.text


def _domain(name: str, function: FunctionSize, entry: Mapping[str, Any], elsewhere: Mapping[str, Any]) -> list[str]:
    """One sized function against its entry, and the records of the models it serves that the entry does not time."""
    where, suggested = f"functions/{name}/function.toml", entry["suggested"]
    rerun = (
        f"(record of {entry.get('measured_at', '?')}; rerun bench/sizing.py --domains {name} on a quiet machine, "
        "or follow it)"
    )
    untimed: Mapping[str, str] = entry.get("timed_elsewhere", {})
    measured = {model: elsewhere[model] for model in untimed if model in elsewhere}
    # The function serves every model: it needs the most any of them needs.
    needs = [("bench/records/sizing.json", suggested)]
    needs += [(f"{m['record']} ({model})", m) for model, m in measured.items()]
    memory_by, memory = max(((by, need["memory_mb"]) for by, need in needs), key=lambda item: item[1])
    timeout_by, timeout = max(((by, need["timeout_s"]) for by, need in needs), key=lambda item: item[1])
    cited = all(_cites(function, script) for script in untimed.values())
    problems = []
    if abs(function.memory_mb - memory) > MEMORY_TOLERANCE_MB:
        problems.append(
            f"{where}: memory_mb {function.memory_mb}, {memory_by} suggests {memory} (within {MEMORY_TOLERANCE_MB} "
            f"MB) {rerun}"
        )
    if untimed and not cited:
        problems.append(f"{where}: serves {sorted(untimed)}, timed by {sorted(set(untimed.values()))}: cite it")
    # A model whose script has written no record yet: its function may take longer than this record says.
    waiting = bool(untimed) and cited and len(measured) < len(untimed)
    if function.timeout_s != timeout and not (waiting and function.timeout_s > timeout):
        longer = f"; longer only while {sorted(set(untimed) - set(measured))} has no record" if waiting else ""
        problems.append(f"{where}: timeout_s {function.timeout_s}, {timeout_by} suggests {timeout}{longer} {rerun}")
    return problems


def disagreements(
    record: Mapping[str, Any], functions: Mapping[str, FunctionSize], elsewhere: Mapping[str, Any] | None = None
) -> list[str]:
    """Every way the function.toml files differ from the record beyond the tolerance; empty when they agree.

    ``elsewhere``: ``measured_elsewhere()``'s suggestions for the models the record does not time.
    """
    domains: Mapping[str, Any] = record.get("domains", {})
    problems = []
    for name in sorted(set(domains) - set(functions)):
        problems.append(f"the sizing record has {name}, but there is no functions/{name}/function.toml")
    for name, function in sorted(functions.items()):
        where = f"functions/{name}/function.toml"
        if name in SIZED_OTHERWISE:
            if not _cites(function, SIZED_OTHERWISE[name].by):
                problems.append(f"{where} is sized by {SIZED_OTHERWISE[name].by}, but does not cite it")
        elif name not in domains:
            problems.append(f"{where}: no sizing in the record; run bench/sizing.py --domains {name}")
        else:
            problems += _domain(name, function, domains[name], elsewhere or {})
    return problems


# --- The record as bench/README.md shows it ----------------------------------------------------------------------

TABLE_START = "<!-- sizing table: python -m bench.sizing --table (from bench/records/sizing.json) -->"
TABLE_END = "<!-- end of sizing table -->"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _size(memory_mb: int, timeout_s: int) -> str:
    return f"{memory_mb:,} MB, {timeout_s} s"


def markdown_table(record: Mapping[str, Any], functions: Mapping[str, FunctionSize]) -> str:
    """Every domain's requests, p50 in ms, peaks, the suggestion and what function.toml says: README's table."""
    lines = [
        "| domain | request | 1 thread | 2 threads | speedup | first call, 1 / 2 threads | peak RSS (MB) | suggested "
        "| `function.toml` |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for domain, entry in record.get("domains", {}).items():
        suggested, function = entry["suggested"], functions.get(domain)
        for index, case in enumerate(entry["cases"].values()):
            head = index == 0
            peak = f"{entry['peak_rss_mb']:,.0f} ({entry['rss_after_load_mb']:,.0f} loaded)" if head else ""
            size = _size(suggested["memory_mb"], suggested["timeout_s"]) if head else ""
            toml = _size(function.memory_mb, function.timeout_s) if head and function else ""
            cells = [
                domain if head else "",
                case["label"],
                _ms(case["p50_ms_1t"]),
                _ms(case["p50_ms_2t"]),
                f"{case['speedup']:.2f}x",
                f"{_ms(case['first_ms_1t'])} / {_ms(case['first_ms_2t'])}",
                peak,
                size,
                toml,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    """The table between TABLE_START and TABLE_END in bench/README.md."""
    start, end = readme.index(TABLE_START) + len(TABLE_START), readme.index(TABLE_END)
    return readme[start:end].strip()
