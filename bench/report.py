"""One domain's entry of results.json, and the tables printed for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import cold_start
from bench.common import Stats
from bench.measure import Measurements
from bench.targets import Target, at_most
from bench.workload import Route, Workload

TARGET_ADDED_P50_MS = 0.25
TARGET_COLD_RATIO = 1.3


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits)


def domain_targets(domain: str, entry: Mapping[str, Any]) -> list[Target]:
    """A domain's targets, judged on its results.json entry (the same for every domain)."""
    return [
        at_most(f"{domain} handler_added_p50_ms", entry["handler_added_p50_ms"], TARGET_ADDED_P50_MS, " ms"),
        at_most(f"{domain} cold_start_ratio", entry["cold_start_ratio"], TARGET_COLD_RATIO, "x"),
    ]


def _route_entry(warm: Mapping[str, Stats], name: str) -> dict[str, float]:
    """Another route's numbers, beside the headline (V2) ones."""
    raw, handler, server = warm["raw"], warm[f"handler_{name}"], warm[f"server_{name}"]
    return {
        "handler_p50_ms": _r(handler.p50_ms),
        "handler_added_p50_ms": _r(handler.p50_ms - raw.p50_ms),
        "handler_added_p99_ms": _r(handler.p99_ms - raw.p99_ms),
        "server_p50_ms": _r(server.p50_ms),
        "server_added_p50_ms": _r(server.p50_ms - raw.p50_ms),
    }


def assemble(workload: Workload[Any], measured: Measurements, context: dict[str, Any]) -> dict[str, Any]:
    """A domain's entry of results.json: the headline keys first, then what they were measured on."""
    warm, cold, memory = measured.warm, measured.cold, measured.memory
    raw, codec, handler, server = warm["raw"], warm["codec"], warm["handler_v2"], warm["server_v2"]
    handler_cold = cold_start.median_breakdown(cold[cold_start.HANDLER])
    floor_cold = cold_start.median_breakdown(cold[cold_start.FLOOR])
    split_cold = cold_start.median_breakdown(cold[cold_start.HANDLER_SPLIT])
    added_p50, ratio = handler.p50_ms - raw.p50_ms, handler_cold["wall_s"] / floor_cold["wall_s"]
    # Judged on the rounded numbers the entry records, so that a reader of the file gets the same verdict.
    judged = _verdicts(workload.domain, _r(added_p50), _r(ratio))
    return {
        "handler_added_p50_ms": _r(added_p50),
        "handler_added_p99_ms": _r(handler.p99_ms - raw.p99_ms),
        "server_added_p50_ms": _r(server.p50_ms - raw.p50_ms),
        "cold_start_s": _r(handler_cold["wall_s"]),
        "cold_start_floor_s": _r(floor_cold["wall_s"]),
        "cold_start_ratio": _r(ratio),
        "peak_rss_mb": _r(memory["peak_rss_mb"], 1),
        "throughput": {size: _r(value, 1) for size, value in measured.throughput.items()},
        # Context for the numbers above.
        "route": f"v2: POST /v2/models/<model>/infer (HTTP API v2 event, one {workload.noun})",
        "item": workload.noun,
        "raw_p50_ms": _r(raw.p50_ms),
        "raw_p99_ms": _r(raw.p99_ms),
        # A second session of the same model and options, built after the handler's: not the floor.
        "raw_separate_session_p50_ms": _r(warm["raw_separate_session"].p50_ms),
        "handler_p50_ms": _r(handler.p50_ms),
        "handler_p99_ms": _r(handler.p99_ms),
        "server_p50_ms": _r(server.p50_ms),
        "server_p99_ms": _r(server.p99_ms),
        # The domain's codec alone (item -> feeds), which the handler pays and the floor does not; what
        # is left of the added time is the serving stack's (p50s do not subtract exactly: an estimate).
        "codec": workload.codec_label,
        "codec_p50_ms": _r(codec.p50_ms),
        "stack_added_p50_ms": _r(added_p50 - codec.p50_ms),
        **{route.name: _route_entry(warm, route.name) for route in workload.routes()},
        # Phases of the handler's cold start, measured one after another (the deployed handler overlaps
        # the model load with the imports, so its own run cannot be split): where the time goes.
        "cold_start_breakdown": {k: _r(v) for k, v in split_cold.items()},
        "cold_start_floor_breakdown": {k: _r(v) for k, v in floor_cold.items() if k != "wall_s"},
        "throughput_engine": {size: _r(value, 1) for size, value in measured.throughput_engine.items()},
        "peak_rss_after_load_mb": _r(memory["peak_rss_after_load_mb"], 1),
        "rss_after_requests_mb": _r(memory["rss_after_requests_mb"], 1),
        "targets": {"handler_added_p50_ms": TARGET_ADDED_P50_MS, "cold_start_ratio": TARGET_COLD_RATIO},
        "passed": judged,
        **measured.item,
        **context,
    }


def _verdicts(domain: str, added_p50_ms: float, cold_ratio: float) -> dict[str, bool]:
    entry = {"handler_added_p50_ms": added_p50_ms, "cold_start_ratio": cold_ratio}
    return {target.name.removeprefix(f"{domain} "): target.met for target in domain_targets(domain, entry)}


