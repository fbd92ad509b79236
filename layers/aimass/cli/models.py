"""``aimass models``: build every catalogued model (or some domains'), list and verify the store."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer
from rich.table import Table

from aimass.cli.common import CHECKOUT, StoreOption, console, settings_for
from aimass.errors import AimassError
from aimass.manifest import verify_files
from aimass.store import LocalModelStore

app = typer.Typer(help="Build and inspect models.", no_args_is_help=True)


@app.command("build")
def build(
    domains: Annotated[list[str] | None, typer.Argument(help="domains to build [default: all]")] = None,
    store: StoreOption = None,
    force: Annotated[bool, typer.Option(help="rebuild even when the store is up to date")] = False,
) -> None:
    """Build the catalogued models that are missing from the store (each build is a no-op when present)."""
    sys.path.insert(0, str(CHECKOUT))  # models/ is part of the checkout, not of the installed package
    from models.catalogue import catalogue

    entries = catalogue()
    known = sorted({entry.domain for entry in entries})
    unknown = sorted(set(domains or ()) - set(known))
    if unknown:
        raise typer.BadParameter(f"unknown domain(s) {unknown}; catalogued: {known}", param_hint="DOMAINS")
    target = settings_for(store).model_store
    for entry in entries:
        if domains and entry.domain not in domains:
            continue
        console.print(f"[bold]{entry.domain}[/]: {entry.name} v{entry.version}")
        command = [sys.executable, str(entry.build_script), "--store", str(target), *(["--force"] if force else [])]
        # Each build in its own interpreter: builds import heavy, different toolkits (torch, gymnasium, ...).
        if subprocess.run(command, check=False).returncode != 0:
            console.print(f"[red]building {entry.name} failed[/]")
            raise typer.Exit(1)


@app.command("list")
def list_models(store: StoreOption = None) -> None:
    """List the models and versions in the store, with every file's checksum verified."""
    local = LocalModelStore(settings_for(store).model_store)
    table = Table("name", "version", "domain", "task", "size (MB)", "status")
    for name in local.model_names():
        for version in local.versions(name):
            try:
                artifact = local.fetch(name, version)
                verify_files(artifact.directory, artifact.manifest)
                manifest = artifact.manifest
            except AimassError as exc:
                table.add_row(name, version, "?", "?", "?", f"[red]{exc.message}[/]")
                continue
            size = sum(f.size for f in manifest.files) / 1e6
            table.add_row(name, version, manifest.domain, manifest.task, f"{size:.1f}", "verified")
    console.print(table)
