"""The bench records ``aimass cost`` prices: ``sizing.json`` (the engine by threads, peak memory) and
``results.json`` (the serving stack's share of a warm request on the Lambda handler path), both written by
``make bench`` into ``bench/records/``."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimass.errors import InvalidInput
from aimass_tools.cost.model import Measured

SIZING = "sizing.json"
RESULTS = "results.json"


@dataclass(frozen=True)
class Priced:
    measured: list[Measured]
    skipped: dict[str, str]  # domain: why it has no price
    measured_at: dict[str, str]  # domain: when its numbers were taken (the later of its two records)
    authorizer_mb: int  # the key authorizer's memory, from its function.toml


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInput(f"{path} is missing: `make bench` writes it (bench/sizing.py, bench/run.py)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{path}: not JSON ({exc}); rerun the bench script that writes it") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: expected a JSON object")
    return document


def _authorizer_mb(checkout: Path) -> int:
    path = checkout / "functions" / "authorizer" / "function.toml"
    try:
        return int(tomllib.loads(path.read_text(encoding="utf-8"))["memory_mb"])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: the authorizer's memory_mb is needed to price its invocations ({exc})") from None


def read_measured(folder: Path, checkout: Path) -> Priced:
    """Every domain both records cover; the others, with the reason, in ``skipped``."""
    sizing_record = _read(folder / SIZING)
    sizing: dict[str, Any] = sizing_record.get("domains", {})
    results = _read(folder / RESULTS)
    measured, skipped, when = [], {}, {}
    for domain in sorted(set(sizing) | set(results)):
        size, result = sizing.get(domain), results.get(domain)
        if size is None or "one" not in size.get("cases", {}):
            skipped[domain] = f"no one-item case in {SIZING} (bench/sizing.py --domains {domain})"
            continue
        if result is None or "stack_added_p50_ms" not in result:
            skipped[domain] = f"not in {RESULTS} (bench/run.py --domains {domain})"
            continue
        one = size["cases"]["one"]
        try:
            entry = Measured(
                domain=domain,
                model=str(size.get("model", result.get("model", "?"))),
                # p50s do not subtract exactly: a stack measured as free still costs something, never less than 0.
                stack_ms=max(0.0, float(result["stack_added_p50_ms"])),
                engine_ms={1: float(one["p50_ms_1t"]), 2: float(one["p50_ms_2t"])},
                peak_rss_mb=float(size["peak_rss_mb"]),
                rss_headroom=float(size.get("rules", sizing_record.get("rules", {}))["rss_headroom"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{folder}: {domain}'s entries lack {exc}; rerun make bench") from None
        measured.append(entry)
        when[domain] = max(str(size.get("measured_at", "")), str(result.get("measured_at", "")))
    return Priced(measured, skipped, when, _authorizer_mb(checkout))
