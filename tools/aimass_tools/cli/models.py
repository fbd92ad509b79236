"""``aimass models``: build the catalogued models; publish versions, move their aliases, list, show and verify.

Every command but ``build`` acts on the store the options name (the directory by default, S3 with
``--bucket`` or AIMASS_MODEL_BUCKET); the rules live in ``aimass.store.base`` and ``aimass.store.aliases``.
Other modules add commands to ``app`` with the helpers of ``aimass_tools.cli.common``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from aimass.errors import AimassError, InvalidInput
from aimass.serving import lifecycle, readiness
from aimass.serving.lifecycle import Move
from aimass.settings import Settings
from aimass.store import aliases as rules
from aimass.store.aliases import CanaryPolicy, ModelAliases
from aimass.store.base import WritableModelStore
from aimass.store.manifest import ModelManifest, read_manifest
from aimass_tools.cli.common import (
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

app = typer.Typer(help="Build, publish and inspect models; move their aliases.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="why, recorded in the aliases history")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="move the alias even to a version that fails its check (with a warning)")
]


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
    promote: Annotated[bool, typer.Option(help="make it the production version, once checked as by `promote`")] = False,
    reason: ReasonOption = "",
    force: ForceOption = False,
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
            _checked_move(
                target,
                settings_for(store, bucket, prefix),
                name,
                manifest.version,
                lambda current, versions, why: rules.promote(name, current, manifest.version, versions, why),
                reason,
                force=force,
                doing="promoting it",
            )


@app.command("promote")
def promote(
    name: str,
    version: str,
    reason: ReasonOption = "",
    force: ForceOption = False,
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Make VERSION the production version of NAME (a running canary ends).

    VERSION is first checked as a function would check it before serving it (see `verify`); one that fails
    is refused, and the aliases left as they are, unless --force is given.
    """
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        _checked_move(
            target,
            settings_for(store, bucket, prefix),
            name,
            version,
            lambda current, versions, why: rules.promote(name, current, version, versions, why),
            reason,
            force=force,
            doing="promoting it",
        )


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

        def skipped(version: str, found: readiness.Readiness) -> None:
            if not found.servable:
                _warn(f"skipping {name} version {version}: {found.problem}")
            else:
                _warn(_verified(name, version, found))

        updated = lifecycle.rollback(target, settings, name, reason, skipped=skipped)
        console.print(_summary(name, updated, _known(target, name)))


@app.command("canary")
def canary(
    name: str,
    version: str,
    percent: Annotated[int, typer.Option("--percent", help="share of unpinned requests, 1-99")],
    promote_after: Annotated[
        int | None,
        typer.Option(help="a policy: promote it by itself once it has served this many requests well"),
    ] = None,
    max_error_rate: Annotated[
        float, typer.Option(help="the policy's server errors allowed per request (0: none; over it: rolled back)")
    ] = 0.0,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="the policy's bound on its p95 inference time (over it: rolled back)")
    ] = None,
    reason: ReasonOption = "",
    force: ForceOption = False,
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Send PERCENT % of NAME's unpinned requests to VERSION; the rest stay on production.

    VERSION is checked first, as by `promote`. With --promote-after, the serving processes end the canary by
    themselves (aimass.serving.canary): promoted once it has served that many requests within --max-error-rate
    and --max-latency-ms, rolled back as soon as it is over either or its validation samples fail.
    """
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        policy = None
        if promote_after is not None:
            policy = _policy(promote_after, max_error_rate, max_latency_ms)
        _checked_move(
            target,
            settings_for(store, bucket, prefix),
            name,
            version,
            lifecycle.canary(name, version, percent, policy),
            reason,
            force=force,
            doing="making it the canary",
        )


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
    """Check NAME's versions as a function checks one before serving it, and say what stops one that cannot.

    Every file is read from the store and its sha256 checked against the manifest; then, where this machine can
    (the domain's runtime is installed, an encrypted version's key is at hand), the version is loaded and its
    validation samples run. A failure prints the whole reason: the paths and numbers clients are never shown.
    """
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        settings = settings_for(store, bucket, prefix)
        failed = False
        for each in [version] if version else _known(target, name):
            try:
                found = _check(target, settings, name, each)
            except AimassError as exc:
                found = readiness.Readiness(problem=exc.message)
            if not found.servable:
                err_console.print(
                    Text(f"{name} version {each}: {_line(found.problem or '')}", style="red"), soft_wrap=True
                )
                failed = True
                continue
            console.print(_verified(name, each, found), soft_wrap=True)
        if failed:
            raise typer.Exit(1)


def _check(target: WritableModelStore, settings: Settings, name: str, version: str) -> readiness.Readiness:
    with transfer_progress(f"checking v{version}") as progress:
        return readiness.check(target, settings, name, version, progress=progress)


def _checked_move(
    target: WritableModelStore,
    settings: Settings,
    name: str,
    version: str,
    move: Move,
    reason: str,
    *,
    force: bool,
    doing: str,
) -> ModelAliases:
    """Point an alias at ``version`` once it has passed the checks a function makes (``aimass.serving.lifecycle``);
    with ``force``, a version that fails them is moved to with a warning, the failure recorded in the history."""
    with transfer_progress(f"checking v{version}") as progress:
        moved = lifecycle.checked_move(target, settings, name, version, move, reason, force=force, progress=progress)
    found = moved.found
    if moved.forced:
        _warn(
            f"warning: {name} version {version} cannot serve: {_line(found.problem or '')}; {doing} anyway (--force): "
            "the functions will refuse it and keep serving the version they serve now"
        )
    elif found.unchecked:
        _warn(_verified(name, version, found))
    else:
        console.print(_verified(name, version, found), soft_wrap=True)
    console.print(_summary(name, moved.aliases, _known(target, name)))
    return moved.aliases


def _policy(requests: int, error_rate: float, latency_ms: float | None) -> CanaryPolicy:
    try:
        return CanaryPolicy(min_requests=requests, max_error_rate=error_rate, max_latency_ms=latency_ms)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InvalidInput(f"canary policy: {problem['loc'][0]} {problem['msg']}") from None


def _verified(name: str, version: str, found: readiness.Readiness) -> str:
    files = f" ({_files(found.manifest)})" if found.manifest is not None else ""
    return _line(f"{name} version {version}: verified{files}; {found.loading()}")


def _warn(message: str) -> None:
    err_console.print(Text(_line(message), style="yellow"), soft_wrap=True)


_line = lifecycle.one_line
_known = lifecycle.known_versions


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
        if aliases.canary_policy is not None:
            line += f", promoted by itself {aliases.canary_policy.describe()}"
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
