"""Will a model fit the function that serves it? Its memory, estimated from the graph's size, against the function's.

A serving process holds, at the peak of a swap: the serving stack itself, the version being replaced (it keeps
answering until the swap), and the new version's session being built, from the graph's bytes in memory (sessions
are built from bytes, never from a path: encrypted versions are decrypted in memory). Measured on graphs of 20,
100 and 400 MiB (bench/tensor.py; bench/README.md, "Imported models"): building a session peaks at 3.5, 3.0 and
3.0 times the graph's size over the stack's resident memory (the bytes, ONNX Runtime's copy, and what
optimisation allocates beside them), and a loaded version keeps 3.5, 2.3 and 2.05 times it resident (the small
graph's extra is arena and code, a few tens of MB, which the base covers). A model over the function's memory
would be killed mid-swap, so it is refused with the memory it needs.
"""

from __future__ import annotations

import math
import os

from aimass.errors import ModelTooLarge

# The serving stack with ONNX Runtime loaded and no model: 78 MB resident, measured; Lambda's runtime client and
# request buffers beside it.
BASE_MB = 160
# Resident bytes per byte of graph while its session is built (measured: 3.0 from 100 MiB up), and per byte of a
# loaded version (measured: 2.05-2.3 from 100 MiB up), which a swap holds at once.
BUILD_FACTOR = 3.0
RESIDENT_FACTOR = 2.5
# Lambda's largest function.
LAMBDA_MAX_MB = 10_240


def needed_mb(model_bytes: int) -> int:
    """The memory a function needs to load a graph of ``model_bytes`` beside the version it replaces."""
    model_mb = model_bytes / (1 << 20)
    return math.ceil(BASE_MB + (BUILD_FACTOR + RESIDENT_FACTOR) * model_mb)


def function_memory_mb(configured: int | None) -> int | None:
    """The serving function's memory: the configured value, else the running Lambda's own, else unknown."""
    if configured is not None:
        return configured
    lambda_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    return int(lambda_mb) if lambda_mb.isdigit() else None


def check_memory(model_bytes: int, limit_mb: int | None, *, what: str = "the model") -> int:
    """The memory the model needs; ModelTooLarge (413) when that is over ``limit_mb`` (None: no limit known)."""
    needed = needed_mb(model_bytes)
    if limit_mb is not None and needed > limit_mb:
        size = f"{model_bytes / (1 << 20):,.0f} MiB"
        advice = (
            f"raise the function's memory to at least {needed:,} MB (memory_mb in functions/tensor/function.toml)"
            if needed <= LAMBDA_MAX_MB
            else f"that is over Lambda's {LAMBDA_MAX_MB:,} MB"
        )
        raise ModelTooLarge(
            f"{what} is {size}; serving it needs about {needed:,} MB of memory, more than the {limit_mb:,} MB of the "
            f"function that serves imported models: {advice}, or make the model smaller (aimass models quantize "
            "NAME --mode int8-dynamic once imported elsewhere, or fewer or smaller layers)",
            param="file",
        )
    return needed
