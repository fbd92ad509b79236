"""``aimass jobs``: run batches at an AI Mass deployment (OpenAI's Batch API) and fetch what they wrote.

``submit`` takes a ready batch input (``--input``) or builds one from plain inputs (``--texts``, ``--images``,
``--audio``; see aimass_tools.batch_input), uploads it and creates the batch; ``wait`` follows it to its end.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from aimass_tools import batch_input
from aimass_tools.api_client import AimassClient, ApiError
from aimass_tools.cli.common import console, err_console, transfer_progress
from aimass_tools.cli.files import save
from aimass_tools.cli.remote import DEFAULT_URL, KeyOption, UrlOption, client, size, when

app = typer.Typer(help="Submit batches, follow them, fetch their results.", no_args_is_help=True)

BatchId = Annotated[str, typer.Argument(help="the batch id (batch_...), as `jobs submit` printed it")]
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_STAMPS = ("created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
           "cancelling_at", "cancelled_at", "expires_at")  # fmt: skip
_SOURCES = ("--input", "--texts", "--images", "--audio")


@app.command("submit")
def submit(
    input_file: Annotated[
        Path | None, typer.Option("--input", help="a ready batch input (JSONL); needs --endpoint", dir_okay=False)
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="the route every line of --input calls, e.g. /v1/embeddings")
    ] = None,
    texts: Annotated[
        Path | None, typer.Option("--texts", help="texts to embed: a .txt (one a line) or a .csv", dir_okay=False)
    ] = None,
    column: Annotated[str | None, typer.Option("--column", help="the .csv column holding the texts")] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id-column", help="a .csv column of unique ids: each row a line, its id the custom_id"),
    ] = None,
    images: Annotated[Path | None, typer.Option("--images", help="a folder of images to classify")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="a folder of audio files to transcribe")] = None,
    model: Annotated[str | None, typer.Option("--model", help="the model every built line names")] = None,
    per_line: Annotated[
        int | None,
        typer.Option(
            "--per-line",
            help=f"texts (default {batch_input.TEXTS_PER_LINE}) or images (default {batch_input.IMAGES_PER_LINE})"
            " per request line",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="classes per image (--images)")] = 5,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="KEY=VALUE kept with the batch (repeatable)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Create a batch from a JSONL input, or from texts, images or audio files; print its id."""
    given = [name for name, value in zip(_SOURCES, (input_file, texts, images, audio), strict=True) if value]
    if len(given) != 1:
        raise typer.BadParameter(
            f"give exactly one of {', '.join(_SOURCES)}" + (f" (got {', '.join(given)})" if given else ""),
            param_hint="'--input' / '--texts' / '--images' / '--audio'",
        )
    labels = _metadata(metadata or [])
    with tempfile.TemporaryDirectory(prefix="aimass-batch-") as scratch:
        if input_file is not None:
            if not endpoint:
                raise typer.BadParameter("--input needs the route its lines call", param_hint="'--endpoint'")
            if not input_file.is_file():
                raise typer.BadParameter(f"{input_file} is not a file", param_hint="'--input'")
            path, route = input_file, endpoint
        else:
            if model is None:
                raise typer.BadParameter(f"{given[0]} builds lines that name a model", param_hint="'--model'")
            lines, route = _builder(texts, images, audio, model, per_line, column, id_column, top_k)
            path = Path(scratch) / "batch-input.jsonl"
            count = _build(lines, path)
            err_console.print(f"built {count} request line(s) for {route}")
        with client(url, key) as api:
            with transfer_progress("uploading") as progress:
                uploaded = api.upload(path, purpose="batch", progress=progress)
            batch = api.create_batch(uploaded["id"], route, labels)
    console.print(batch["id"], soft_wrap=True)


def _builder(
    texts: Path | None,
    images: Path | None,
    audio: Path | None,
    model: str,
    per_line: int | None,
    column: str | None,
    id_column: str | None,
    top_k: int,
) -> tuple[Iterator[batch_input.Line], str]:
    if texts is not None:
        count = per_line or (1 if id_column else batch_input.TEXTS_PER_LINE)
        lines = batch_input.text_lines(texts, model=model, per_line=count, column=column, id_column=id_column)
        return lines, batch_input.EMBEDDINGS
    for option, value in (("--column", column), ("--id-column", id_column)):
        if value is not None:
            raise typer.BadParameter("applies to --texts only", param_hint=f"'{option}'")
    if images is not None:
        count = per_line or batch_input.IMAGES_PER_LINE
        return batch_input.image_lines(images, model=model, top_k=top_k, per_line=count), batch_input.CLASSIFY
    assert audio is not None
    if per_line not in (None, 1):
        raise typer.BadParameter(
            "a transcription takes one audio file: each is its own line", param_hint="'--per-line'"
        )
    return batch_input.audio_lines(audio, model=model), batch_input.TRANSCRIPTIONS


def _build(lines: Iterator[batch_input.Line], path: Path) -> int:
    """Stream the lines to ``path``; a bad input is reported against the option that named it."""
    try:
        with path.open("wb") as stream:
            return batch_input.write_jsonl(lines, stream)
    except batch_input.BadInput as exc:
        raise typer.BadParameter(exc.message, param_hint=f"'{exc.option}'") from None


