"""Generation speed of the llm domain: the bare decode loop, the streaming HTTP API and the Lambda streaming loop.

    python bench/llm.py [--store model_store] [--out bench/records/llm.json] [--explore]

On this machine, in one run, for the served model (greedy, ``temperature`` 0):

* ``decode``: single-stream decode tokens/s of 128 new tokens on a fixed chat prompt, best of 3 after a warm-up,
  four ways, interleaved so that each sees the same machine: ``runtime``, the llm runtime's own ``generate`` in
  this process (the code the server runs, on a session with the server's options); ``greedy_py``, the build's
  bare numpy + ONNX Runtime loop (``models/llm/smollm2/greedy.py``) on its own session (ONNX Runtime's default
  options, as the build measured it); ``greedy_py_served``, the same loop on the runtime's session (the serving
  options: the same threads, spinning as the llm image sets it), which tells the loop's cost from the session
  options;
  ``http``, ``POST /v1/chat/completions`` with ``stream: true`` against a real ``aimass serve`` process over
  loopback, read with httpx as it streams. A decode rate is (tokens - 1) / the time from the first token to the
  last: prefill is left out, as ``greedy.py`` leaves it out. ``http_ratio`` is ``http`` / ``runtime`` (goal: at
  least 0.95), ``http_ratio_to_greedy_py`` the same against the build's loop.
* ``ttft``: time to first token of a ~50-token prompt (the chat template's tokens included), from the request
  sent to the first chunk that carries text: through the HTTP API (warm, median of 5); through AI Mass's Lambda
  streaming loop (``aimass.http.lambda_streaming``) against the stand-in Runtime API (``tests/lambda_runtime_api``)
  warm (the loop in this process on ``functions/llm/handler.py``'s own app, median of 5, from the event queued)
  and cold (median of 3 fresh processes running the function's own entry point, ``python -m
  aimass.http.lambda_streaming handler.app``, from Popen: interpreter, imports, model load, app, the first event).
* ``concurrent``: 8 streams at once through the HTTP API, tokens of all streams / the time from the requests
  sent to the last token, against one stream measured the same way (``ratio``; goal 3x). The server batches
  continuously: the streams share one decode step per token (``aimass_llm.batching``). ``scaling`` is the
  same measure at 2, 4, 8 and 16 streams.
* ``server``: peak resident memory (VmHWM) of the server process after everything above, and its VmRSS then.

The two goals are its targets: it exits 1 when one is missed (``--explore``: reports it, exits 0).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
from rich.table import Table

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.http.lambda_streaming import StreamingRuntime  # noqa: E402
from aimass.serving.boot import load_models  # noqa: E402
from aimass.serving.generation import ChatMessage, GenerationParams, TextGenerator  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from bench.common import cpu_busy, free_port, load_average, machine_info, make_console, merge_results  # noqa: E402
from bench.engine import import_handler, silence_logs  # noqa: E402
from bench.targets import Target, add_explore_flag, at_least, exit_status, passed  # noqa: E402
from tests.lambda_runtime_api import Answer, runtime_api  # noqa: E402

NEW_TOKENS = 128
RUNS, WARMUP = 3, 1
TTFT_RUNS, COLD_RUNS, STREAMS = 5, 3, 8
SCALING = (2, 4, 8, 16)
HTTP_RATIO_TARGET = 0.95  # streaming over HTTP keeps this share of the runtime's own decode rate
CONCURRENT_RATIO_TARGET = 3.0  # STREAMS streams at once write this many times one stream's tokens a second
# Greedy, this prompt runs the whole 128 tokens without an end of turn (checked at every run).
DECODE_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
# With the default system turn and the ChatML markers, 51 tokens.
TTFT_PROMPT = (
    "I am planning a week of cycling along the coast in early autumn. Which clothes, spare parts and food "
    "should I pack, how far should I ride each day, and where should I sleep if it rains all night?"
)
TTFT_TOKENS = 8  # enough for the answer to be a stream; only its first text counts
EVENT = _REPO / "tests" / "events" / "apigw_rest_v1_text_infer.json"
GREEDY_PY = _REPO / "models" / "llm" / "smollm2" / "greedy.py"
# greedy.py's greedy(session, prompt, new_tokens, stop): the tokens, and the seconds from the first to the last.
GreedyLoop = Callable[[Any, Sequence[int], int, Sequence[int]], tuple[list[int], float]]


@dataclass(frozen=True)
class Stream:
    """One generation as a client saw it: when it was asked, its first and last text, and its tokens."""

    sent: float
    first: float
    last: float
    tokens: int
    chunks: int
    finish: str | None

    @property
    def decode_tokens_per_s(self) -> float:
        return (self.tokens - 1) / (self.last - self.first)

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.sent) * 1e3


def chat_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        # The usage chunk counts tokens; a chunk is not always a token (a token that ends mid-character
        # writes no text until the next one completes it).
        "stream_options": {"include_usage": True},
    }


class _Reader:
    """Reads a chat completion's SSE events as they arrive and notes the first and last text."""

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.first = self.last = 0.0
        self.chunks, self.tokens = 0, 0
        self.finish: str | None = None

    def event(self, data: str, at: float) -> None:
        if not data.startswith("data: {"):
            return
        document = json.loads(data.removeprefix("data: "))
        if document.get("usage"):
            self.tokens = int(document["usage"]["completion_tokens"])
        for choice in document["choices"]:
            if choice["delta"].get("content") or choice.get("finish_reason"):
                self.chunks += 1
                self.first = self.first or at
                self.last = at
                self.finish = choice.get("finish_reason") or self.finish

    def result(self) -> Stream:
        assert self.first and self.tokens, "the stream carried no text or no usage"
        return Stream(self.sent, self.first, self.last, self.tokens, self.chunks, self.finish)


