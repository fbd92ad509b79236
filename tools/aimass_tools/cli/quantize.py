"""``aimass models quantize NAME [VERSION] --mode MODE``: publish a compressed version of a model, with its report.

The base version (the newest by default) is fetched from the store, compressed into a scratch folder by
``aimass_tools.quantize`` (loaded, measured and validated there), and published as the model's next version. The
report (size, latency and quality against the base, each target met or missed) is printed and kept in the
new version's manifest as ``compression``. The new version takes no traffic until it is promoted or given a
canary: a model that serves its newest version (no production alias) has production pinned to the version
it serves now before the new one is published.
"""

from __future__ import annotations

import enum
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from aimass.errors import NotFound
from aimass.store import aliases as rules
from aimass.store.aliases import ModelAliases
from aimass.store.base import WritableModelStore
from aimass_tools.cli.common import (
    BucketOption,
    PrefixOption,
    StoreOption,
    console,
    open_cli_store,
    reported_errors,
    settings_for,
    transfer_progress,
)
from aimass_tools.cli.models import app
from aimass_tools.quantize import build_evaluation, quantize_version


class Mode(enum.StrEnum):
    int8_dynamic = "int8-dynamic"
    int8_static = "int8-static"
    fp16 = "fp16"


@app.command("quantize")
def quantize(
    name: str,
    version: Annotated[str | None, typer.Argument(help="the version to compress [default: the newest]")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="int8 with dynamic or calibrated activations, or float16")] = (
        Mode.int8_dynamic
    ),
    evaluation: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval",
            exists=True,
            dir_okay=False,
            help="JSON of more evaluation inputs, beside the version's samples [default: the build's eval.json]",
        ),
    ] = None,
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Publish a quantized copy of a model version as its next version, measured against it."""
    with reported_errors():
        target = open_cli_store(store, bucket, prefix)
        versions = target.versions(name)
        if not versions:
            raise NotFound(f"model '{name}' has no versions in {target.location}")
        base = version or versions[-1]
        artifact = target.fetch(name, base)
        files = build_evaluation(name) if evaluation is None else evaluation
        with tempfile.TemporaryDirectory(prefix="aimass-quantized-") as scratch:
            folder = Path(scratch) / name
            with console.status(f"quantizing {name} version {base} ({mode.value}) and measuring it"):
                report = quantize_version(
                    artifact, folder, mode.value, settings_for(store, bucket, prefix), evaluation=files
                )
            _pin_production(target, name, f"pinned before publishing {mode.value} of version {base}")
            with transfer_progress("uploading") as progress:
                manifest = target.publish(folder, progress=progress)
        print_report(console, name, report)
        console.print(
            f"published {name} version {manifest.version} ({mode.value} of version {base}) to {target.location}; "
            f"it takes traffic once promoted: aimass models promote {name} {manifest.version} (or models canary)",
            markup=False,
            soft_wrap=True,
        )


def _pin_production(target: WritableModelStore, name: str, reason: str) -> None:
    """Make the version serving now production, where it is so only by being the newest."""
    versions = target.versions(name)

    def pin(current: ModelAliases) -> ModelAliases:
        serving = current.serving(versions)
        if current.production is not None or serving is None:
            return current
        return rules.promote(name, current, serving, versions, reason)

    if target.aliases(name).production is None:
        pinned = target.update_aliases(name, pin)
        console.print(f"{name}: production pinned to version {pinned.production}, the one serving now", markup=False)


def print_report(out: Console, name: str, report: dict[str, Any]) -> None:
    """The measurements, then every target with its value, met or missed."""
    size, latency = report["size"], report["latency"]
    table = Table("measure", "base", "quantized", "ratio", title=f"{name} v{report['base_version']}: {report['mode']}")
    table.add_row(
        "engine size", _mb(size["engine_bytes_base"]), _mb(size["engine_bytes_new"]), f"{size['engine_ratio']:.2f}x"
    )
    table.add_row(
        "version size", _mb(size["version_bytes_base"]), _mb(size["version_bytes_new"]), f"{size['version_ratio']:.2f}x"
    )
    table.add_row(
        f"latency p50 (1 item, {latency['calls_each']} calls)",
        f"{latency['p50_ms_base']:.2f} ms",
        f"{latency['p50_ms_new']:.2f} ms",
        f"{latency['ratio']:.2f}x",
    )
    out.print(table)
    quality = Table("output vs base", "cosine mean", "cosine min", "max |diff|", "top-1 agreement", title="quality")
    for output, entry in report["quality"].items():
        top1 = f"{entry['top1_agreement']:.1%} ({entry['top1_changed']} changed)" if "top1_agreement" in entry else "-"
        cosine = (f"{entry['cosine_mean']:.4f}", f"{entry['cosine_min']:.4f}")
        quality.add_row(output, *cosine, f"{entry['max_abs_diff']:.3g}", top1)
    out.print(quality)
    out.print(f"evaluation: {report['evaluation']['items']} items from {', '.join(report['evaluation']['sources'])}")
    out.print(f"method: {report['method']}", markup=False, soft_wrap=True)
    if report.get("kept_float"):
        out.print(f"kept in float: {', '.join(report['kept_float'])}", markup=False, soft_wrap=True)
    targets = Table("target", "wanted", "measured", "", title="targets")
    for check in report["targets"]:
        verdict = Text("met", style="green") if check["met"] else Text("MISSED", style="bold red")
        targets.add_row(check["metric"], check["target"], f"{check['value']:.4g}", verdict)
    out.print(targets)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"
