"""The V2 data plane: requests on the wire in, checked tensors to a runtime, responses on the wire out.

Plain Python with no web framework in it, so the same logic serves the local server and every Lambda.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from aimass.errors import InvalidInput
from aimass.metering.meter import measured
from aimass.protocol import v2_codec as codec
from aimass.protocol import wire
from aimass.protocol.v2_types import (
    InferenceRequest,
    ModelMetadata,
    Parameters,
    RequestInput,
    TensorMetadata,
)
from aimass.serving.cost import Schedule, Work
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import Tensor
from aimass.settings import Settings
from aimass.store.manifest import ModelManifest, TensorSpec

HEADER_LENGTH = "inference-header-content-length"
PLATFORM = "onnxruntime_onnx"


@dataclass(frozen=True)
class WireResponse:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def describe(manifest: ModelManifest, versions: list[str]) -> ModelMetadata:
    def tensors(specs: tuple[TensorSpec, ...]) -> list[TensorMetadata]:
        return [TensorMetadata(name=s.name, datatype=s.datatype, shape=list(s.shape)) for s in specs]

    return ModelMetadata(
        name=manifest.name,
        versions=versions,
        platform=PLATFORM,
        inputs=tensors(manifest.inputs),
        outputs=tensors(manifest.outputs),
        parameters={"domain": manifest.domain, "task": manifest.task},
    )


class DataPlane:
    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.schedule = Schedule(settings)

    def infer(self, name: str, version: str | None, body: bytes, header_length: str | None) -> WireResponse:
        runtime = self.registry.get(name, version)
        request, binaries = self._parse(body, header_length)
        manifest = runtime.manifest
        checked = self._check_inputs(request, manifest)
        work = _rows(checked, self.settings.max_batch_items)
        self.schedule.admit(runtime, work)  # from the shapes, before any tensor is decoded
        tensors = {spec.name: tensor for spec, tensor in self._decode_inputs(checked, binaries)}
        prediction = self.schedule.run(
            runtime, work, lambda: measured(runtime, lambda: self.schedule.predict(runtime, tensors))
        )
        return self._encode(request, manifest, prediction.outputs, prediction.usage)

    def _parse(self, body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
        header, tail = body, b""
        if header_length is not None:
            size = wire.decimal(header_length)
            if size is None or not 0 < size <= len(body):
                raise InvalidInput(
                    f"Inference-Header-Content-Length must be decimal digits giving a size between 1 and the body "
                    f"size ({len(body)}), got '{header_length}'",
                    param="Inference-Header-Content-Length",
                )
            header, tail = body[:size], body[size:]
        return wire.parse(InferenceRequest, header, "inference request"), tail

    def _check_inputs(self, request: InferenceRequest, manifest: ModelManifest) -> list[Checked]:
        """Each input against the manifest (name, datatype, shape), and the required ones all there: what the
        header says, before any tensor is decoded."""
        specs = {spec.name: spec for spec in manifest.inputs}
        checked: list[Checked] = []
        for index, item in enumerate(request.inputs):
            where = f"inputs[{index}]"
            spec = specs.get(item.name)
            if spec is None:
                raise InvalidInput(
                    f"{where}.name '{item.name}' is not an input of model '{manifest.name}'; expected {sorted(specs)}",
                    param=f"{where}.name",
                )
            self._check_against(spec, item, where)
            checked.append(Checked(spec, item, where))
        required = {name for name, spec in specs.items() if not spec.optional}
        missing = sorted(required - {each.spec.name for each in checked})
        if missing:
            raise InvalidInput(f"missing input(s) {missing} of model '{manifest.name}'", param="inputs")
        return checked

    def _decode_inputs(self, checked: list[Checked], tail: bytes) -> list[tuple[TensorSpec, Tensor]]:
        decoded: list[tuple[TensorSpec, Tensor]] = []
        offset = 0
        for spec, item, where in checked:
            size = (item.parameters or {}).get("binary_data_size")
            if size is None:
                tensor = codec.from_json(item.data, item.datatype, item.shape, where)
            else:
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise InvalidInput(
                        f"{where}.parameters.binary_data_size must be a non-negative integer, got {size!r}",
                        param=f"{where}.parameters.binary_data_size",
                    )
                if offset + size > len(tail):
                    raise InvalidInput(
                        f"{where}.parameters.binary_data_size {size} runs past the end of the binary data "
                        f"({len(tail) - offset} bytes left)",
                        param=f"{where}.parameters.binary_data_size",
                    )
                tensor = codec.from_binary(tail[offset : offset + size], item.datatype, item.shape, where)
                offset += size
            decoded.append((spec, tensor))
        if offset != len(tail):
            raise InvalidInput(f"{len(tail) - offset} bytes of binary data are not claimed by any input")
        return decoded

    def _check_against(self, spec: TensorSpec, item: RequestInput, where: str) -> None:
        if item.datatype != spec.datatype:
            raise InvalidInput(
                f"{where} '{item.name}' must have datatype {spec.datatype}, got {item.datatype}",
                param=f"{where}.datatype",
            )
        fits = len(item.shape) == len(spec.shape) and all(
            want in (-1, got) for want, got in zip(spec.shape, item.shape, strict=True)
        )
        if not fits:
            raise InvalidInput(
                f"{where} '{item.name}' has shape {item.shape}; expected {list(spec.shape)} (-1: any size)",
                param=f"{where}.shape",
            )
        if 0 in item.shape:
            raise InvalidInput(f"{where} '{item.name}' is empty (shape {item.shape})", param=f"{where}.shape")

    def _encode(
        self,
        request: InferenceRequest,
        manifest: ModelManifest,
        outputs: dict[str, Tensor],
        usage: dict[str, int],
    ) -> WireResponse:
        declared = {spec.name: spec for spec in manifest.outputs}
        all_binary = _flag(request.parameters, "binary_data_output", "parameters", default=False)
        wanted: list[tuple[str, bool]]
        if request.outputs:
            wanted = []
            for index, out in enumerate(request.outputs):
                if out.name not in declared:
                    raise InvalidInput(
                        f"outputs[{index}].name '{out.name}' is not an output of model '{manifest.name}'; "
                        f"expected {sorted(declared)}",
                        param=f"outputs[{index}].name",
                    )
                binary = _flag(out.parameters, "binary_data", f"outputs[{index}].parameters", default=all_binary)
                wanted.append((out.name, binary))
        else:
            # Outputs that depend on optional inputs may be absent; unrequested, they are left out.
            wanted = [(name, all_binary) for name in declared if name in outputs]
        absent = [name for name, _ in wanted if name not in outputs]
        if absent:
            raise InvalidInput(f"output(s) {absent} are not produced for these inputs", param="outputs")

        wire_outputs: list[dict[str, object]] = []
        blobs: list[bytes] = []
        for name, binary in wanted:
            array, datatype = outputs[name], declared[name].datatype
            entry: dict[str, object] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
            if binary:
                blob = codec.to_binary(array, datatype)
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = codec.to_json(array, datatype)
            wire_outputs.append(entry)

        document: dict[str, object] = {
            "model_name": manifest.name,
            "model_version": manifest.version,
            "outputs": wire_outputs,
        }
        if request.id is not None:
            document["id"] = request.id
        if usage:
            document["parameters"] = dict(usage)
        header = wire.dumps(document)
        if not blobs:
            return WireResponse(header, "application/json")
        return WireResponse(
            header + b"".join(blobs),
            "application/octet-stream",
            {"Inference-Header-Content-Length": str(len(header))},
        )


class Checked(NamedTuple):
    spec: TensorSpec
    item: RequestInput
    where: str


def _rows(checked: list[Checked], limit: int) -> Work:
    """The request's items: the most rows (first dimension) any input has (a scalar input is one)."""
    rows = [(each.item.shape[0] if each.item.shape else 1, each) for each in checked]
    if not rows:
        return Work(1, limit, "items", "inputs", "rows", 1)
    count, most = max(rows, key=lambda row: row[0])
    return Work(count, limit, "items", f"{most.where}.shape", "rows", count, f"{most.where} '{most.item.name}'")


def _flag(parameters: Parameters | None, name: str, where: str, *, default: bool) -> bool:
    # A JSON boolean only: bool("false") is True, and 0 or 1 are numbers, not the protocol's flags.
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}.{name} must be true or false, got {value!r}", param=f"{where}.{name}")
    return value