def _metadata(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise typer.BadParameter(f"must read KEY=VALUE, got {pair!r}", param_hint="'--metadata'")
        labels[name.strip()] = value
    return labels


@app.command("status")
def status(batch_id: BatchId, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """A batch's state, request counts, files and times."""
    with client(url, key) as api:
        batch = api.batch(batch_id)
    table = Table(Column("field", style="bold"), "value", show_header=False)
    counts = batch.get("request_counts") or {}
    rows = [
        ("id", batch.get("id")),
        ("status", batch.get("status")),
        ("endpoint", batch.get("endpoint")),
        ("requests", f"{counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
                     f"{counts.get('total', 0)} in all"),
        ("input file", batch.get("input_file_id")),
        ("output file", batch.get("output_file_id")),
        ("error file", batch.get("error_file_id")),
    ]  # fmt: skip
    rows += [(stamp.removesuffix("_at").replace("_", " "), when(batch.get(stamp))) for stamp in _STAMPS]
    rows += [(f"metadata {name}", value) for name, value in (batch.get("metadata") or {}).items()]
    for name, value in rows:
        if value not in (None, ""):
            table.add_row(name, str(value))
    console.print(table)
    for error in _errors(batch):
        console.print(Text(f"error: {error}", style="red"), soft_wrap=True)


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many, newest first")] = 20,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Your batches, newest first."""
    with client(url, key) as api:
        batches = list(api.batches(limit))
    if not batches:
        console.print("no batches")
        return
    table = Table(Column("batch id", no_wrap=True), "status", "endpoint", Column("done", justify="right"), "created")
    for batch in batches:
        counts = batch.get("request_counts") or {}
        done = f"{counts.get('completed', 0) + counts.get('failed', 0)}/{counts.get('total', 0)}"
        table.add_row(
            batch["id"], batch.get("status", ""), batch.get("endpoint", ""), done, when(batch.get("created_at"))
        )
    console.print(table)


@app.command("wait")
def wait(
    batch_id: BatchId,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="longest pause between polls, in seconds")
    ] = 30.0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="give up (exit 1) after this many seconds")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Follow a batch until it ends; exit 0 only if it completed."""
    with client(url, key) as api:
        batch = _follow(api, batch_id, interval, timeout)
    counts = batch.get("request_counts") or {}
    summary = (
        f"{batch_id}: {batch['status']} ({counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed "
        f"of {counts.get('total', 0)})"
    )
    console.print(summary, soft_wrap=True)
    for error in _errors(batch):
        err_console.print(Text(f"error: {error}", style="red"), soft_wrap=True)
    if batch["status"] != "completed":
        raise typer.Exit(1)


def _follow(api: AimassClient, batch_id: str, interval: float, timeout: float | None) -> dict[str, Any]:
    """Poll until a terminal state: soon at first (small batches end in seconds), then less often."""
    started = time.monotonic()
    pause = min(1.0, interval)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    interactive = err_console.is_interactive
    last = ""
    with Progress(*columns, console=err_console, transient=True, disable=not interactive) as bars:
        task = bars.add_task(batch_id, total=None)
        while True:
            batch = api.batch(batch_id)
            counts = batch.get("request_counts") or {}
            total = int(counts.get("total") or 0)
            done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
            state = str(batch.get("status"))
            bars.update(task, description=f"{batch_id} {state}", completed=done, total=total or None)
            if not interactive and f"{state} {done}/{total}" != last:
                # Logs and CI get a line per change instead of a bar.
                last = f"{state} {done}/{total}"
                err_console.print(f"{batch_id}: {last}")
            if state in TERMINAL:
                return batch
            if timeout is not None and time.monotonic() - started + pause > timeout:
                raise ApiError(f"{batch_id} is still {state} after {timeout:g} s ({done}/{total} requests done)")
            time.sleep(pause)
            pause = min(pause * 1.5, interval)


def _errors(batch: dict[str, Any]) -> list[str]:
    errors = (batch.get("errors") or {}).get("data") or []
    return [
        str(error.get("message", "")) + (f" (line {error['line']})" if error.get("line") is not None else "")
        for error in errors
    ]


@app.command("results")
def results(
    batch_id: BatchId,
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the JSONL ('-': stdout)")] = Path("-"),
    errors: Annotated[bool, typer.Option("--errors", help="the error file (failed requests) instead")] = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Download a batch's output file (or its error file)."""
    with client(url, key) as api:
        batch = api.batch(batch_id)
        field = "error_file_id" if errors else "output_file_id"
        file_id = batch.get(field)
        if not file_id:
            what = "error file (no request failed, or the batch has not ended)" if errors else "output file yet"
            raise ApiError(f"{batch_id} is {batch.get('status')}: it has no {what}")
        written = save(api, str(file_id), output)
    if str(output) != "-":
        console.print(f"wrote {output} ({size(written)})")


@app.command("cancel")
def cancel(batch_id: BatchId, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Cancel a batch: no more of its requests start; what finished stays in its output."""
    with client(url, key) as api:
        batch = api.cancel_batch(batch_id)
    console.print(f"{batch_id}: {batch.get('status')}")
