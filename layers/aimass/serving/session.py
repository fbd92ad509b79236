"""ONNX Runtime sessions, created one way for every domain."""

from __future__ import annotations

import logging

import onnxruntime as ort

from aimass.errors import ModelLoadError
from aimass.serving.head_start import CUDA, HEAD_START, SessionSpec, providers_for
from aimass.settings import Settings
from aimass.store.manifest import ModelManifest, TensorSpec

log = logging.getLogger("aimass.sessions")

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

    def spec(self) -> SessionSpec:
        """The engine options and providers of this process's sessions."""
        settings = self._settings
        return SessionSpec(
            settings.intra_op_threads, settings.inter_op_threads, settings.intra_op_spinning, self.providers()
        )

    def options(self) -> ort.SessionOptions:
        return self.spec().options()

    def providers(self) -> tuple[str, ...]:
        """The execution providers sessions use: CUDA first where the settings allow it and ONNX Runtime has it
        (the GPU worker images install onnxruntime-gpu), then the CPU, which runs what CUDA does not."""
        providers = providers_for(self._settings.accelerator)
        if self._settings.accelerator == "cuda" and CUDA not in providers:
            raise ModelLoadError(
                "AIMASS_ACCELERATOR=cuda, but this ONNX Runtime has no CUDA execution provider (it needs "
                f"onnxruntime-gpu and a GPU; it has {ort.get_available_providers()})",
                public="no GPU is available to its sessions",
            )
        return providers

    def create(self, model: bytes, *, label: str) -> ort.InferenceSession:
        spec = self.spec()
        try:
            return spec.session(model)
        except Exception as exc:  # ORT raises its own untyped errors for bad graphs
            raise ModelLoadError(
                f"{label}: ONNX Runtime cannot load the graph: {exc}", public="ONNX Runtime cannot load its graph"
            ) from exc

    def built_ahead(self, manifest: ModelManifest, relative: str) -> ort.InferenceSession | None:
        """The session the cold start's head start built of this file (``aimass.serving.head_start``), where its
        bytes were the ones the manifest declares and its options these; else None."""
        if manifest.encryption is not None:  # its digest is the ciphertext's
            return None
        try:
            spec = self.spec()
        except ModelLoadError:  # no session can be built: the load says so, once the file's hash has spoken
            return None
        session = HEAD_START.claim(manifest.file(relative).sha256, spec)
        if session is not None:
            log.info("model '%s' version %s: %s was built ahead", manifest.name, manifest.version, relative)
        return session


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
