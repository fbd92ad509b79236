"""bench/targets.py: a benchmark's targets judged, and the exit status that makes a miss fail `make bench`."""

from __future__ import annotations

import argparse
import io

from rich.console import Console

from bench.targets import MISSED, Target, add_explore_flag, at_least, at_most, exit_status, holds, passed


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_at_most_and_at_least_are_inclusive_and_say_their_numbers() -> None:
    assert at_most("text handler_added_p50_ms", 0.25, 0.25, " ms").met
    missed = at_most("text handler_added_p50_ms", 0.31, 0.25, " ms")
    assert not missed.met
    assert missed.line() == "text handler_added_p50_ms: 0.31 ms (target <= 0.25 ms)"
    assert at_least("ratio", 0.9, 0.9).met and not at_least("ratio", 0.899, 0.9).met
    assert at_least("ratio", 0.899, 0.9, "x").detail == "0.899x (target >= 0.9x)"


def test_passed_is_the_verdict_by_name() -> None:
    judged = [at_most("a", 1.0, 2.0), holds("b", False, "1 error line")]
    assert passed(judged) == {"a": True, "b": False}


def test_a_miss_exits_1_and_is_named() -> None:
    console, out = _console()
    judged = [at_most("rl cold_start_ratio", 3.9, 1.3, "x"), at_most("rl handler_added_p50_ms", 0.2, 0.25)]
    assert exit_status(judged, explore=False, console=console, script="bench/run.py") == MISSED == 1
    text = out.getvalue()
    assert "1 of 2 targets missed" in text
    assert "missed rl cold_start_ratio: 3.9x (target <= 1.3x)" in text
    assert "handler_added_p50_ms" not in text  # only the misses are listed


def test_explore_reports_the_miss_and_exits_0() -> None:
    console, out = _console()
    judged = [holds("text billed once", False, "[1] units billed")]
    assert exit_status(judged, explore=True, console=console, script="bench/batch_scale.py") == 0
    # The detail is printed as written (brackets are not taken for markup), and the exploration is said.
    assert "missed text billed once: [1] units billed" in out.getvalue()
    assert "--explore" in out.getvalue()


def test_all_met_or_nothing_judged_exits_0() -> None:
    console, out = _console()
    assert exit_status([at_least("x", 3.0, 3.0)], explore=False, console=console, script="s") == 0
    assert "all 1 targets met" in out.getvalue()
    assert exit_status([], explore=False, console=console, script="s") == 0


def test_explore_flag_defaults_off() -> None:
    parser = argparse.ArgumentParser()
    add_explore_flag(parser)
    assert parser.parse_args([]).explore is False
    assert parser.parse_args(["--explore"]).explore is True


def test_target_is_a_value() -> None:
    assert Target("a", True, "d") == holds("a", True, "d")
