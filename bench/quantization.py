"""Quantize the text and vision models in every mode; measure each new version against the one it came from.

    python bench/quantization.py [--domains text vision] [--modes int8-dynamic int8-static fp16]
                                 [--store model_store] [--out bench/records/quantization.json] [--calls 200]
                                 [--explore]
    python -m bench.quantization ...

For each catalogued model of the domains and each mode: the newest version is copied into a store of the
run's own, ``aimass_tools.quantize.quantize_version`` compresses, loads, measures and validates it in a scratch
folder, the store publishes it (the path ``aimass models quantize`` takes), and the published version is
loaded and asked once more. The repository's store is only read.

Evaluation inputs: each version's samples, the build's ``eval.json`` where it has one (text), and for vision
the photos its build checks against PyTorch (scikit-image's, each also mirrored): the vision build keeps them
in no file, and its samples are three images. Prints one table and writes the reports to ``--out``. Each
report's targets (``aimass_tools.quantize``: size, speed, quality against the base) are this script's: it exits
1 when one is missed (``--explore``: reports it, exits 0). A mode refused for a model is reported, not judged.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from aimass.errors import AimassError  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from aimass.store.local import LocalModelStore  # noqa: E402
from aimass_tools.quantize import MODES, build_evaluation, load_runtime, quantize_version, samples_file  # noqa: E402
from bench.common import cpu_busy, load_average, machine_info, make_console, write_json  # noqa: E402
from bench.targets import Target, add_explore_flag, exit_status, holds  # noqa: E402
from models.catalogue import catalogue  # noqa: E402

PACKAGES = ("onnxruntime", "onnx", "numpy", "tokenizers", "pillow")
console = make_console()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["text", "vision"], help="domains whose models to quantize")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="quantization modes")
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store (read only)")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "quantization.json")
    parser.add_argument("--calls", type=int, default=200, help="one-item predict calls per version for latency")
    add_explore_flag(parser)
    return parser.parse_args(argv)


def targets(results: dict[str, dict[str, Any]]) -> list[Target]:
    """Every judged target of every report (refused modes have none)."""
    return [
        holds(f"{name} {mode} {check['metric']}", bool(check["met"]), f"{check['value']:.4g} ({check['target']})")
        for name, modes in results.items()
        for mode, report in modes.items()
        for check in report.get("targets", [])
    ]


def reference_photos(directory: Path) -> Path:
    """The vision build's reference photos, each as it is and mirrored, as a samples-shaped JSON of JPEGs."""
    from PIL import Image, ImageOps

    from models.vision.efficientnet_lite0.served import photo_files
    from models.vision.efficientnet_lite0.spec import PHOTOS, SAMPLE_JPEG_QUALITY

    images = []
    for name in PHOTOS:
        with Image.open(photo_files() / name) as photo:
            rgb = photo.convert("RGB")
        for variant in (rgb, ImageOps.mirror(rgb)):
            out = io.BytesIO()
            variant.save(out, format="JPEG", quality=SAMPLE_JPEG_QUALITY)  # as samples.json carries its images
            images.append(base64.b64encode(out.getvalue()).decode())
    path = directory / "vision-photos.json"
    path.write_text(json.dumps({"inputs": {"image": images}}))
    return path


def evaluation_files(name: str, domain: str, scratch: Path) -> list[Path]:
    return [*build_evaluation(name), *([reference_photos(scratch)] if domain == "vision" else [])]


def quantize_one(source: Path, name: str, mode: str, files: list[Path], calls: int, scratch: Path) -> dict[str, Any]:
    """Quantize ``name``'s newest version into a store of its own, publish it, and load the published one."""
    store = scratch / f"{name}-{mode}"
    base_version = LocalModelStore(source).versions(name)[-1]
    shutil.copytree(source / name / base_version, store / name / base_version)
    local, settings = LocalModelStore(store), Settings(model_store=store)
    folder = scratch / f"{name}-{mode}-new"
    report = quantize_version(
        local.fetch(name, base_version), folder, mode, settings, evaluation=files, latency_calls=calls
    )
    published = local.publish(folder)
    runtime = load_runtime(local.fetch(name, published.version), settings)
    samples = json.loads(local.fetch(name, published.version).read(samples_file(published) or ""))
    answered = runtime.predict({k: _array(v) for k, v in samples["inputs"].items()}).outputs
    assert set(answered) == {spec.name for spec in published.outputs}
    return {**report, "published_version": published.version}


def _array(data: list[Any]) -> np.ndarray[Any, Any]:
    if data and isinstance(data[0], str):
        array = np.empty(len(data), dtype=object)
        array[:] = [item.encode() for item in data]
        return array
    return np.asarray(data, dtype=np.float32)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    table = Table(
        "model", "mode", "engine size", "latency p50 (ms)", "quality vs base", "targets", title="quantization"
    )
    for name, modes in results.items():
        for mode, report in modes.items():
            if "error" in report:
                table.add_row(name, mode, "", "", "", Text(f"refused: {report['error']}", style="yellow"))
                continue
            size, latency = report["size"], report["latency"]
            speed = f"{latency['p50_ms_base']:.2f} -> {latency['p50_ms_new']:.2f} ({latency['ratio']:.2f}x)"
            missed = [f"{c['metric']} {c['value']:.4g} ({c['target']})" for c in report["targets"] if not c["met"]]
            verdict = (
                Text("all met", style="green") if not missed else Text("missed: " + "; ".join(missed), style="red")
            )
            table.add_row(name, mode, f"{size['engine_ratio']:.2f}x", speed, _quality(report["quality"]), verdict)
    console.print(table)


def _quality(quality: dict[str, dict[str, Any]]) -> str:
    parts = []
    for output, entry in quality.items():
        text = f"{output}: cos {entry['cosine_mean']:.4f} (min {entry['cosine_min']:.4f})"
        if "top1_agreement" in entry:
            text += f", top-1 {entry['top1_agreement']:.1%}"
        parts.append(text)
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    entries = [entry for entry in catalogue() if entry.domain in args.domains]
    busy = cpu_busy()
    console.print(f"quantization bench: {[e.name for e in entries]} x {args.modes}; CPUs {busy or 0:.0%} busy before")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="aimass-quantization-bench-") as work:
        scratch = Path(work)
        for entry in entries:
            files = evaluation_files(entry.name, entry.domain, scratch)
            for mode in args.modes:
                console.print(f"{entry.name}: {mode}")
                try:
                    report = quantize_one(args.store.resolve(), entry.name, mode, files, args.calls, scratch)
                except AimassError as exc:
                    report = {"error": exc.message}
                results.setdefault(entry.name, {})[mode] = report
    document = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            **machine_info(PACKAGES),
            "cpu_busy_before": busy,
            "load_average_end": load_average(),
        },
        "latency_calls": args.calls,
        "results": results,
    }
    write_json(args.out, document)
    print_table(results)
    console.print(f"wrote {args.out}")
    return exit_status(targets(results), explore=args.explore, console=console, script="bench/quantization.py")


if __name__ == "__main__":
    raise SystemExit(main())
