"""Quantized versions: a model version's engine graph made smaller, measured against the version it came from.

``quantize_version`` writes a new version folder (for ``store.publish``) whose engine is compressed in one of
three modes, and returns the report its manifest carries as ``compression``:

- ``int8-dynamic``: int8 weights (per output channel) of MatMul (Gemm too, rewritten as MatMul), Gather and
  the other ops ONNX Runtime's ``quantize_dynamic`` has fast kernels for; activations quantized on the fly.
  The mode for transformers. Convolutions stay float; a graph with no weights it quantizes is refused.
- ``int8-static``: int8 weights and activations (QDQ, per-channel int8 weights, uint8 activations), activation
  ranges calibrated on the very feeds the base version's runtime sends ONNX Runtime for the evaluation inputs.
- ``fp16``: float16 weights and arithmetic, with FP32 graph inputs and outputs: the served contract holds.

When an int8 graph misses a quality target, the earliest weighted nodes are kept in float one at a time
(at most ``MAX_FLOAT_NODES``, holding at most ``FLOAT_BUDGET`` of the weights) until the targets hold: early
layers see the raw input and pass their error to every later one. The report names the nodes kept.

Evaluation inputs are the version's samples plus any evaluation files given (``evaluation_inputs``). Both
versions answer them through their domain runtimes: quality compares the new outputs to the base ones,
latency is the median one-item ``predict`` call, base and new interleaved. Targets are stated and checked in
the report; a miss is reported with its numbers.

Operator tooling: the CLI and the bench import it; serving code never does (``onnx`` is a build dependency).

The parts: ``evaluation`` (inputs and recorded feeds), ``graph`` (the compression), ``measure`` (agreement,
latency, targets) and ``version`` (a whole quantized version).
"""

from aimass_tools.quantize.evaluation import (
    Evaluation,
    answer_recording,
    build_evaluation,
    evaluation_inputs,
    samples_file,
)
from aimass_tools.quantize.graph import MODES, Mode
from aimass_tools.quantize.measure import TARGETS, Targets, agreement
from aimass_tools.quantize.version import load_runtime, quantize_version

__all__ = [
    "MODES",
    "TARGETS",
    "Evaluation",
    "Mode",
    "Targets",
    "agreement",
    "answer_recording",
    "build_evaluation",
    "evaluation_inputs",
    "load_runtime",
    "quantize_version",
    "samples_file",
]
