"""``aimass files``: upload, list, download, share and delete files at an AI Mass deployment (OpenAI's Files API).

Files are a tenant's: the inputs of batches, and the outputs they write. Large files are uploaded in parts
(OpenAI's Uploads API) and every transfer shows a progress bar on a terminal.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from aimass_tools.api_client import MULTIPART_OVER, PART_SIZE, AimassClient
from aimass_tools.cli.common import console, transfer_progress
from aimass_tools.cli.remote import DEFAULT_URL, KeyOption, UrlOption, client, size, when

app = typer.Typer(
    help="Upload, list, download, share and delete files (batch inputs and outputs).", no_args_is_help=True
)

FileId = Annotated[str, typer.Argument(help="the file id (file-...), as `files list` shows")]
Tenant = Annotated[str, typer.Argument(help="the tenant to share with (its name, as its keys carry it)")]
_SIZE = re.compile(r"^\s*(?P<amount>\d+)\s*(?P<unit>[KMG]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def byte_size(text: str | int) -> int:
    """``4MiB``, ``512KiB``, ``1000`` (bytes): a positive size, for typer's ``parser``."""
    if isinstance(text, int):
        return text  # the option's default, which typer passes through the parser too
    match = _SIZE.match(text)
    if match is None or int(match["amount"]) == 0:
        raise typer.BadParameter(f"must be a positive size such as 4MiB, 512KiB or 1000 (bytes), got {text!r}")
    return int(match["amount"]) * _UNITS[(match["unit"] or "b").lower()]


@app.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(help="the file to upload", exists=True, dir_okay=False, readable=True)],
    purpose: Annotated[str, typer.Option("--purpose", help="what the file is for")] = "batch",
    part_size: Annotated[
        int, typer.Option("--part-size", parser=byte_size, help="bytes per part of an upload in parts", metavar="SIZE")
    ] = PART_SIZE,
    multipart_over: Annotated[
        int,
        typer.Option("--multipart-over", parser=byte_size, help="upload files over this size in parts", metavar="SIZE"),
    ] = MULTIPART_OVER,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Upload PATH and print its file id."""
    with client(url, key) as api, transfer_progress("uploading") as progress:
        uploaded = api.upload(
            path, purpose=purpose, progress=progress, multipart_over=multipart_over, part_size=part_size
        )
    console.print(uploaded["id"], soft_wrap=True)


@app.command("list")
def list_(
    purpose: Annotated[str | None, typer.Option("--purpose", help="only files of this purpose")] = None,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Your files, newest first."""
    with client(url, key) as api:
        files = list(api.files(purpose))
    if not files:
        console.print("no files")
        return
    table = Table(
        Column("file id", no_wrap=True), "filename", Column("size", justify="right", no_wrap=True), "purpose",
        Column("created", no_wrap=True),
    )  # fmt: skip
    for found in files:
        table.add_row(
            found["id"], found.get("filename", ""), size(found.get("bytes")), found.get("purpose", ""),
            when(found.get("created_at")),
        )  # fmt: skip
    console.print(table)


@app.command("download")
def download(
    file_id: FileId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="where to write it ('-': stdout) [default: its filename, here]"),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Download a file's content."""
    with client(url, key) as api:
        if output is None:
            # Only the last part of the stored name: it was chosen by whoever uploaded it.
            output = Path(Path(api.file(file_id).get("filename") or file_id).name)
        written = save(api, file_id, output)
    if str(output) != "-":
        console.print(f"wrote {output} ({size(written)})")


def save(api: AimassClient, file_id: str, output: Path) -> int:
    """Stream ``file_id`` to ``output`` ('-': stdout) through a partial file, so that an interrupted download
    never leaves what looks like a whole one."""
    if str(output) == "-":
        sink = sys.stdout.buffer
        written = api.download(file_id, sink)
        sink.flush()
        return written
    if output.is_dir():
        raise typer.BadParameter(f"{output} is a folder: name the file to write", param_hint="'--output' / '-o'")
    partial = output.with_name(f".{output.name}.part")
    try:
        with partial.open("wb") as sink, transfer_progress("downloading") as progress:
            written = api.download(file_id, sink, name=output.name, progress=progress)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return written


@app.command("share")
def share(file_id: FileId, tenant: Tenant, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Let TENANT read a file (and run batches on it)."""
    with client(url, key) as api:
        api.share(file_id, tenant)
    console.print(f"shared {file_id} with tenant {tenant}")


@app.command("unshare")
def unshare(file_id: FileId, tenant: Tenant, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Stop sharing a file with TENANT."""
    with client(url, key) as api:
        api.unshare(file_id, tenant)
    console.print(f"{file_id} is no longer shared with tenant {tenant}")


@app.command("shares")
def shares(file_id: FileId, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """The tenants a file is shared with."""
    with client(url, key) as api:
        found = api.shares(file_id)
    if not found:
        console.print(f"{file_id} is shared with no tenant")
        return
    table = Table("tenant", "since")
    for entry in found:
        table.add_row(str(entry.get("tenant", "")), when(entry.get("created_at")))
    console.print(table)


@app.command("delete")
def delete(file_id: FileId, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Delete a file."""
    with client(url, key) as api:
        api.delete_file(file_id)
    console.print(f"deleted {file_id}")
