"""A PyTorch module as one ONNX graph: a thin helper over ``torch.onnx.export``, with the batch axis dynamic.

Build-time only: torch is imported when a module is converted, and no function image carries it (the import
contracts forbid the serving core to import it). The TorchScript exporter is used where torch still has it, the
dynamo exporter otherwise; either way the first axis of every input and output is the batch, so that the
imported model batches requests.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aimass.errors import UnsupportedModel
from aimass.importing.support import newest_opsets

if TYPE_CHECKING:
    import torch

# The TorchScript exporter's newest opset in the torch releases this project pins.
TORCHSCRIPT_OPSET = 17


def from_torch(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    *,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    opset: int | None = None,
) -> bytes:
    """``module`` exported on ``example`` (one tensor per input, batch first) as one self-contained ONNX graph."""
    import torch

    names = list(inputs or ([f"input_{i}" for i in range(len(example))] if len(example) > 1 else ["input"]))
    with torch.no_grad():
        probe = module.eval()(*example)
    count = len(probe) if isinstance(probe, tuple | list) else 1
    outs = list(outputs or ([f"output_{i}" for i in range(count)] if count > 1 else ["output"]))
    axes = {name: {0: "batch"} for name in [*names, *outs]}
    version = min(opset or TORCHSCRIPT_OPSET, newest_opsets()[""])
    with tempfile.TemporaryDirectory(prefix="aimass-torch-") as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing and deprecation warnings: the import runs the graph itself
        path = Path(scratch) / "model.onnx"
        try:
            torch.onnx.export(
                module, example, str(path), dynamo=False, opset_version=version, do_constant_folding=True,
                input_names=names, output_names=outs, dynamic_axes=axes,
            )  # fmt: skip
        except Exception as legacy:  # torch releases without the TorchScript exporter
            path.unlink(missing_ok=True)
            try:
                batch = torch.export.Dim("batch")
                program = torch.onnx.export(
                    module, example, dynamo=True, opset_version=max(version, 18), input_names=names,
                    output_names=outs, dynamic_shapes=tuple({0: batch} for _ in names), external_data=False,
                )  # fmt: skip
                if program is None:
                    raise RuntimeError("the dynamo exporter returned no program")
                program.save(str(path), external_data=False)
            except Exception as exc:
                raise UnsupportedModel(
                    f"torch.onnx.export cannot export {type(module).__name__}: {exc} (the TorchScript exporter: "
                    f"{legacy}); export it to ONNX yourself and import the .onnx file"
                ) from None
        return path.read_bytes()