def stream_http(client: httpx.Client, body: dict[str, Any]) -> Stream:
    reader = _Reader(time.perf_counter())
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"/v1/chat/completions answered {response.status_code}: {response.read()[:500]!r}")
        for line in response.iter_lines():
            reader.event(line, time.perf_counter())
    return reader.result()


async def stream_async(client: httpx.AsyncClient, body: dict[str, Any], started: float) -> Stream:
    reader = _Reader(started)
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            reader.event(line, time.perf_counter())
    return reader.result()


# --- in process --------------------------------------------------------------------------------------


def stream_runtime(generator: TextGenerator, prompt: list[int]) -> Stream:
    sent = time.perf_counter()
    generation = generator.generate(prompt, GenerationParams(max_tokens=NEW_TOKENS, temperature=0.0))
    first = last = 0.0
    chunks, finish = 0, None
    for event in generation:
        now = time.perf_counter()
        first, last = first or now, now
        chunks += 1
        finish = event.finish_reason or finish
    return Stream(sent, first, last, generation.usage.completion_tokens, chunks, finish)


def load_greedy() -> ModuleType:
    # models/llm/smollm2 is a folder of build scripts, not a package: the loop is loaded from its file.
    spec = importlib.util.spec_from_file_location("smollm2_greedy", GREEDY_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the local server --------------------------------------------------------------------------------


def server_env(store: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIMASS_MODEL_STORE": str(store.resolve()),
        "AIMASS_METERING": "off",
        "AIMASS_DOMAINS": '["llm"]',
        # As the llm function's image sets it (functions/llm/Dockerfile).
        "AIMASS_INTRA_OP_SPINNING": "true",
    }


def start_server(store: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**server_env(store), "PORT": str(port)}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            # One worker process, as the llm function is one process: its engine batches every stream.
            [sys.executable, "-m", "aimass_tools.cli", "serve", "--workers", "1"],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server was not ready within 120 s:\n{log.read_text()[-2000:]}")


def memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) * 1024 / 1e6, 1) for key in ("VmHWM", "VmRSS")}


