"""V2 tensors on the wire (JSON ``data`` or the binary tensor extension) to numpy and back."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from aimass.errors import InvalidInput
from aimass.serving.runtime import Tensor

# V2 datatype -> numpy dtype, little-endian as the binary extension requires.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}  # fmt: skip

_KINDS = {"BOOL": "b", "UINT": "iu", "INT": "iu", "FP": "iuf", "BYTES": "U"}
_LENGTH = struct.Struct("<I")


def datatype_of(array: Tensor) -> str:
    if array.dtype == object or array.dtype.kind in "SU":
        return "BYTES"
    for name, dtype in DTYPES.items():
        if dtype == array.dtype.newbyteorder("<"):
            return name
    raise TypeError(f"no V2 datatype for numpy dtype {array.dtype}")


def check_datatype(datatype: str, where: str) -> np.dtype[Any]:
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise InvalidInput(
            f"{where}.datatype '{datatype}' is not a V2 datatype; expected one of {', '.join(DTYPES)}",
            param=f"{where}.datatype",
        )
    return dtype


def check_shape(shape: list[int], where: str) -> int:
    if any(d < 0 for d in shape):
        raise InvalidInput(f"{where}.shape {shape} has a negative dimension", param=f"{where}.shape")
    return math.prod(shape)


def from_json(data: Any, datatype: str, shape: list[int], where: str) -> Tensor:
    """Decode flat or nested JSON ``data`` into an array of ``shape``."""
    dtype = check_datatype(datatype, where)
    count = check_shape(shape, where)
    if data is None:
        raise InvalidInput(f"{where} has no 'data' and no binary_data_size parameter", param=f"{where}.data")
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES" and all(type(leaf) is str for leaf in data):
        # Flat strings, every text request: numpy's string array below would only confirm what this did.
        if len(data) != count:
            raise InvalidInput(
                f"{where}.data has {len(data)} elements but shape {shape} needs {count}", param=f"{where}.data"
            )
        return _objects([leaf.encode() for leaf in data], count, shape)
    try:
        parsed = np.array(data)
    except ValueError:
        raise InvalidInput(
            f"{where}.data is ragged: nested lists must all have the same length", param=f"{where}.data"
        ) from None
    family = next(k for k in _KINDS if datatype.startswith(k))
    if family in ("INT", "UINT") and parsed.dtype.kind not in "iu":
        # Integers past int64 (UINT64's upper half) make numpy fall back to floats or objects.
        leaves = list(_leaves(data))
        if all(isinstance(v, int) and not isinstance(v, bool) for v in leaves):
            _check_range([min(leaves), max(leaves)], dtype, datatype, where)
            parsed = np.array(leaves, dtype=dtype)
    if parsed.size and parsed.dtype.kind not in _KINDS[family]:
        expected = "strings" if family == "BYTES" else ("booleans" if family == "BOOL" else "numbers")
        raise InvalidInput(f"{where}.data must hold {expected} for datatype {datatype}", param=f"{where}.data")
    if parsed.size != count:
        raise InvalidInput(
            f"{where}.data has {parsed.size} elements but shape {shape} needs {count}", param=f"{where}.data"
        )
    if family == "BYTES":
        # numpy would quietly turn numbers into strings; the protocol wants strings only.
        leaves = list(_leaves(data))
        if not all(isinstance(leaf, str) for leaf in leaves):
            raise InvalidInput(f"{where}.data must hold strings for datatype BYTES", param=f"{where}.data")
        return _objects([leaf.encode() for leaf in leaves], count, shape)
    if family in ("INT", "UINT") and parsed.size:
        _check_range([int(parsed.min()), int(parsed.max())], dtype, datatype, where)
    with np.errstate(over="ignore"):
        converted = parsed.astype(dtype, copy=False)
    if family == "FP" and (np.isfinite(parsed) & ~np.isfinite(converted)).any():
        # A finite JSON number past FP16/FP32's range would silently become infinity.
        raise InvalidInput(f"{where}.data has values outside {datatype}'s range", param=f"{where}.data")
    return converted.reshape(shape)


def from_binary(raw: bytes, datatype: str, shape: list[int], where: str) -> Tensor:
    """Decode one tensor's bytes from the binary tensor extension."""
    dtype = check_datatype(datatype, where)
    count = check_shape(shape, where)
    if datatype != "BYTES":
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(
                f"{where} has {len(raw)} bytes of binary data but shape {shape} of {datatype} needs "
                f"{count * dtype.itemsize}",
                param=f"{where}.parameters.binary_data_size",
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"{where} binary BYTES data ends inside a length prefix", param=where)
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(f"{where} binary BYTES element {len(items)} overruns the data", param=where)
        items.append(raw[offset : offset + length])
        offset += length
    if len(items) != count:
        raise InvalidInput(f"{where} has {len(items)} BYTES elements but shape {shape} needs {count}", param=where)
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def to_json(array: Tensor, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [_text(item) for item in array.ravel().tolist()]
    values: list[Any] = array.ravel().tolist()
    return values


def to_binary(array: Tensor, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.ravel().tolist():
            blob = item if isinstance(item, bytes) else str(item).encode()
            parts += (_LENGTH.pack(len(blob)), blob)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()


def _objects(items: list[bytes], count: int, shape: list[int]) -> Tensor:
    flat = np.empty(count, dtype=object)
    flat[:] = items
    return flat.reshape(shape)


def _check_range(extremes: list[int], dtype: np.dtype[Any], datatype: str, where: str) -> None:
    info = np.iinfo(dtype)
    if extremes[0] < info.min or extremes[1] > info.max:
        raise InvalidInput(
            f"{where}.data has values outside {datatype}'s range [{info.min}, {info.max}]",
            param=f"{where}.data",
        )


def _leaves(data: list[Any]) -> Any:
    for item in data:
        if isinstance(item, list):
            yield from _leaves(item)
        else:
            yield item


def _text(item: object) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    return str(item)
