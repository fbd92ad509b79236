"""Fresh-process probes of the text benchmark, each run as ``python bench/text_probes.py <probe> <spec.json>``.

* ``cold-handler``: import the Lambda handler and answer one event, as a new Lambda container does.
* ``cold-handler-split``: the same with the web stack imported first, to time each phase on its own.
* ``cold-floor``: the raw-engine floor: import ONNX Runtime and tokenizers, load the same model bytes with
  the same session options, tokenise and run the same sentence once.
* ``peak-rss``: import the handler, serve warm-up and batch-32 events, report the peak resident memory.

Each prints one JSON line with ``time.perf_counter()`` stamps; on Linux that clock is system-wide
(CLOCK_MONOTONIC), so the parent subtracts its own stamp taken before ``Popen`` to get the interpreter's
start-up. Only the standard library is imported at the top: every other import is part of what is measured.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # the interpreter is up and running this file

import importlib  # noqa: E402 - after the start stamp on purpose
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

# What the handler imports before it loads a model: the web stack, the shared core, the text domain.
HANDLER_IMPORTS = ("fastapi", "mangum", "aimass.http.app", "aimass_text")


class LocalLambdaContext:
    """Just enough of the Lambda context object: Mangum only passes it through in the ASGI scope."""

    function_name = "aimass-text"
    aws_request_id = "0f6a1c5e-2b7d-4e8f-9a0b-1c2d3e4f5a6b"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def _import_handler(spec: dict[str, Any]) -> tuple[Any, float]:
    """Import the handler module (which loads the model); return it and when the imports were done.

    As deployed, the handler starts the model load on a thread before it imports the web stack, so the
    two overlap and cannot be split. With ``split`` the web stack is imported first, in the caller: the
    load then runs alone, which shows each phase's own cost (and a longer total).
    """
    if spec.get("split"):
        for name in HANDLER_IMPORTS:
            importlib.import_module(name)
    imported = time.perf_counter()
    sys.path.insert(0, spec["handler_dir"])  # Lambda's task root holds handler.py
    handler = importlib.import_module("handler").handler
    if not spec.get("split"):
        imported = time.perf_counter()  # imports and model load overlapped: all counted as imports
    return handler, imported


def _head(body: str, route: str) -> list[float]:
    document = json.loads(body)
    row = document["outputs"][0]["data"] if route == "v2" else document["data"][0]["embedding"]
    return [float(value) for value in row[:4]]


def cold_handler(spec: dict[str, Any]) -> None:
    handler, imported = _import_handler(spec)
    loaded = time.perf_counter()
    response = handler(spec["event"], LocalLambdaContext())
    answered = time.perf_counter()
    if response["statusCode"] != 200:
        raise SystemExit(f"handler answered {response['statusCode']}: {response['body'][:500]}")
    _emit(
        {
            "started": STARTED,
            "imported": imported,
            "loaded": loaded,
            "answered": answered,
            "head": _head(response["body"], spec["route"]),
        }
    )


def _session_options(ort: Any, spec: dict[str, Any]) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = spec["intra_op_num_threads"]
    options.inter_op_num_threads = spec["inter_op_num_threads"]
    options.execution_mode = getattr(ort.ExecutionMode, spec["execution_mode"])
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, spec["graph_optimization_level"])
    for key, value in spec["config"].items():
        options.add_session_config_entry(key, value)
    return options


def cold_floor(spec: dict[str, Any]) -> None:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    imported = time.perf_counter()
    session = ort.InferenceSession(
        Path(spec["model"]).read_bytes(),
        _session_options(ort, spec["options"]),
        providers=["CPUExecutionProvider"],
    )
    tokenizer = Tokenizer.from_file(spec["tokenizer"])
    tokenizer.enable_truncation(max_length=spec["max_length"])
    tokenizer.enable_padding(pad_id=spec["pad_id"], pad_token=spec["pad_token"])
    loaded = time.perf_counter()
    (encoding,) = tokenizer.encode_batch([spec["text"]])
    ids = np.array([encoding.ids], dtype=np.int64)
    tensors = {
        "input_ids": ids,
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.zeros_like(ids),
    }
    (embeddings,) = session.run([spec["output"]], {name: tensors[name] for name in spec["feeds"]})
    answered = time.perf_counter()
    _emit(
        {
            "started": STARTED,
            "imported": imported,
            "loaded": loaded,
            "answered": answered,
            "head": [float(value) for value in embeddings[0][:4]],
        }
    )


def _rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss(spec: dict[str, Any]) -> None:
    handler, _ = _import_handler(spec)
    # ru_maxrss is in KiB on Linux.
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    context = LocalLambdaContext()
    for _ in range(spec["warmup"]):
        handler(spec["event"], context)
    for _ in range(spec["batches"]):
        response = handler(spec["batch_event"], context)
        if response["statusCode"] != 200:
            raise SystemExit(f"handler answered {response['statusCode']}: {response['body'][:500]}")
    _emit(
        {
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_rss_after_load_mb": after_load,
            "rss_after_requests_mb": _rss_mb(),
        }
    )


PROBES = {
    "cold-handler": cold_handler,
    "cold-handler-split": cold_handler,
    "cold-floor": cold_floor,
    "peak-rss": peak_rss,
}


def main() -> None:
    probe, spec_path = sys.argv[1], sys.argv[2]
    PROBES[probe](json.loads(Path(spec_path).read_text()))


if __name__ == "__main__":
    main()
