"""A plain ONNX Runtime + numpy greedy loop over the decoder, for the build's measurements only.

The build holds the graph to its reference and times it with this loop; serving has its own. It also runs as
a script in a fresh process, so the memory it reports is the graph's and the loop's, not the build's torch:

    python models/llm/smollm2/greedy.py <model.onnx> <prompt ids as JSON> <new tokens> <threads>
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime as ort

LAYERS, KV_HEADS, HEAD_DIM = 30, 3, 64  # repeated from recipe.py: this file also runs without the repository


def open_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def greedy(
    session: ort.InferenceSession, prompt: Sequence[int], new_tokens: int, stop: Sequence[int] = ()
) -> tuple[list[int], float]:
    """The greedy continuation of ``prompt`` (a stop token ends it and is kept), and the decode seconds.

    Decode time starts after the first token, so prefill is not counted in the decode rate.
    """
    import numpy as np

    ids = np.asarray([prompt], dtype=np.int64)
    past: dict[str, Any] = {
        f"past_key_values.{layer}.{kind}": np.zeros((1, KV_HEADS, 0, HEAD_DIM), dtype=np.float32)
        for layer in range(LAYERS)
        for kind in ("key", "value")
    }
    outputs = [o.name for o in session.get_outputs()]
    chosen: list[int] = []
    length = len(prompt)
    decode_started = 0.0
    for step in range(new_tokens):
        mask = np.ones((1, length), dtype=np.int64)
        results = session.run(outputs, {"input_ids": ids, "attention_mask": mask, **past})
        token = int(np.argmax(results[0][0, -1]))
        chosen.append(token)
        if step == 0:
            decode_started = time.perf_counter()
        if token in stop:
            break
        past = {
            name.replace("present", "past_key_values"): value
            for name, value in zip(outputs[1:], results[1:], strict=True)
        }
        ids = np.asarray([[token]], dtype=np.int64)
        length += 1
    return chosen, time.perf_counter() - decode_started


def bench(path: Path, prompt: Sequence[int], new_tokens: int, threads: int) -> dict[str, float]:
    """Decode tokens per second and peak RSS of one stream, in this process."""
    session = open_session(path, threads)
    greedy(session, prompt, 4)  # warm-up: first runs allocate and pick kernels
    tokens, seconds = greedy(session, prompt, new_tokens)
    # VmHWM, not getrusage: a child started by fork and exec inherits its parent's ru_maxrss (the build's torch).
    status = Path("/proc/self/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return {"decode_tokens_per_s": (len(tokens) - 1) / seconds, "peak_rss_mb": peak_kib * 1024 / 1e6}


if __name__ == "__main__":
    model, prompt_json, count, thread_count = sys.argv[1:5]
    print(json.dumps(bench(Path(model), json.loads(prompt_json), int(count), int(thread_count))))
