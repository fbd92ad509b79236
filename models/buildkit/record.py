"""What a build records beside its graph: the samples a deployment must reproduce, and the manifest.

Builds are reproducible byte for byte (only ``created_at`` differs), so these helpers fix how numbers are
written: floats by their shortest exact form, measured quality to 6 significant digits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimass.store.manifest import ModelManifest, verify_files, write_manifest
from models.buildkit.errors import BuildError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def sig(value: float) -> float:
    return float(f"{value:.6g}")  # 6 significant digits: keeps 1e-7 differences visible, unlike round()


def release(version: str) -> str:
    """A package's release without its local build tag, as the manifest names the reference's framework."""
    return version.split("+", 1)[0]  # "2.13.0+cpu" -> "2.13.0"


def timestamp() -> str:
    """Now, in UTC to the second, as manifests record ``created_at``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_samples(
    path: Path,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, npt.NDArray[np.float32]],
    tolerance: Mapping[str, float],
) -> None:
    """Inputs and reference outputs a new deployment must reproduce before it takes traffic."""
    import numpy as np

    document = {
        "inputs": dict(inputs),
        "outputs": {name: _floats(np.asarray(value, dtype=np.float32)) for name, value in outputs.items()},
        "tolerance": dict(tolerance),
    }
    path.write_text(json.dumps(document) + "\n")


def _floats(array: npt.NDArray[np.float32]) -> list[Any]:
    # str() of a float32 is its shortest exact form: compact, and reads back to the same float32.
    if array.ndim == 1:
        return [float(str(v)) for v in array]
    return [_floats(row) for row in array]


def seal(work: Path, manifest: ModelManifest) -> None:
    """Write the manifest, then check ``work`` holds exactly the files it lists, each matching."""
    write_manifest(work, manifest)
    # The store must hold exactly what the manifest lists, nothing a failed step left behind.
    expected = {entry.path for entry in manifest.files} | {"manifest.json"}
    extra = {p.relative_to(work).as_posix() for p in work.rglob("*") if not p.is_dir()} - expected
    if extra:
        raise BuildError(f"unexpected files in the build: {sorted(extra)}")
    verify_files(work, manifest)
