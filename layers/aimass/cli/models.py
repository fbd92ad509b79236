"""``aimass models``: build the catalogued models; publish versions, move their aliases, list, show and verify.

Every command but ``build`` acts on the store the options name (the directory by default, S3 with
``--bucket`` or AIMASS_MODEL_BUCKET); the rules live in ``aimass.store`` and ``aimass.aliases``.
Other modules add commands to ``app`` with the helpers of ``aimass.cli.common``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from aimass import aliases as rules
from aimass.aliases import ModelAliases
from aimass.cli.common import (
    CHECKOUT,
    BucketOption,
    PrefixOption,
    StoreOption,
    console,
    err_console,
    open_cli_store,
    reported_errors,
    settings_for,
    transfer_progress,
)
from aimass.errors import AimassError, NotFound
from aimass.manifest import ModelManifest, read_manifest
from aimass.store import WritableModelStore
from aimass.validation import why_unusable

app = typer.Typer(help="Build, publish and inspect models; move their aliases.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="why, recorded in the aliases history")]


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


@app.command("publish")
def publish(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="a built model: manifest.json + files")],
    version: Annotated[str | None, typer.Option(help="the version to publish as [default: the next one]")] = None,
    promote: Annotated[bool, typer.Option(help="make it the production version")] = False,
    reason: ReasonOption = "",
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Publish a built model folder as a new, immutable version of its model."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        name = read_manifest(folder).name
        before = target.versions(name)
        with transfer_progress("uploading") as progress:
            manifest = target.publish(folder, version=version, progress=progress)
        if manifest.version in before:
            console.print(f"{name} version {manifest.version}: already published with these files; nothing to do")
        else:
            console.print(
                f"published {name} version {manifest.version} ({_files(manifest)}) to {target.location}", soft_wrap=True
            )
        if promote:
            _change(
                target, name, lambda current, versions: rules.promote(name, current, manifest.version, versions, reason)
            )


@app.command("promote")
def promote(
    name: str,
    version: str,
    reason: ReasonOption = "",
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Make VERSION the production version of NAME (a running canary ends)."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        _change(target, name, lambda current, versions: rules.promote(name, current, version, versions, reason))


@app.command("rollback")
def rollback(
    name: str,
    reason: ReasonOption = "",
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """End NAME's canary, or else put back the production version before the current one that can serve.

    Each candidate is prepared as a function would prepare it (files verified, graph loaded, validation samples
    run); versions that fail are skipped, with the reason printed.
    """
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        settings = settings_for(store, bucket, prefix)

        def usable(version: str) -> bool:
            problem = why_unusable(target, settings, name, version)
            if problem is not None:
                console.print(f"skipping version {version}: {problem}", style="yellow")
            return problem is None

        _change(target, name, lambda current, versions: rules.rollback(name, current, versions, reason, usable))


@app.command("canary")
def canary(
    name: str,
    version: str,
    percent: Annotated[int, typer.Option("--percent", help="share of unpinned requests, 1-99")],
    reason: ReasonOption = "",
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Send PERCENT % of NAME's unpinned requests to VERSION; the rest stay on production."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        _change(target, name, lambda current, versions: rules.canary(name, current, version, percent, versions, reason))


@app.command("list")
def list_models(store: StoreOption = None, bucket: BucketOption = None, prefix: PrefixOption = None) -> None:
    """List every model's versions, sizes and aliases (manifests only: nothing is downloaded)."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        table = Table("name", "version", "domain", "task", "size", "created", "aliases", title=target.location)
        for name in target.model_names():
            versions = target.versions(name)
            labels = _labels(target.aliases(name), versions)
            for version in versions:
                try:
                    manifest = target.manifest(name, version)
                except AimassError as exc:
                    table.add_row(name, version, "?", "?", "?", "?", Text(exc.message, style="red"))
                    continue
                size = _size(sum(f.size for f in manifest.files))
                created = manifest.created_at[:10]
                table.add_row(name, version, manifest.domain, manifest.task, size, created, labels.get(version, ""))
        console.print(table)


