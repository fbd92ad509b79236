"""The engine graph, compressed in one mode (ONNX Runtime's quantizers, float16), some weighted nodes kept in float."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from aimass.errors import InvalidInput
from aimass_tools.quantize.evaluation import Inputs

Mode = Literal["int8-dynamic", "int8-static", "fp16"]
MODES: tuple[str, ...] = get_args(Mode)

# quantize_dynamic can also do Conv (ConvInteger), which is slow on CPU and inaccurate: use int8-static there.
DYNAMIC_OPS = ("MatMul", "Gather", "Attention", "LSTM", "EmbedLayerNormalization")
# int8-static: weighted ops, the activations and pools that fuse with them, and data movement. Not Where, Add,
# Softmax or LayerNormalization: their inputs can span ranges int8 cannot hold (attention masks at the float
# minimum beside scores near zero), which wrecks a transformer.
STATIC_OPS = (
    "Conv", "Gemm", "MatMul", "Gather", "Clip", "Relu", "Pad", "GlobalAveragePool", "AveragePool", "MaxPool",
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Resize", "Concat", "Split", "Slice",
)  # fmt: skip
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul", "Gather")
MAX_FLOAT_NODES = 4
FLOAT_BUDGET = 0.01  # share of the weight bytes the nodes kept in float may hold


class _Feeds:
    """A CalibrationDataReader over recorded feeds (duck-typed: the calibrator only calls ``get_next``)."""

    def __init__(self, feeds: Sequence[Inputs]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> Inputs | None:
        return next(self._feeds, None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The quantizers log advice on the root logger ("consider pre-processing"); it is not the operator's."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


class Compressor:
    """Writes the engine graph in one mode, optionally with some weighted nodes kept in float."""

    def __init__(self, engine: bytes, mode: Mode, feeds: Sequence[Inputs], scratch: Path) -> None:
        import onnx
        from onnxruntime import quantization

        self.mode, self._feeds, self._scratch = mode, feeds, scratch
        self._source = scratch / "base.onnx"
        self._source.write_bytes(engine)
        self.prepared = False
        if mode == "int8-static":
            try:  # shape inference and fusions put the quantize/dequantize pairs where they belong
                # In the scratch folder: a failed symbolic shape inference leaves the model in the working one.
                with _quiet(), contextlib.chdir(scratch):
                    quantization.quant_pre_process(self._source, scratch / "prepared.onnx")
                self._source, self.prepared = scratch / "prepared.onnx", True
            except Exception:  # a graph the symbolic shape inference cannot follow is quantized as it is
                pass
        model = onnx.load(self._source)
        weights = {t.name: t for t in model.graph.initializer}
        sizes = {
            node.name: sum(_nbytes(weights[name]) for name in node.input if name in weights)
            for node in model.graph.node
            if node.op_type in WEIGHTED_OPS and any(name in weights for name in node.input)
        }
        self.weighted = list(sizes)  # in graph order: ONNX keeps nodes topologically sorted
        self._sizes, self._total = sizes, sum(_nbytes(t) for t in weights.values())

    def float_candidates(self) -> list[list[str]]:
        """Growing sets of the earliest weighted nodes, within MAX_FLOAT_NODES and FLOAT_BUDGET."""
        if self.mode == "fp16":
            return []
        kept: list[str] = []
        sets = []
        for node in self.weighted:
            if len(kept) == MAX_FLOAT_NODES:
                break
            if sum(self._sizes[n] for n in [*kept, node]) <= FLOAT_BUDGET * self._total:
                kept.append(node)
                sets.append(list(kept))
        return sets

    def write(self, keep_float: Sequence[str] = ()) -> tuple[bytes, str]:
        """The compressed graph and a line saying how it was made."""
        import onnx

        target = self._scratch / "new.onnx"
        with _quiet():
            method = self._write(target, list(keep_float))
        compressed = target.read_bytes()
        if self.mode != "fp16" and not _has_int8_weights(onnx.load_from_string(compressed)):
            raise InvalidInput(f"{self.mode} found no weights to quantize ({method}); try another mode", param="mode")
        return compressed, method

    def _write(self, target: Path, keep_float: list[str]) -> str:
        import onnx
        from onnxruntime import quantization as q

        if self.mode == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            onnx.save(convert_float_to_float16(onnx.load(self._source), keep_io_types=True), target)
            return "onnxruntime float16 converter; FP32 graph inputs and outputs kept (keep_io_types)"
        if self.mode == "int8-dynamic":
            ops = list(DYNAMIC_OPS)
            q.quantize_dynamic(
                self._source, target, op_types_to_quantize=ops, per_channel=True, nodes_to_exclude=keep_float
            )
            return f"onnxruntime quantize_dynamic: per-channel int8 weights of {', '.join(ops)}, uint8 activations"
        q.quantize_static(
            self._source,
            target,
            _Feeds(self._feeds),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            op_types_to_quantize=list(STATIC_OPS),
            nodes_to_exclude=keep_float,
        )
        prepared = "pre-processed (shape inference, fusions)" if self.prepared else "not pre-processed"
        return (
            f"onnxruntime quantize_static: QDQ, per-channel int8 weights, uint8 activations with MinMax ranges "
            f"over {len(self._feeds)} recorded engine feeds; graph {prepared}"
        )


def _nbytes(tensor: Any) -> int:
    from onnx import helper

    itemsize: int = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return int(math.prod(tensor.dims)) * itemsize


def _has_int8_weights(model: Any) -> bool:
    from onnx import TensorProto

    return any(t.data_type in (TensorProto.INT8, TensorProto.UINT8) and t.dims for t in model.graph.initializer)
