"""Fresh-process probes of the benchmark, each run as ``python bench/probes.py <probe> <spec.json>``.

* ``cold-handler``: import a domain's Lambda handler and answer one event, as a new Lambda container does.
* ``cold-handler-split``: the same with the web stack imported first, to time each phase on its own.
* ``cold-floor``: the raw-engine floor: import ONNX Runtime, numpy and the domain's workload module (which
  imports what its input needs: tokenizers, Pillow), load the same model bytes with the same session
  options, make the feeds from the same item and run once.
* ``peak-rss``: import the handler, serve warm-up and batch events, report the peak resident memory.
* ``cold-transcribe``: ``cold-handler`` for a transcription (``bench/transcription.py``): the answer is text.
* ``cold-sphinx-floor``: the transcription floor: import PocketSphinx and numpy, make a decoder from the
  model's files, read the 16-bit PCM the handler would hear and decode it once; also its peak memory.

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

# The floor must not pay for the serving stack: neither these nor a domain package (aimass_<domain>) may be
# imported by a workload module at its top.
SERVING_STACK = ("aimass", "fastapi", "starlette", "pydantic", "mangum", "rich")
HEAD = 4  # values of the first output compared across the probes


class LocalLambdaContext:
    """Just enough of the Lambda context object: Mangum only passes it through in the ASGI scope."""

    function_name = "aimass-bench"
    aws_request_id = "0f6a1c5e-2b7d-4e8f-9a0b-1c2d3e4f5a6b"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def _import_handler(spec: dict[str, Any]) -> tuple[Any, float]:
    """Import the handler module (which loads the model); return it and when the imports were done.

    As deployed, the handler starts the model load on a thread before it imports the web stack, so the
    two overlap and cannot be split. With ``split`` the web stack and the domain package are imported
    first, in the caller: the load then runs alone, which shows each phase's own cost (and a longer total).
    The handler's module is imported before its models have loaded (a request waits for the model it names):
    with ``split`` the load phase ends once the event's model is served, as the first request would find it.
    """
    if spec.get("split"):
        for name in ("mangum", "aimass.http.app"):  # the web stack a handler imports: FastAPI waits for a request
            importlib.import_module(name)
        importlib.import_module("aimass.serving.domains").runtime_class(spec["domain"])
    imported = time.perf_counter()
    sys.path.insert(0, spec["handler_dir"])  # Lambda's task root holds handler.py
    module = importlib.import_module("handler")
    if spec.get("split"):
        module.models.get(spec["model"])
    else:
        imported = time.perf_counter()  # imports and model load overlapped: all counted as imports
    handler = module.handler
    return handler, imported


def _head(values: Any) -> list[float]:
    flat: list[float] = []
    while isinstance(values, list) and values and isinstance(values[0], list):
        values = values[0]
    for value in values[:HEAD]:
        flat.append(float(value))
    return flat


def _first_answer(spec: dict[str, Any]) -> tuple[dict[str, float], Any]:
    """A fresh process's first event through the handler: the phase stamps, and the answer's JSON body."""
    handler, imported = _import_handler(spec)
    loaded = time.perf_counter()
    response = handler(spec["event"], LocalLambdaContext())
    answered = time.perf_counter()
    if response["statusCode"] != 200:
        raise SystemExit(f"handler answered {response['statusCode']}: {response['body'][:500]}")
    stamps = {"started": STARTED, "imported": imported, "loaded": loaded, "answered": answered}
    return stamps, json.loads(response["body"])


def cold_handler(spec: dict[str, Any]) -> None:
    stamps, body = _first_answer(spec)
    numeric = [out for out in body["outputs"] if out["datatype"] != "BYTES"]
    _emit({**stamps, "head": _head(numeric[0]["data"])})


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
    import numpy  # noqa: F401 - counted with the imports, as every floor needs it
    import onnxruntime as ort

    sys.path.insert(0, spec["repo"])
    workload = importlib.import_module(f"bench.workloads.{spec['domain']}").WORKLOAD
    imported = time.perf_counter()
    session = ort.InferenceSession(
        Path(spec["model"]).read_bytes(),
        _session_options(ort, spec["options"]),
        providers=["CPUExecutionProvider"],
    )
    make_feeds = workload.floor_prepare(spec["input"])
    loaded = time.perf_counter()
    outputs = session.run(spec["outputs"], make_feeds())
    answered = time.perf_counter()
    tops = {name.split(".")[0] for name in sys.modules}
    stack = sorted(top for top in tops if top in SERVING_STACK or top.startswith("aimass_"))
    if stack:
        raise SystemExit(f"the floor imported the serving stack ({stack}): keep bench/workloads/ imports light")
    head = _head(next(out for out in outputs if out.dtype.kind in "biuf").tolist())  # the first numeric output
    _emit({"started": STARTED, "imported": imported, "loaded": loaded, "answered": answered, "head": head})


def _rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss(spec: dict[str, Any]) -> None:
    handler, _ = _import_handler(spec)
    sys.modules["handler"].models.wait_loaded()  # every model of the function, as it runs once loaded
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


# --- Transcription (PocketSphinx): the answer is text, and the floor is a decoder, not a session ------------

# Entries of a hypothesis that are no words, as aimass_speech.sphinx drops them (the floor must not import it;
# bench/transcription.py checks that both give the same transcript).
SPHINX_NOT_WORDS = ("<s>", "</s>", "<sil>")


def sphinx_decode(decoder: Any, pcm: bytes) -> list[str]:
    """The words of one whole utterance of 16 kHz 16-bit PCM: fillers dropped, ``read(2)`` spelled ``read``."""
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return []
    return [
        s.word.split("(", 1)[0] for s in decoder.seg() if s.word not in SPHINX_NOT_WORDS and not s.word.startswith("[")
    ]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cold_transcribe(spec: dict[str, Any]) -> None:
    stamps, body = _first_answer(spec)
    _emit({**stamps, "head": [], "text": body["text"]})


def cold_sphinx_floor(spec: dict[str, Any]) -> None:
    import numpy
    import pocketsphinx  # type: ignore[import-untyped]

    imported = time.perf_counter()
    decoder = pocketsphinx.Decoder(pocketsphinx.Config(**spec["config"]))
    after_load = _peak_rss_mb()
    pcm = numpy.fromfile(spec["pcm"], dtype="<i2").tobytes()
    loaded = time.perf_counter()
    words = sphinx_decode(decoder, pcm)
    answered = time.perf_counter()
    stamps = {"started": STARTED, "imported": imported, "loaded": loaded, "answered": answered}
    # ru_maxrss counts the parent's peak in a direct child: read it in a process started by a small one.
    peaks = {"peak_rss_after_load_mb": after_load, "peak_rss_mb": _peak_rss_mb()}
    _emit({**stamps, "head": [], "text": " ".join(words), **peaks})


PROBES = {
    "cold-handler": cold_handler,
    "cold-handler-split": cold_handler,
    "cold-floor": cold_floor,
    "peak-rss": peak_rss,
    "cold-transcribe": cold_transcribe,
    "cold-sphinx-floor": cold_sphinx_floor,
}


def main() -> None:
    probe, spec_path = sys.argv[1], sys.argv[2]
    PROBES[probe](json.loads(Path(spec_path).read_text()))


if __name__ == "__main__":
    main()
