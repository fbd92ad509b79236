"""What an ONNX file declares, read from its protobuf bytes alone.

The ``onnx`` package stays out of the function images (the management API imports models there), and ONNX
Runtime says nothing of a graph's opsets or operators, so this module reads the few fields an import needs
straight from the protobuf wire format: the IR version, the opsets imported, every operator (those of
subgraphs and local functions too), each graph input and output (element type, dimensions: a number, a named
dynamic axis or an unknown one) and the initializers (their names, whether their data lies in other files).
Large initializers are skipped by their length, never copied, so reading a graph of gigabytes costs one pass
over its nodes.

Field numbers are onnx.proto3's (ModelProto, GraphProto, NodeProto, ...); a field this module does not know is
skipped, as protobuf itself does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aimass.errors import UnsupportedModel

# ONNX TensorProto.DataType -> the V2 protocol's datatype; the rest (bfloat16, complex, float8, 4-bit) no V2
# client can send or read.
V2_DATATYPES: dict[int, str] = {
    1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "BYTES", 9: "BOOL",
    10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64",
}  # fmt: skip
ELEMENT_NAMES: dict[int, str] = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4e2m1",
}  # fmt: skip
DEFAULT_DOMAIN = ""  # ai.onnx, the standard operators; "ai.onnx" spells it too

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_TYPE_KINDS = {1: "tensor", 4: "sequence", 5: "map", 8: "sparse tensor", 9: "optional"}


@dataclass(frozen=True)
class Dim:
    """One dimension: a fixed ``value``, a named dynamic axis (``param``), or neither (unknown size)."""

    value: int | None = None
    param: str | None = None

    @property
    def fixed(self) -> bool:
        return self.value is not None and self.value > 0


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its kind (a tensor, or a sequence, map, ...), element type and dimensions.

    ``dims`` is None where the graph declares no shape (the rank is unknown)."""

    name: str
    kind: str = "tensor"
    element: int = 0
    dims: tuple[Dim, ...] | None = None

    @property
    def element_name(self) -> str:
        return ELEMENT_NAMES.get(self.element, f"type {self.element}")


@dataclass(frozen=True)
class GraphInfo:
    ir_version: int
    producer: str
    opsets: dict[str, int]
    operators: frozenset[tuple[str, str]]  # (domain, op_type) of every node, subgraphs and functions included
    functions: frozenset[tuple[str, str]]  # (domain, name) of the model's local functions
    inputs: tuple[ValueInfo, ...]  # the graph inputs a caller feeds (initializers excluded)
    outputs: tuple[ValueInfo, ...]
    external_data: tuple[str, ...] = field(default=())  # initializers whose data lies in other files
    nodes: int = 0


class _Reader:
    """protobuf wire format: (field number, wire type, value) of each field of one message."""

    def __init__(self, data: memoryview) -> None:
        self.data = data

    def fields(self) -> Iterator[tuple[int, int, int | memoryview]]:
        data, at, end = self.data, 0, len(self.data)
        while at < end:
            key, at = _varint(data, at)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ValueError("field number 0")
            if wire == _VARINT:
                value, at = _varint(data, at)
                yield number, wire, value
            elif wire == _BYTES:
                size, at = _varint(data, at)
                if at + size > end:
                    raise ValueError("a field runs past the end of its message")
                yield number, wire, data[at : at + size]
                at += size
            elif wire in (_FIXED64, _FIXED32):
                width = 8 if wire == _FIXED64 else 4
                if at + width > end:
                    raise ValueError("a field runs past the end of its message")
                yield number, wire, int.from_bytes(data[at : at + width], "little")
                at += width
            else:  # groups (3, 4) are gone from proto3, and 6, 7 were never wire types
                raise ValueError(f"wire type {wire}")


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("a truncated or overlong varint")
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result - (1 << 64) if result >= 1 << 63 else result), at
        shift += 7


def _text(value: int | memoryview) -> str:
    if not isinstance(value, memoryview):
        raise ValueError("a string field holds a number")
    return bytes(value).decode("utf-8")


def _message(value: int | memoryview) -> _Reader:
    if not isinstance(value, memoryview):
        raise ValueError("a message field holds a number")
    return _Reader(value)


def _number(value: int | memoryview) -> int:
    if isinstance(value, memoryview):
        raise ValueError("a number field holds bytes")
    return value


