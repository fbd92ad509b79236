"""The tensors a graph serves, as the V2 protocol declares them, and whether requests of it can be batched.

Every served tensor must be one a V2 client can send or read (a tensor, of a datatype the protocol has) with a
known rank, and its first axis must be the batch: a dynamic dimension, the same one across the inputs, so that
rows of several requests (or the items of a batch's line) stack into one engine call and the outputs split back
into one row each. ``batch_check`` confirms it by running the graph: an output whose first dimension does not
follow the batch is refused however its graph declares it.
"""

from __future__ import annotations

from collections.abc import Mapping

from aimass.errors import UnsupportedModel
from aimass.importing.graph import V2_DATATYPES, GraphInfo, ValueInfo
from aimass.serving.runtime import Tensor
from aimass.store.manifest import Datatype, TensorSpec

_EXPORT_HINT = (
    "export it with a dynamic first axis (torch.onnx.export(..., dynamic_axes={'<input>': {0: 'batch'}, "
    "'<output>': {0: 'batch'}}); skl2onnx: initial_types with None as the first dimension)"
)


def served_tensors(
    info: GraphInfo, *, what: str = "the model"
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs and outputs as manifest tensors (``-1`` for every dynamic dimension), each checked."""
    if not info.inputs:
        raise UnsupportedModel(f"{what} has no inputs to feed (every graph input is an initializer)", param="file")
    if not info.outputs:
        raise UnsupportedModel(f"{what} declares no outputs", param="file")
    inputs = tuple(_spec(value, "input", what) for value in info.inputs)
    outputs = tuple(_spec(value, "output", what) for value in info.outputs)
    _one_batch_axis(info, what)
    return inputs, outputs


def _spec(value: ValueInfo, role: str, what: str) -> TensorSpec:
    where = f"{role} '{value.name}' of {what}"
    if value.kind != "tensor":
        hint = (
            " (scikit-learn's ZipMap: convert with options={'zipmap': False})"
            if value.kind in ("sequence", "map")
            else ""
        )
        raise UnsupportedModel(
            f"{where} is a {value.kind}, not a tensor{hint}; the V2 protocol serves tensors only", param="file"
        )
    datatype = V2_DATATYPES.get(value.element)
    if datatype is None:
        raise UnsupportedModel(
            f"{where} has element type {value.element_name}, which the V2 protocol cannot carry; cast it in the "
            "graph to float32, float16, an integer type, bool or string",
            param="file",
        )
    if value.dims is None:
        raise UnsupportedModel(
            f"{where} has no declared shape, so requests cannot be checked or batched; export it with its shape",
            param="file",
        )
    if not value.dims:
        raise UnsupportedModel(f"{where} is a scalar, so requests cannot be batched; {_EXPORT_HINT}", param="file")
    first = value.dims[0]
    if first.fixed:
        raise UnsupportedModel(
            f"{where} has a fixed first dimension of {first.value}, so requests cannot be batched; {_EXPORT_HINT}",
            param="file",
        )
    shape = tuple(d.value if d.fixed and d.value is not None else -1 for d in value.dims)
    return TensorSpec(name=value.name, datatype=_datatype(datatype), shape=shape)


def _datatype(name: str) -> Datatype:
    return name  # type: ignore[return-value]  # V2_DATATYPES holds Datatype names only


def _one_batch_axis(info: GraphInfo, what: str) -> None:
    named = {value.name: value.dims[0].param for value in info.inputs if value.dims and value.dims[0].param}
    if len(set(named.values())) > 1:
        axes = ", ".join(f"'{name}' ({param})" for name, param in sorted(named.items()))
        raise UnsupportedModel(
            f"the inputs of {what} have independent first dimensions ({axes}), so their rows cannot be batched "
            f"together; {_EXPORT_HINT}, one name shared by every input",
            param="file",
        )


def batch_check(runs: Mapping[int, Mapping[str, Tensor]], *, what: str = "the model") -> None:
    """Refuse a graph whose outputs, run on batches of the sizes in ``runs`` (size -> outputs), do not have one
    row per input row."""
    for size, outputs in sorted(runs.items()):
        for name, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != size:
                raise UnsupportedModel(
                    f"output '{name}' of {what} does not have one row per input row (a batch of {size} gave shape "
                    f"{list(value.shape)}), so requests cannot be batched; {_EXPORT_HINT}",
                    param="file",
                )


def settled_shape(spec: TensorSpec, runs: Mapping[int, Mapping[str, Tensor]]) -> TensorSpec:
    """``spec`` with the dimensions the graph left unnamed but that every run filled alike made fixed."""
    shapes = {tuple(outputs[spec.name].shape) for outputs in runs.values() if spec.name in outputs}
    if not shapes or any(len(shape) != len(spec.shape) for shape in shapes):
        return spec
    settled = [
        want if want != -1 or axis == 0 or len({shape[axis] for shape in shapes}) > 1 else next(iter(shapes))[axis]
        for axis, want in enumerate(spec.shape)
    ]
    return spec.model_copy(update={"shape": tuple(settled)})
