"""The graph: front end + classifier + softmax as one ONNX file, and the checks on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError, onnx_export
from models.speech.commands.spec import CLIP_SAMPLES, LABELS, OPSET

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

INPUT, OUTPUT = "waveform", "probabilities"


def served_module(front_end: torch.nn.Module, classifier: torch.nn.Module) -> torch.nn.Module:
    """Waveforms [batch, CLIP_SAMPLES] -> class probabilities [batch, classes]: everything the server runs."""
    import torch

    class SpeechCommands(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.front_end, self.classifier = front_end, classifier

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.classifier(self.front_end(waveform)), dim=-1)

    return SpeechCommands().eval()


def export_onnx(module: torch.nn.Module, path: Path) -> str:
    import torch

    example = (torch.zeros(2, CLIP_SAMPLES),)
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    return onnx_export.export_onnx(module, example, path, opset=OPSET, inputs=[INPUT], outputs=[OUTPUT], axes=axes)


def verify_graph(path: Path, module: torch.nn.Module) -> tuple[ort.InferenceSession, float]:
    """Check the graph is valid and self-contained, has the contracted signature, and matches PyTorch.

    Returns the session and the largest probability difference from the PyTorch module.
    """
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        raise BuildError("model.onnx keeps tensors in external files")
    signature = [(i.name, i.type.tensor_type.elem_type) for i in [*graph.input, *graph.output]]
    expected = [(INPUT, onnx.TensorProto.FLOAT), (OUTPUT, onnx.TensorProto.FLOAT)]
    if signature != expected:
        raise BuildError(f"graph signature {signature} is not {expected}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    drift = 0.0
    for batch in (1, 3, 8):
        waveforms = (rng.standard_normal((batch, CLIP_SAMPLES)) * rng.uniform(1e-4, 0.5, (batch, 1))).astype(np.float32)
        (probabilities,) = session.run([OUTPUT], {INPUT: waveforms})
        if probabilities.shape != (batch, len(LABELS)) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5):
            raise BuildError(f"batch {batch}: output {probabilities.shape} is not probabilities over {len(LABELS)}")
        with torch.no_grad():
            reference = module(torch.from_numpy(waveforms)).numpy()
        drift = max(drift, float(np.abs(probabilities - reference).max()))
    if drift > 1e-4:
        raise BuildError(f"ONNX Runtime and PyTorch disagree by up to {drift:.2e} in probability")
    return session, drift
