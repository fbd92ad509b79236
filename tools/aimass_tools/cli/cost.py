"""``aimass cost``: the price per million requests of each domain at each Lambda memory size, from the bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aimass_tools.cli.common import CHECKOUT, console, reported_errors
from aimass_tools.cost.records import read_measured
from aimass_tools.cost.report import ASSUMPTIONS, priced, tables


def cost(
    records: Annotated[
        Path, typer.Option("--records", help="the folder of bench records (make bench writes them)")
    ] = Path("bench/records"),
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0.001, help="the warm duration a size must meet to be chosen")
    ] = 100.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="the answer as JSON (what bench/records/cost.json holds)")
    ] = False,
) -> None:
    """Per domain and memory size: warm duration, billed duration, price per million requests, the cheapest size
    within a latency bound, and SageMaker Serverless Inference for the same model on paper."""
    with reported_errors():
        answer = priced(read_measured(records, CHECKOUT), latency_ms=latency_ms)
    if as_json:
        typer.echo(json.dumps(answer, indent=1))
        return
    for table in tables(answer):
        console.print(table)
    for domain, why in answer["skipped"].items():
        console.print(f"{domain}: not priced, {why}", markup=False)
    console.print(ASSUMPTIONS, markup=False, style="dim")
