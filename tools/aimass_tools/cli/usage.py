"""``aimass usage report``: a tenant's invoice for a month, from the usage store the settings name.

The store is the one the API meters into (``AIMASS_METERING``): the local SQLite database
(``<AIMASS_STATE_DIR>/metering.db``) or the DynamoDB usage table (``AIMASS_USAGE_TABLE``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.text import Text

from aimass.errors import InvalidInput
from aimass.metering.reports import invoice, month_range, render_csv, render_json, render_table
from aimass.metering.stores.usage_factory import open_usage
from aimass.metering.usage import Unavailable
from aimass.settings import Settings
from aimass_tools.cli.common import err_console, reported_errors

app = typer.Typer(help="Usage records: reports and invoices.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command("report")
def report(
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant invoiced")],
    month: Annotated[
        str | None, typer.Option("--month", help="the calendar month (UTC), YYYY-MM [default: this month]")
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="table for people, csv or json for programs")
    ] = Format.table,
) -> None:
    """Print TENANT's invoice for MONTH: a line per model and unit price (requests, units, amount), the total.

    Amounts are exact sums of the usage records' costs (USD); unbilled requests (errors) are left out.
    """
    month = month or datetime.now(UTC).strftime("%Y-%m")
    settings = Settings()
    with reported_errors():
        start, end = month_range(month)
        if settings.metering == "off":
            raise InvalidInput("metering is off (AIMASS_METERING=off): no usage is recorded to report")
        try:
            store, _ = open_usage(settings)
            lines = invoice(store.query(start, end, tenant), month)
        except Unavailable as exc:
            err_console.print(Text(f"error: the usage store cannot be read: {exc}", style="red"), soft_wrap=True)
            raise typer.Exit(1) from None
    if output is Format.csv:
        text = render_csv(lines)
    elif output is Format.json:
        text = render_json(lines, tenant=tenant, month=month)
    else:
        text = render_table(lines, tenant=tenant, month=month)
    typer.echo(text, nl=False)