def concurrent(port: int, body: dict[str, Any], streams: int) -> list[Stream]:
    async def run() -> list[Stream]:
        limits = httpx.Limits(max_connections=streams)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits) as client:
            started = time.perf_counter()
            return list(await asyncio.gather(*(stream_async(client, body, started) for _ in range(streams))))

    return asyncio.run(run())


def aggregate(streams: list[Stream]) -> float:
    """Tokens of every stream / the time from the first request sent to the last token: prefill included."""
    return sum(s.tokens for s in streams) / (max(s.last for s in streams) - min(s.sent for s in streams))


# --- the Lambda streaming loop -----------------------------------------------------------------------


def rest_event(body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The recorded REST proxy event (API Gateway's streaming integrations are REST), path and body replaced."""
    event: dict[str, Any] = json.loads(EVENT.read_text())
    path = "/v1/chat/completions"
    event.update(path=path, resource="/v1/{proxy+}", body=json.dumps(body), pathParameters={"proxy": path[4:]})
    event["requestContext"].update(requestId=request_id, resourcePath="/v1/{proxy+}", path=f"/prod{path}")
    event["isBase64Encoded"] = False  # the template's body came base64-encoded; this one is text
    return event


def lambda_stream(answer: Answer, sent: float) -> Stream:
    """The chunks as the stand-in Runtime API received them, each one SSE event (after the prelude)."""
    prelude, _ = answer.prelude()
    assert prelude["statusCode"] == 200, answer.body[:500]
    reader = _Reader(sent)
    for at, data in answer.chunks:
        for line in data.decode().splitlines():
            reader.event(line, at)
    return reader.result()


def lambda_warm(store: Path, body: dict[str, Any]) -> list[Stream]:
    """The llm function's own app (``functions/llm/handler.py``'s ``app``, imported as its container imports it,
    with its environment) in the streaming loop, warm."""
    env = {key: value for key, value in server_env(store).items() if key.startswith("AIMASS_")}
    app = import_handler("llm", env, variant="lambda_warm").app
    with runtime_api() as api:
        loop = StreamingRuntime(app, api.address, timeout_s=60)

        def serve() -> None:
            for _ in range(TTFT_RUNS + 1):
                loop.handle_next()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        results = []
        for n in range(TTFT_RUNS + 1):  # the first is a warm-up
            sent = time.monotonic()  # the stand-in stamps chunks with time.monotonic
            api.invoke(f"warm-{n}", rest_event(body, f"warm-{n}"))
            results.append(lambda_stream(api.answer(60), sent))
        thread.join(10)
    return results[1:]


def lambda_cold(store: Path, body: dict[str, Any], log: Path) -> Stream:
    # A fresh stand-in each time: a killed process leaves its stand-in's handler waiting for a next event.
    with runtime_api() as api:
        api.invoke("cold", rest_event(body, "cold"))
        env = {
            **server_env(store),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_TASK_ROOT": str(_REPO / "functions" / "llm"),
        }
        sent = time.monotonic()
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "aimass.http.lambda_streaming", "handler.app"],
                env=env,
                stdout=sink,
                stderr=sink,
                cwd=_REPO / "functions" / "llm",
            )
        try:
            answer = api.answer(120)
            # Killed at once, the loop would reset the connection its answer's 202 comes back on, and the
            # stand-in would print the reset; a moment later it is waiting for its next event, quietly.
            time.sleep(0.5)
        finally:
            process.kill()
            process.wait()
    return lambda_stream(answer, sent)


# --- the run -----------------------------------------------------------------------------------------