@app.command("show")
def show(name: str, store: StoreOption = None, bucket: BucketOption = None, prefix: PrefixOption = None) -> None:
    """Show NAME's versions (size, date, quality, how each was made), its aliases and their history."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        versions = _known(target, name)
        aliases = target.aliases(name)
        labels = _labels(aliases, versions)
        table = Table("version", "created", "size", "quality", "made", "aliases", title=f"{name} in {target.location}")
        for version in versions:
            manifest = target.manifest(name, version)
            size = _size(sum(f.size for f in manifest.files))
            made = _made(manifest)
            table.add_row(version, manifest.created_at, size, _quality(manifest.quality), made, labels.get(version, ""))
        console.print(table)
        console.print(_summary(name, aliases, versions))
        if aliases.history:
            history = Table("at", "action", "production", "canary", "reason", title="alias history")
            for change in aliases.history:
                canary = f"{change.canary} ({change.canary_percent} %)" if change.canary else ""
                history.add_row(change.at[:19], change.action, change.production or "", canary, change.reason)
            console.print(history)


@app.command("verify")
def verify(
    name: str,
    version: Annotated[str | None, typer.Argument(help="one version [default: every version]")] = None,
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Read every file of NAME's versions from the store and check its sha256 against the manifest."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        failed = False
        for each in [version] if version else _known(target, name):
            try:
                with transfer_progress(f"checking v{each}") as progress:
                    manifest = target.verify(name, each, progress=progress)
            except AimassError as exc:
                err_console.print(Text(f"{name} version {each}: {exc.message}", style="red"), soft_wrap=True)
                failed = True
                continue
            console.print(f"{name} version {each}: verified ({_files(manifest)})")
        if failed:
            raise typer.Exit(1)


def _change(
    target: WritableModelStore, name: str, rule: Callable[[ModelAliases, list[str]], ModelAliases]
) -> ModelAliases:
    versions = _known(target, name)
    updated = target.update_aliases(name, lambda current: rule(current, versions))
    console.print(_summary(name, updated, versions))
    return updated


def _known(target: WritableModelStore, name: str) -> list[str]:
    versions = target.versions(name)
    if not versions:
        listed = ", ".join(target.model_names()) or "none"
        raise NotFound(f"no model '{name}' in the store at {target.location}; models there: {listed}", param="name")
    return versions


def _labels(aliases: ModelAliases, versions: list[str]) -> dict[str, str]:
    labels: dict[str, list[str]] = {}
    serving = aliases.serving(versions)
    if serving is not None:
        labels.setdefault(serving, []).append("production" if aliases.production else "serving (newest)")
    if aliases.canary is not None:
        labels.setdefault(aliases.canary, []).append(f"canary {aliases.canary_percent} %")
    return {version: ", ".join(names) for version, names in labels.items()}


def _summary(name: str, aliases: ModelAliases, versions: list[str]) -> str:
    serving = aliases.serving(versions)
    line = f"{name}: production {serving}" if aliases.production else f"{name}: serving the newest version, {serving}"
    if aliases.canary is not None:
        line += f"; canary {aliases.canary} takes {aliases.canary_percent} %"
    return line


def _made(manifest: ModelManifest) -> str:
    flags = []
    if manifest.derived_from is not None:
        flags.append(f"from v{manifest.derived_from}")
    if manifest.compression is not None:
        flags.append("quantized")
    if manifest.encryption is not None:
        flags.append(f"encrypted ({manifest.encryption.key_provider} key)")
    return ", ".join(flags) or "built"


def _quality(quality: dict[str, Any], most: int = 3) -> str:
    """The first few numbers of the quality report, one level deep: ``held_out.accuracy=0.981``."""
    found: list[str] = []
    for key, value in quality.items():
        leaves = value.items() if isinstance(value, dict) else [("", value)]
        for inner, leaf in leaves:
            if isinstance(leaf, int | float) and not isinstance(leaf, bool):
                found.append(f"{key}{'.' + inner if inner else ''}={leaf:.4g}")
    return ", ".join(found[:most])


def _files(manifest: ModelManifest) -> str:
    return f"{len(manifest.files)} files, {_size(sum(f.size for f in manifest.files))}"


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
