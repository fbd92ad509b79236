"""PyTorch to one self-contained ONNX file, the same way for every model build."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit.errors import BuildError
from models.buildkit.steps import console

if TYPE_CHECKING:
    import torch

Axes = Mapping[str, Mapping[int, str]]


def export_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    opset: int,
    inputs: Sequence[str],
    outputs: Sequence[str],
    axes: Axes,
    limits: Mapping[str, int] | None = None,
) -> str:
    """Export with the TorchScript exporter, or the dynamo exporter where that is gone; say which.

    ``axes`` names the dynamic dimensions of the inputs and outputs (``{"x": {0: "batch"}}``); ``limits``
    caps a named dimension where the graph cannot take more (the dynamo exporter needs to know).
    """
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns about Python-level shape checks, and the TorchScript exporter about its deprecation.
        # Each build's verify_graph (other batch sizes, lengths) is what proves the graph general.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                do_constant_folding=True,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes={name: dict(dims) for name, dims in axes.items()},
            )
            return f"torch.onnx TorchScript exporter, opset {opset}"
        except Exception as exc:  # the legacy exporter is deprecated and will be removed from torch
            console.print(f"[yellow]TorchScript exporter unavailable ({exc!r}); using the dynamo exporter")
            path.unlink(missing_ok=True)

        caps = limits or {}
        labels = {label for dims in axes.values() for label in dims.values()}
        dims = {
            label: torch.export.Dim(label, max=caps[label]) if label in caps else torch.export.Dim(label)
            for label in labels
        }
        shapes = tuple({axis: dims[label] for axis, label in axes.get(name, {}).items()} for name in inputs)
        dynamo_opset = max(opset, 18)  # the dynamo exporter starts at opset 18
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            opset_version=dynamo_opset,
            dynamic_shapes=shapes,
            external_data=False,
            input_names=list(inputs),
            output_names=list(outputs),
        )
        if program is None:  # only None when given a file to write, which this call is not
            raise BuildError("the dynamo exporter returned no program")
        program.save(str(path), external_data=False)
        return f"torch.onnx dynamo exporter, opset {dynamo_opset}"
