"""A tiny but real image classifier, built into a test's directory in milliseconds, and images to feed it.

The graph has the real one's signature (FP32 [n, 3, S, S] in, FP32 [n, classes] logits out): a global
average pool and a 3 -> 3 linear layer, so a plain red image scores highest as "red". Its manifest carries
the real model's kind of preprocessing block with a small image size and small limits, so every check of
the vision runtime runs against real ONNX Runtime and real Pillow decoding.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest

TINY_VISION = "tiny-vision"
LABELS = ("red", "green", "blue")
SIZE = 32
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
WEIGHTS = 4.0 * np.eye(3, dtype=np.float32)  # [3 channels, 3 classes]
BIAS = np.array([0.0, 0.1, -0.1], dtype=np.float32)
PREPROCESSING: dict[str, Any] = {
    "image_size": SIZE,
    "crop_fraction": 0.875,
    "resample": "bicubic",
    "mean": list(MEAN),
    "std": list(STD),
    "max_image_bytes": 20_000,
    "max_pixels": 250_000,
}


def _graph(path: Path) -> None:
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "weights", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_vision",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=[numpy_helper.from_array(WEIGHTS, "weights"), numpy_helper.from_array(BIAS, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tiny_vision(
    store: Path,
    name: str = TINY_VISION,
    *,
    inputs: tuple[TensorSpec, ...] = (TensorSpec(name="image", datatype="BYTES", shape=(-1,)),),
    labels: tuple[str, ...] = LABELS,
    preprocessing: dict[str, Any] | None = None,
) -> Path:
    directory = store / name / "1"
    directory.mkdir(parents=True)
    _graph(directory / "model.onnx")
    manifest = ModelManifest(
        name=name,
        version="1",
        domain="vision",
        task="classification",
        description="tiny colour classifier for tests",
        files=(file_entry(directory, "model.onnx"),),
        engine=EngineSpec(
            file="model.onnx",
            inputs=(TensorSpec(name="pixel_values", datatype="FP32", shape=(-1, 3, SIZE, SIZE)),),
            outputs=(TensorSpec(name="logits", datatype="FP32", shape=(-1, len(LABELS))),),
        ),
        inputs=inputs,
        outputs=(TensorSpec(name="logits", datatype="FP32", shape=(-1, len(LABELS))),),
        preprocessing=preprocessing or PREPROCESSING,
        labels=labels,
        created_at="2026-11-28T00:00:00Z",
    )
    write_manifest(directory, manifest)
    return directory


def reference_logits(colour: tuple[int, int, int]) -> npt.NDArray[np.float32]:
    """What the tiny model must answer for an image of one plain colour, computed without ONNX Runtime."""
    normalised = (np.array(colour, dtype=np.float32) - np.array(MEAN, dtype=np.float32)) / np.float32(128.0)
    return np.asarray(normalised @ WEIGHTS + BIAS, dtype=np.float32)


def image_bytes(
    colour: tuple[int, ...] | int = (255, 0, 0),
    *,
    size: tuple[int, int] = (40, 30),
    mode: str = "RGB",
    fmt: str = "PNG",
    **options: Any,
) -> bytes:
    """One plain-colour image, encoded."""
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=fmt, **options)
    return out.getvalue()
