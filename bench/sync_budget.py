"""Seconds per unit of work of each domain's real model, as the synchronous routes estimate a request's time.

    python bench/sync_budget.py [--store model_store] [--out bench/records/sync_budget.json] [--threads 1 2]
                                [--repeats 7]

``aimass.serving.cost`` estimates a request as its units of work times the model's seconds per unit, starting
from ``PRIORS`` (the numbers of ``functions/<domain>/function.toml``) and following what the model measures.
This measures the same figures on this machine, through the same services the routes call (so decoding,
tokenising and encoding are in them, as they are in a request), at each ONNX Runtime thread count given:

* text, ``text pieces``: ``/v1/embeddings`` on 32 sentences of 16 tokens (one 64-character piece each);
* text, ``rows``: V2 infer on 32 texts of about 256 tokens (the most the model keeps);
* vision, ``images`` and ``rows``: the classify task and V2 infer on 32 JPEG photos of 640x480;
* speech, ``rows``: V2 infer on 32 one-second clips; ``files``: the transcribe task on a 30-second WAV;
* rl, ``observations`` and ``rows``: the act task and V2 infer on 256 observations.

Each figure is the median over ``--repeats`` requests, after one warm-up, divided by the request's units. The
entry is merged into ``--out`` under ``seconds_per_unit`` by thread count, beside the priors and the machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script, the repository root is not on sys.path
    sys.path.insert(0, str(_REPO))

from bench.common import cpu_busy, machine_info, merge_results, wav_of  # noqa: E402

SENTENCE = "A man is playing a guitar on the corner of a busy street."  # 16 tokens, 57 characters
LONG = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 16)  # ~256 tokens
BATCH = 32


def _photo(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    # A smooth gradient with noise: decodes like a photo, not like a flat colour.
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([x * 255 / 640, y * 255 / 480, (x + y) * 255 / 1120], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _wav(seconds: float, rate: int = 16000) -> bytes:
    rng = np.random.default_rng(3)
    samples = (np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate) * 0.3 * rng.random()) * 32767
    return wav_of(samples, rate)


def _median_s(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: the engine's arena grows to the request's size once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _v2(name: str, datatype: str, shape: list[int], data: object) -> bytes:
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}).encode()


def measure(store: Path, threads: int, repeats: int) -> dict[str, float]:
    from aimass.protocol.openai import OpenAIService, text_work
    from aimass.protocol.tasks import TaskService
    from aimass.protocol.v2_dataplane import DataPlane
    from aimass.serving.boot import load_models
    from aimass.settings import Settings

    # No limits and no budget: the bench times requests, it does not schedule them.
    settings = Settings(model_store=store, intra_op_threads=threads, metering="off", sync_budget_s=float("inf"))
    settings = settings.model_copy(update={"max_batch_items": settings.batch_max_items})
    registry = load_models(settings)
    plane, openai, tasks = (
        DataPlane(registry, settings),
        OpenAIService(registry, settings),
        TaskService(registry, settings),
    )
    # The priors (aimass.serving.cost.PRIORS) are each domain's ONNX model's: the speech transcription model
    # (PocketSphinx) learns its own rate from its first requests.
    served = {r.manifest.domain: r.manifest for r in registry.runtimes() if r.manifest.engine.format == "onnx"}
    found: dict[str, float] = {}

    def put(key: str, seconds: float, units: float) -> None:
        found[key] = seconds / units
        print(f"  {threads} thread(s)  {key:<22} {found[key] * 1e3:10.4f} ms per unit", flush=True)

    if "text" in served:
        name = served["text"].name
        texts = [SENTENCE] * BATCH
        pieces = text_work(texts, served["text"].preprocessing.get("max_length"), BATCH).units
        body = json.dumps({"model": name, "input": texts}).encode()
        put("text/text pieces", _median_s(lambda: openai.embeddings(body), repeats), pieces)
        rows = _v2(served["text"].inputs[0].name, "BYTES", [BATCH], [LONG] * BATCH)
        put("text/rows", _median_s(lambda: plane.infer(name, None, rows, None), repeats), BATCH)
    if "vision" in served:
        name = served["vision"].name
        photos = [base64.b64encode(_photo(n)).decode() for n in range(BATCH)]
        body = json.dumps({"model": name, "images": photos}).encode()
        put("vision/images", _median_s(lambda: tasks.run_json("vision", "classify", body), repeats), BATCH)
        encoded = next(t.name for t in served["vision"].inputs if t.datatype == "BYTES")
        rows = _v2(encoded, "BYTES", [BATCH], photos)
        put("vision/rows", _median_s(lambda: plane.infer(name, None, rows, None), repeats), BATCH)
    if "speech" in served:
        name = served["speech"].name
        clips = np.random.default_rng(1).standard_normal((BATCH, 16000)).astype(np.float32) * 0.1
        rows = _v2(served["speech"].inputs[0].name, "FP32", [BATCH, 16000], clips.round(4).tolist())
        put("speech/rows", _median_s(lambda: plane.infer(name, None, rows, None), repeats), BATCH)
        audio = base64.b64encode(_wav(30.0)).decode()
        body = json.dumps({"model": name, "file": audio}).encode()
        put("speech/files", _median_s(lambda: tasks.run_json("speech", "transcribe", body), repeats), 1)
    if "rl" in served:
        name, many = served["rl"].name, 256
        observations = np.random.default_rng(2).uniform(-0.2, 0.2, (many, 4)).round(4).tolist()
        body = json.dumps({"model": name, "observations": observations}).encode()
        put("rl/observations", _median_s(lambda: tasks.run_json("rl", "act", body), repeats), many)
        rows = _v2(served["rl"].inputs[0].name, "FP32", [many, 4], observations)
        put("rl/rows", _median_s(lambda: plane.infer(name, None, rows, None), repeats), many)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=Path("bench/records/sync_budget.json"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from aimass.serving.cost import PRIORS

    busy = cpu_busy()
    measured = {str(threads): measure(args.store, threads, args.repeats) for threads in args.threads}
    entry: dict[str, Any] = {
        "seconds_per_unit": measured,
        "priors": {f"{domain}/{unit}": seconds for (domain, unit), seconds in PRIORS.items()},
        "machine": {**machine_info(["onnxruntime", "numpy", "tokenizers", "pillow"]), "cpu_busy_before": busy},
    }
    merge_results(args.out, "sync_budget", entry)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
