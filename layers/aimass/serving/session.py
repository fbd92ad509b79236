"""ONNX Runtime sessions, created one way for every domain."""

from __future__ import annotations

import onnxruntime as ort

from aimass.errors import ModelLoadError
from aimass.settings import Settings
from aimass.store.manifest import TensorSpec

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

# ONNX tensor element types as ONNX Runtime names them, keyed by the V2 datatype.
ORT_TYPES = {
    "BOOL": "tensor(bool)", "UINT8": "tensor(uint8)", "UINT16": "tensor(uint16)",
    "UINT32": "tensor(uint32)", "UINT64": "tensor(uint64)", "INT8": "tensor(int8)",
    "INT16": "tensor(int16)", "INT32": "tensor(int32)", "INT64": "tensor(int64)",
    "FP16": "tensor(float16)", "FP32": "tensor(float)", "FP64": "tensor(double)",
    "BYTES": "tensor(string)",
}  # fmt: skip


class SessionFactory:
    """Builds inference sessions with the process's thread and optimisation settings.

    Sessions are created from bytes, not paths, so that a decrypted model never has to touch the disk.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._settings.intra_op_threads
        options.inter_op_num_threads = self._settings.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads hold their cores between operators: waste where sessions share the cores (the local
        # server's concurrent requests), a gain where one session runs many tiny operators in a row (decoding).
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self._settings.intra_op_spinning else "0"
        )
        return options

    def providers(self) -> list[str]:
        """The execution providers sessions use: CUDA first where the settings allow it and ONNX Runtime has it
        (the GPU worker images install onnxruntime-gpu), then the CPU, which runs what CUDA does not."""
        wanted = self._settings.accelerator
        if wanted == "cpu":
            return [CPU]
        if CUDA in ort.get_available_providers():
            return [CUDA, CPU]
        if wanted == "cuda":
            raise ModelLoadError(
                "AIMASS_ACCELERATOR=cuda, but this ONNX Runtime has no CUDA execution provider (it needs "
                f"onnxruntime-gpu and a GPU; it has {ort.get_available_providers()})",
                public="no GPU is available to its sessions",
            )
        return [CPU]

    def create(self, model: bytes, *, label: str) -> ort.InferenceSession:
        providers = self.providers()
        try:
            return ort.InferenceSession(model, self.options(), providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for bad graphs
            raise ModelLoadError(
                f"{label}: ONNX Runtime cannot load the graph: {exc}", public="ONNX Runtime cannot load its graph"
            ) from exc


def check_signature(
    session: ort.InferenceSession, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], label: str
) -> None:
    """Refuse a graph whose tensors differ from what its manifest promises."""
    for kind, declared, actual in (
        ("input", inputs, session.get_inputs()),
        ("output", outputs, session.get_outputs()),
    ):
        found = {node.name: node for node in actual}
        for spec in declared:
            node = found.get(spec.name)
            if node is None:
                missing = f"the graph has no {kind} '{spec.name}'"
                raise ModelLoadError(f"{label}: {missing} (has {sorted(found)})", public=missing)
            if node.type != ORT_TYPES[spec.datatype]:
                differs = f"{kind} '{spec.name}' is {node.type} in the graph, {spec.datatype} in the manifest"
                raise ModelLoadError(f"{label}: {differs}", public=differs)