def read_graph(data: bytes | memoryview, *, what: str = "the file") -> GraphInfo:
    """The graph ``data`` declares; UnsupportedModel (400) when it is no ONNX model at all."""
    try:
        info = _model(_Reader(memoryview(data)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_onnx(what, f"its bytes are not an ONNX model ({exc})") from None
    if info is None:
        raise _not_onnx(what, "it holds no graph")
    return info


def _not_onnx(what: str, why: str) -> UnsupportedModel:
    return UnsupportedModel(
        f"{what} is not an ONNX model: {why}; export your model to ONNX first (torch.onnx.export, skl2onnx's "
        "to_onnx, tf2onnx), or import it with its framework: aimass models import accepts .onnx files, scikit-learn "
        "pipelines (.joblib, .pkl), TorchScript modules (.pt) and folders with a manifest.json",
        param="file",
    )


def _model(reader: _Reader) -> GraphInfo | None:
    ir_version, producer, graph = 0, "", None
    opsets: dict[str, int] = {}
    operators: set[tuple[str, str]] = set()
    functions: set[tuple[str, str]] = set()
    for number, _, value in reader.fields():
        if number == 1:
            ir_version = _number(value)
        elif number == 2:
            producer = _text(value)
        elif number == 3 and producer:
            producer = f"{producer} {_text(value)}"
        elif number == 8:
            domain, version = _opset(_message(value))
            opsets[domain] = version
        elif number == 7:
            graph = _message(value)
        elif number == 25:
            functions.add(_function(_message(value), operators))
    if graph is None:
        return None
    inputs, outputs, external, nodes = _graph(graph, operators, top=True)
    return GraphInfo(
        ir_version=ir_version,
        producer=producer,
        opsets=opsets,
        operators=frozenset(operators),
        functions=frozenset(functions),
        inputs=inputs,
        outputs=outputs,
        external_data=external,
        nodes=nodes,
    )


def _opset(reader: _Reader) -> tuple[str, int]:
    domain, version = DEFAULT_DOMAIN, 0
    for number, _, value in reader.fields():
        if number == 1:
            domain = _text(value)
        elif number == 2:
            version = _number(value)
    return (DEFAULT_DOMAIN if domain == "ai.onnx" else domain), version


def _function(reader: _Reader, operators: set[tuple[str, str]]) -> tuple[str, str]:
    name = domain = ""
    for number, _, value in reader.fields():
        if number == 1:
            name = _text(value)
        elif number == 10:
            domain = _text(value)
        elif number == 7:
            _node(_message(value), operators)
    return domain, name


def _graph(
    reader: _Reader, operators: set[tuple[str, str]], *, top: bool = False
) -> tuple[tuple[ValueInfo, ...], tuple[ValueInfo, ...], tuple[str, ...], int]:
    inputs: list[ValueInfo] = []
    outputs: list[ValueInfo] = []
    initialized: set[str] = set()
    external: list[str] = []
    nodes = 0
    for number, _, value in reader.fields():
        if number == 1:
            nodes += _node(_message(value), operators)
        elif not top:
            continue  # a subgraph's operators are all an import needs of it
        elif number == 5:
            name, outside = _initializer(_message(value))
            initialized.add(name)
            if outside:
                external.append(name)
        elif number == 11:
            inputs.append(_value_info(_message(value)))
        elif number == 12:
            outputs.append(_value_info(_message(value)))
    # Before IR version 4 every initializer was also listed as an input, with a default a caller may override.
    fed = tuple(info for info in inputs if info.name not in initialized)
    return fed, tuple(outputs), tuple(external), nodes


def _node(reader: _Reader, operators: set[tuple[str, str]]) -> int:
    op_type = domain = ""
    nodes = 1
    for number, _, value in reader.fields():
        if number == 4:
            op_type = _text(value)
        elif number == 7:
            domain = _text(value)
        elif number == 5:
            nodes += _attribute(_message(value), operators)
    operators.add((DEFAULT_DOMAIN if domain == "ai.onnx" else domain, op_type))
    return nodes


def _attribute(reader: _Reader, operators: set[tuple[str, str]]) -> int:
    """The nodes of an attribute's subgraphs (If, Loop, Scan bodies), their operators added to ``operators``."""
    nodes = 0
    for number, _, value in reader.fields():
        if number in (6, 11):  # g, graphs
            nodes += _graph(_message(value), operators)[3]
    return nodes


def _initializer(reader: _Reader) -> tuple[str, bool]:
    name, outside = "", False
    for number, _, value in reader.fields():
        if number == 8:
            name = _text(value)
        elif number == 14:
            outside = _number(value) == 1  # data_location EXTERNAL
    return name, outside


def _value_info(reader: _Reader) -> ValueInfo:
    name, kind, element, dims = "", "unknown", 0, None
    for number, _, value in reader.fields():
        if number == 1:
            name = _text(value)
        elif number == 2:
            for which, _, inner in _message(value).fields():
                if which in _TYPE_KINDS:
                    kind = _TYPE_KINDS[which]
                    if which == 1:
                        element, dims = _tensor_type(_message(inner))
    return ValueInfo(name=name, kind=kind, element=element, dims=dims)


def _tensor_type(reader: _Reader) -> tuple[int, tuple[Dim, ...] | None]:
    element, dims = 0, None
    for number, _, value in reader.fields():
        if number == 1:
            element = _number(value)
        elif number == 2:
            dims = tuple(_dim(_message(inner)) for which, _, inner in _message(value).fields() if which == 1)
    return element, dims


def _dim(reader: _Reader) -> Dim:
    size: int | None = None
    param: str | None = None
    for number, _, value in reader.fields():
        if number == 1:
            size = _number(value)
        elif number == 2:
            param = _text(value) or None
    return Dim(value=size, param=param)