def run(store: Path, scratch: Path) -> dict[str, Any]:
    settings = Settings(model_store=store, domains=("llm",), metering="off", intra_op_spinning=True)
    registry = load_models(settings)
    # Importable once load_models has found the domain packages under functions/.
    from aimass_llm.runtime import LlmRuntime

    runtime = next(iter(registry.runtimes()))
    assert isinstance(runtime, LlmRuntime)
    name = runtime.manifest.name
    decode_prompt = runtime.chat_tokens([ChatMessage("user", DECODE_PROMPT)])
    ttft_prompt_tokens = len(runtime.chat_tokens([ChatMessage("user", TTFT_PROMPT)]))
    greedy = load_greedy()
    model_file = store / name / runtime.manifest.version / "model.onnx"
    session = greedy.open_session(model_file)
    loop = cast("GreedyLoop", greedy.greedy)
    stop = sorted(runtime.eos)

    def bare(on: Any) -> Stream:
        sent = time.perf_counter()
        tokens, seconds = loop(on, decode_prompt, NEW_TOKENS, stop)
        # greedy.py returns the decode seconds only (from its first token): its Stream is rebuilt from them.
        return Stream(sent, 0.0, seconds, len(tokens), len(tokens), None)

    port = free_port()
    server = start_server(store, port, scratch / "server.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            decode_body = chat_body(name, DECODE_PROMPT, NEW_TOKENS)
            samples: dict[str, list[Stream]] = {key: [] for key in ("runtime", "greedy_py", "greedy_py_served", "http")}
            paths: dict[str, Callable[[], Stream]] = {
                "runtime": lambda: stream_runtime(runtime, decode_prompt),
                "greedy_py": lambda: bare(session),
                "greedy_py_served": lambda: bare(runtime.session),
                "http": lambda: stream_http(client, decode_body),
            }
            for n in range(WARMUP + RUNS):
                for key, path in paths.items():
                    stream = path()
                    assert stream.tokens == NEW_TOKENS, f"{key} wrote {stream.tokens} tokens, not {NEW_TOKENS}"
                    if n >= WARMUP:
                        samples[key].append(stream)
            rates = {key: [round(s.decode_tokens_per_s, 1) for s in streams] for key, streams in samples.items()}
            decode: dict[str, Any] = {key: {"best_tokens_per_s": max(r), "runs": r} for key, r in rates.items()}
            decode["http_ratio"] = round(max(rates["http"]) / max(rates["runtime"]), 3)
            decode["http_ratio_to_greedy_py"] = round(max(rates["http"]) / max(rates["greedy_py"]), 3)
            decode["http_chunks"] = samples["http"][0].chunks

            ttft_body = chat_body(name, TTFT_PROMPT, TTFT_TOKENS)
            http_ttft = [stream_http(client, ttft_body).ttft_ms for _ in range(TTFT_RUNS + 1)][1:]

            single = [stream_http(client, decode_body) for _ in range(2)][1]
        scaling = {streams: concurrent(port, decode_body, streams) for streams in SCALING}
        assert all(s.tokens == NEW_TOKENS for streams in scaling.values() for s in streams)
        many = scaling[STREAMS]
        memory = memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    warm = lambda_warm(store, ttft_body)
    cold = [lambda_cold(store, ttft_body, scratch / f"cold-{n}.log") for n in range(COLD_RUNS)]

    def summary(values: list[float]) -> dict[str, Any]:
        return {"median_ms": round(statistics.median(values), 1), "runs_ms": [round(v, 1) for v in values]}

    single_rate = aggregate([single])
    return {
        "model": f"{name}@{runtime.manifest.version}",
        "new_tokens": NEW_TOKENS,
        "decode_prompt": DECODE_PROMPT,
        "decode_prompt_tokens": len(decode_prompt),
        "decode": decode,
        "ttft": {
            "prompt_tokens": ttft_prompt_tokens,
            "http_warm": summary(http_ttft),
            "lambda_warm": summary([s.ttft_ms for s in warm]),
            "lambda_cold": summary([s.ttft_ms for s in cold]),
        },
        "concurrent": {
            "streams": STREAMS,
            "aggregate_tokens_per_s": round(aggregate(many), 1),
            "single_tokens_per_s": round(single_rate, 1),
            "ratio": round(aggregate(many) / single_rate, 2),
            "per_stream_decode_tokens_per_s": [round(s.decode_tokens_per_s, 1) for s in many],
            "per_stream_ttft_ms": [round(s.ttft_ms, 1) for s in many],
            "scaling": {
                str(streams): {
                    "aggregate_tokens_per_s": round(aggregate(runs), 1),
                    "ratio": round(aggregate(runs) / single_rate, 2),
                    "median_ttft_ms": round(statistics.median(s.ttft_ms for s in runs), 1),
                }
                for streams, runs in scaling.items()
            },
        },
        "server": {"peak_rss_mb": memory["VmHWM"], "rss_mb": memory["VmRSS"]},
    }


def targets(result: dict[str, Any]) -> list[Target]:
    return [
        at_least("llm decode http_ratio", result["decode"]["http_ratio"], HTTP_RATIO_TARGET, "x"),
        at_least(
            f"llm concurrent ratio ({result['concurrent']['streams']} streams)",
            result["concurrent"]["ratio"],
            CONCURRENT_RATIO_TARGET,
            "x",
        ),
    ]


def report(result: dict[str, Any]) -> Table:
    decode, ttft, many = result["decode"], result["ttft"], result["concurrent"]
    rows = [
        ("decode tok/s, runtime.generate in process (best of 3)", f"{decode['runtime']['best_tokens_per_s']}", ""),
        ("decode tok/s, greedy.py loop, own session", f"{decode['greedy_py']['best_tokens_per_s']}", ""),
        ("decode tok/s, greedy.py loop, served session", f"{decode['greedy_py_served']['best_tokens_per_s']}", ""),
        ("decode tok/s, HTTP SSE stream (best of 3)", f"{decode['http']['best_tokens_per_s']}", ""),
        ("  HTTP / runtime.generate", f"{decode['http_ratio']}x", f">= {HTTP_RATIO_TARGET}x"),
        ("  HTTP / greedy.py loop, own session", f"{decode['http_ratio_to_greedy_py']}x", ""),
        (f"TTFT, {ttft['prompt_tokens']}-token prompt, HTTP warm (median)", f"{ttft['http_warm']['median_ms']} ms", ""),
        ("TTFT, Lambda streaming loop warm (median)", f"{ttft['lambda_warm']['median_ms']} ms", ""),
        ("TTFT, Lambda streaming loop cold (median of 3)", f"{ttft['lambda_cold']['median_ms']} ms", ""),
        (f"aggregate tok/s, {many['streams']} streams (HTTP)", f"{many['aggregate_tokens_per_s']}", ""),
        ("  / one stream, same measure (continuous batching)", f"{many['ratio']}x", f">= {CONCURRENT_RATIO_TARGET:g}x"),
        *(
            (
                f"  {streams} streams: aggregate tok/s, ratio, median TTFT",
                f"{v['aggregate_tokens_per_s']}, {v['ratio']}x, {v['median_ttft_ms']} ms",
                "",
            )
            for streams, v in many["scaling"].items()
        ),
        ("server peak RSS (VmHWM)", f"{result['server']['peak_rss_mb']} MB", ""),
    ]
    table = Table(title=f"llm: {result['model']}, greedy, {result['new_tokens']} new tokens")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=Path("bench/records/llm.json"))
    add_explore_flag(parser)
    args = parser.parse_args()
    silence_logs()
    console = make_console()
    busy = cpu_busy()
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "aimass-bench-llm"
    scratch.mkdir(parents=True, exist_ok=True)
    result = run(args.store, scratch)
    result["machine"] = {
        **machine_info(["onnxruntime", "numpy", "httpx"]),
        "cpu_busy_before": busy,
        "load_average_after": load_average(),
        "gpu": None,
    }
    judged = targets(result)
    result["passed"] = passed(judged)
    merge_results(args.out, "llm", result)
    console.print(report(result))
    console.print(f"saved {args.out}")
    return exit_status(judged, explore=args.explore, console=console, script="bench/llm.py")


if __name__ == "__main__":
    raise SystemExit(main())