def _verdict(passed: bool) -> str:
    return "[green]PASS[/]" if passed else "[red]FAIL[/]"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def _latency_table(workload: Workload[Any], results: dict[str, Any], warm: Mapping[str, Stats]) -> Table:
    raw = warm["raw"]
    title = (
        f"{workload.domain}: warm latency, one {workload.noun} ({results['iterations']} interleaved samples per path)"
    )
    table = _table(title, ("path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"))
    routes: list[Route[Any]] = [workload.v2_route(), *workload.routes()]
    labels = {
        "raw": "raw session.run (floor: the handler's session)",
        "raw_separate_session": "raw session.run, a second session",
        "codec": f"codec alone ({workload.codec_label})",
        **{f"handler_{route.name}": f"Lambda handler, {route.label}" for route in routes},
        **{f"server_{route.name}": f"local server, {route.label}" for route in routes},
    }
    for name, label in labels.items():
        stats = warm[name]
        added = ("-", "-") if name in ("raw", "codec") else (
            f"{stats.p50_ms - raw.p50_ms:+.3f}", f"{stats.p99_ms - raw.p99_ms:+.3f}"
        )  # fmt: skip
        table.add_row(label, f"{stats.p50_ms:.3f}", f"{stats.p99_ms:.3f}", *added)
    return table


def _cold_table(workload: Workload[Any], results: dict[str, Any]) -> Table:
    title = f"{workload.domain}: cold start, median of {results['cold_start_runs']} fresh processes (seconds)"
    table = _table(title, ("", "interpreter", "imports", "model load", "first run", "total"))
    split = results["cold_start_breakdown"]
    for label, parts, total in (
        ("Lambda handler (phases one after another)", split, split["wall_s"]),
        ("Lambda handler as deployed (load beside imports)", None, results["cold_start_s"]),
        ("raw engine (floor)", results["cold_start_floor_breakdown"], results["cold_start_floor_s"]),
    ):
        phases = ("", "", "", "") if parts is None else (
            f"{parts[k]:.3f}" for k in ("interpreter_s", "imports_s", "model_load_s", "first_run_s")
        )  # fmt: skip
        table.add_row(label, *phases, f"{total:.3f}")
    return table


def _throughput_table(workload: Workload[Any], results: dict[str, Any]) -> Table:
    title = f"{workload.domain}: throughput through the handler (V2 infer), {workload.noun}s/s"
    table = _table(title, ("batch", "handler", f"runtime only ({workload.codec_label} + run)", "handler / runtime"))
    for size, value in results["throughput"].items():
        engine = results["throughput_engine"][size]
        table.add_row(size, f"{value:.1f}", f"{engine:.1f}", f"{value / engine:.0%}")
    return table


def _targets_table(workload: Workload[Any], results: dict[str, Any]) -> Table:
    table = _table(f"{workload.domain}: targets", ("metric", "value", "target", "verdict"))
    passed = results["passed"]
    table.add_row(
        "handler added p50 (ms)", f"{results['handler_added_p50_ms']:.3f}", f"<= {TARGET_ADDED_P50_MS}",
        _verdict(passed["handler_added_p50_ms"]),
    )  # fmt: skip
    table.add_row(
        "cold start / floor", f"{results['cold_start_ratio']:.2f}x", f"<= {TARGET_COLD_RATIO}x",
        _verdict(passed["cold_start_ratio"]),
    )  # fmt: skip
    table.add_row("handler added p99 (ms)", f"{results['handler_added_p99_ms']:.3f}", "-", "")
    table.add_row(f"of which codec p50 ({workload.codec_label})", f"{results['codec_p50_ms']:.3f}", "-", "")
    table.add_row("stack added p50 (handler - raw - codec)", f"{results['stack_added_p50_ms']:.3f}", "-", "")
    table.add_row("server added p50 (ms)", f"{results['server_added_p50_ms']:.3f}", "-", "")
    table.add_row("peak RSS (MB)", f"{results['peak_rss_mb']:.1f}", "-", "")
    return table


def print_report(console: Console, workload: Workload[Any], results: dict[str, Any], warm: Mapping[str, Stats]) -> None:
    console.print(_latency_table(workload, results, warm))
    console.print(_cold_table(workload, results))
    console.print(_throughput_table(workload, results))
    console.print(_targets_table(workload, results))


def print_summary(console: Console, document: Mapping[str, Any], domains: Sequence[str]) -> None:
    """The headline keys of several domains side by side, from results.json."""
    columns = {
        "handler_added_p50_ms": "added p50 ms", "handler_added_p99_ms": "added p99 ms",
        "server_added_p50_ms": "server added p50 ms", "cold_start_s": "cold s", "cold_start_floor_s": "floor s",
        "cold_start_ratio": "cold / floor", "peak_rss_mb": "peak RSS MB",
    }  # fmt: skip
    table = _table("All domains (results.json)", ("domain", *columns.values(), "items/s 1/8/32", "mode"))
    for domain in domains:
        entry = document.get(domain)
        if not isinstance(entry, dict):
            table.add_row(domain, *["-"] * (len(columns) + 2))
            continue
        rates = "/".join(f"{entry['throughput'][size]:.0f}" for size in ("1", "8", "32"))
        table.add_row(domain, *(f"{entry[key]:g}" for key in columns), rates, str(entry.get("mode")))
    console.print(table)
