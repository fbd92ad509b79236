"""V2 tensor codecs: every datatype, JSON and binary, both directions."""

from __future__ import annotations

import numpy as np
import pytest

from aimass.errors import InvalidInput
from aimass.protocol import v2_codec as codec

NUMERIC: dict[str, list[object]] = {
    "BOOL": [True, False, True, True],
    "UINT8": [0, 1, 254, 255],
    "UINT16": [0, 1, 65534, 65535],
    "UINT32": [0, 1, 2**32 - 2, 2**32 - 1],
    "UINT64": [0, 1, 2**40, 2**63],
    "INT8": [-128, -1, 0, 127],
    "INT16": [-32768, -1, 0, 32767],
    "INT32": [-(2**31), -1, 0, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 2**63 - 1],
    "FP16": [-1.5, 0.0, 0.25, 65504.0],
    "FP32": [-1.5, 0.0, 0.25, 2.0**100],
    "FP64": [-1.5, 0.0, 0.25, 1.0e300],
}


@pytest.mark.parametrize(("datatype", "values"), NUMERIC.items())
def test_json_and_binary_round_trip(datatype: str, values: list[object]) -> None:
    array = codec.from_json(values, datatype, [2, 2], "inputs[0]")
    assert array.shape == (2, 2) and array.dtype == codec.DTYPES[datatype]
    assert codec.datatype_of(array) == datatype
    assert codec.to_json(array, datatype) == values
    again = codec.from_binary(codec.to_binary(array, datatype), datatype, [2, 2], "inputs[0]")
    np.testing.assert_array_equal(again, array)


def test_binary_layout_is_little_endian_row_major() -> None:
    array = np.array([[1, 2], [3, 4]], dtype=np.int32)
    assert codec.to_binary(array, "INT32") == b"\x01\0\0\0\x02\0\0\0\x03\0\0\0\x04\0\0\0"


def test_bytes_round_trip_with_length_prefixes() -> None:
    array = codec.from_json(["héllo", "", "wörld"], "BYTES", [3], "inputs[0]")
    assert array.tolist() == ["héllo".encode(), b"", "wörld".encode()]
    raw = codec.to_binary(array, "BYTES")
    assert raw[:4] == len("héllo".encode()).to_bytes(4, "little")
    assert codec.from_binary(raw, "BYTES", [3], "x").tolist() == array.tolist()
    assert codec.to_json(array, "BYTES") == ["héllo", "", "wörld"]


@pytest.mark.parametrize(
    ("data", "datatype", "shape", "message"),
    [
        ([1.5, 2.0], "INT32", [2], "must hold numbers"),
        ([300], "UINT8", [1], "outside UINT8's range"),
        ([1e39], "FP32", [1], "outside FP32's range"),
        ([70000.0], "FP16", [1], "outside FP16's range"),
        ([-1], "UINT32", [1], "outside UINT32's range"),
        (["a"], "FP32", [1], "must hold numbers"),
        ([1, 0], "BOOL", [2], "must hold booleans"),
        ([True], "FP32", [1], "must hold numbers"),
        ([1, 2, 3], "FP32", [2, 2], "has 3 elements but shape [2, 2] needs 4"),
        ([[1, 2], [3]], "FP32", [3], "ragged"),
        ([1], "FLOAT32", [1], "is not a V2 datatype"),
        ([1], "FP32", [-1], "negative dimension"),
    ],
)
def test_bad_json_tensors_name_the_problem(data: list[object], datatype: str, shape: list[int], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        codec.from_json(data, datatype, shape, "inputs[0]")


@pytest.mark.parametrize(
    ("raw", "datatype", "shape", "message"),
    [
        (b"\0" * 7, "FP32", [2], "has 7 bytes of binary data but shape"),
        (b"\x05\0\0\0abc", "BYTES", [1], "overruns the data"),
        (b"\x01\0", "BYTES", [1], "inside a length prefix"),
        (b"\x01\0\0\0a", "BYTES", [2], "has 1 BYTES elements but shape"),
    ],
)
def test_bad_binary_tensors(raw: bytes, datatype: str, shape: list[int], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        codec.from_binary(raw, datatype, shape, "inputs[0]")
