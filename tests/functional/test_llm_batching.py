"""Continuous batching: concurrent generations share decode steps and write what each would write alone.

Both cache layouts are held to it: the tiny decoder whose attention appends to the cache (checked against its
numpy reference as well) and the tiny ``GroupQueryAttention`` decoder, which writes each row's entry right
after its tokens as the served SmolLM2 graph does.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aimass.http.app import build_app
from aimass.serving.boot import load_models
from aimass.serving.generation import GenerationParams, TokenEvent
from aimass.serving.registry import ModelRegistry
from aimass.settings import Settings
from tests.tiny_llm import EOS_ID, build_tiny_llm, chatml, reference_greedy, words

APPENDED, PREFIX, NARROW = "tiny-llm", "tiny-gqa", "tiny-narrow"
PROMPTS = [
    [("user", "hello there")],
    [("system", "you are helpful ."), ("user", "the cat sat on the red mat , the dog runs fast")],
    [("user", "sky ?")],
    [("user", "the sun the moon the tree the house the car the blue sky the green tree")],
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batching-store")
    build_tiny_llm(root, APPENDED)
    build_tiny_llm(root, PREFIX, layout="prefix")
    build_tiny_llm(root, NARROW, layout="prefix", max_batch_rows=2)
    return root


@pytest.fixture(scope="module")
def registry(store: Path) -> ModelRegistry:
    return load_models(Settings(model_store=store))


@pytest.fixture
def slowed(registry: ModelRegistry) -> Iterator[Callable[[str], list[int]]]:
    """Slow a model's steps a little, so that generations started together overlap; the rows of each step."""
    patched: list[Any] = []

    def slow(name: str) -> list[int]:
        runtime: Any = registry.get(name)
        real, rows = runtime.step, []

        def step(ids: Any, *rest: Any) -> Any:
            rows.append(len(ids))
            time.sleep(0.002)
            return real(ids, *rest)

        runtime.step = step
        patched.append(runtime)
        return rows

    yield slow
    for runtime in patched:
        del runtime.step


def run(registry: ModelRegistry, name: str, prompt: list[int], params: GenerationParams) -> list[TokenEvent]:
    return list(registry.get(name).generate(prompt, params))  # type: ignore[attr-defined]


def together(
    registry: ModelRegistry, name: str, requests: list[tuple[list[int], GenerationParams]]
) -> list[list[TokenEvent]]:
    """Generate for every (prompt, params) of ``requests`` at once, each on a thread of its own; the events of
    each, in order."""
    results: list[list[TokenEvent]] = [[] for _ in requests]
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results[i] = run(registry, name, *requests[i])
        except BaseException as error:  # re-raised on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def texts(events: list[TokenEvent], n: int = 1) -> list[str]:
    return ["".join(e.text for e in events if e.index == i) for i in range(n)]


@pytest.mark.parametrize("name", [APPENDED, PREFIX])
def test_concurrent_generations_write_what_each_writes_alone(
    registry: ModelRegistry, slowed: Callable[[str], list[int]], name: str
) -> None:
    prompts = [chatml(messages) for messages in PROMPTS]
    lengths = [12, 5, 20, 9]  # rows leave at different steps, and the padded cache shrinks behind them
    requests = [(p, GenerationParams(max_tokens=k, temperature=0)) for p, k in zip(prompts, lengths, strict=True)]
    alone = [texts(run(registry, name, *request)) for request in requests]
    rows = slowed(name)
    batched = [texts(events) for events in together(registry, name, requests)]
    assert batched == alone
    assert max(rows) > 1, rows  # the generations did share steps
    if name == APPENDED:
        assert [t[0] for t in alone] == [words(reference_greedy(p, k)) for p, k in zip(prompts, lengths, strict=True)]


def test_the_shared_cache_writes_what_a_cache_copied_every_step_writes(registry: ModelRegistry) -> None:
    # The prefix layout's batch binds one buffer per layer as both the past and the present, written in place;
    # a plain loop here feeds each step the cache the last one returned, as onnxruntime-genai's graphs allow.
    runtime: Any = registry.get(PREFIX)
    for messages in PROMPTS:
        prompt = chatml(messages)
        logits, cache = runtime.prefill(prompt)
        plain = [int(np.argmax(logits[0]))]
        for written in range(11):
            length = len(prompt) + written
            ids = np.array([[plain[-1]]], dtype=np.int64)
            mask, positions = np.ones((1, length + 1), dtype=np.int64), np.array([[length]])
            logits, cache = runtime.step(ids, mask, positions, cache)
            plain.append(int(np.argmax(logits[0])))
        events = run(registry, PREFIX, prompt, GenerationParams(max_tokens=12, temperature=0))
        until_eos = plain[: plain.index(EOS_ID)] if EOS_ID in plain else plain
        assert texts(events) == [words(until_eos)]


def test_a_request_joining_a_running_batch_writes_what_it_writes_alone(
    registry: ModelRegistry, slowed: Callable[[str], list[int]]
) -> None:
    # The second prompt is longer than the first's cache when it joins, so the running rows are padded to it;
    # its n sampled choices, seeded, repeat exactly.
    long_prompt = chatml(PROMPTS[3])
    sampled = GenerationParams(max_tokens=8, temperature=1.0, seed=7, n=3)
    alone = texts(run(registry, PREFIX, long_prompt, sampled), 3)
    rows = slowed(PREFIX)
    first = registry.get(PREFIX).generate(chatml(PROMPTS[2]), GenerationParams(max_tokens=30, temperature=0))  # type: ignore[attr-defined]
    events = iter(first)
    head = [next(events) for _ in range(4)]  # the first request is running
    joined = texts(run(registry, PREFIX, long_prompt, sampled), 3)
    rest = list(events)
    assert joined == alone
    assert texts(head + rest) == texts(run(registry, PREFIX, chatml(PROMPTS[2]), GenerationParams(30, temperature=0)))
    assert max(rows) == 4, rows  # one row of the first request, three of the second


def test_a_stopped_generation_leaves_the_batch_and_the_others_go_on(
    registry: ModelRegistry, slowed: Callable[[str], list[int]]
) -> None:
    prompt = chatml(PROMPTS[0])
    alone = texts(run(registry, PREFIX, prompt, GenerationParams(max_tokens=30, temperature=0)))
    rows = slowed(PREFIX)
    runtime: Any = registry.get(PREFIX)
    leaving = runtime.generate(chatml(PROMPTS[1]), GenerationParams(max_tokens=30, temperature=0))
    staying = runtime.generate(prompt, GenerationParams(max_tokens=30, temperature=0))
    leaving_events, staying_events = iter(leaving), iter(staying)
    kept = [next(staying_events)]
    next(leaving_events)
    leaving.stop()
    rest = list(leaving_events)  # ends at the next token boundary
    kept += list(staying_events)
    assert texts(kept) == alone
    assert len(rest) < 5 and leaving.steps < 10 and rows[-1] == 1  # the last steps ran the staying row alone


def test_the_batch_holds_at_most_max_batch_rows_and_the_rest_wait(
    registry: ModelRegistry, slowed: Callable[[str], list[int]]
) -> None:
    prompts = [chatml(messages) for messages in PROMPTS]
    params = GenerationParams(max_tokens=10, temperature=0)
    alone = [texts(run(registry, NARROW, p, params)) for p in prompts]
    rows = slowed(NARROW)
    batched = [texts(events) for events in together(registry, NARROW, [(p, params) for p in prompts])]
    assert batched == alone
    assert max(rows) == 2, rows


def test_a_failing_step_fails_every_generation_in_it_and_the_next_ones_run(
    registry: ModelRegistry, slowed: Callable[[str], list[int]]
) -> None:
    runtime: Any = registry.get(PREFIX)
    rows = slowed(PREFIX)
    slow_step = runtime.step

    def failing(ids: Any, *rest: Any) -> Any:
        if len(ids) == 2:
            raise RuntimeError("the engine ran out of memory")
        return slow_step(ids, *rest)

    runtime.step = failing
    params = GenerationParams(max_tokens=20, temperature=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        together(registry, PREFIX, [(chatml(p), params) for p in PROMPTS[:2]])
    runtime.step = slow_step
    assert texts(run(registry, PREFIX, chatml(PROMPTS[0]), params))[0]
    assert rows


def test_concurrent_streams_over_http_share_steps(
    store: Path, registry: ModelRegistry, slowed: Callable[[str], list[int]]
) -> None:
    app = build_app(Settings(model_store=store), registry=registry)
    bodies = [
        {"model": PREFIX, "messages": [{"role": r, "content": c} for r, c in m], "max_tokens": 12, "temperature": 0}
        for m in PROMPTS
    ]

    async def chat(client: httpx.AsyncClient, body: dict[str, Any], stream: bool) -> str:
        response = await client.post("/v1/chat/completions", json={**body, "stream": stream})
        assert response.status_code == 200, response.text
        if not stream:
            return str(response.json()["choices"][0]["message"]["content"])
        chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

    async def scenario() -> tuple[list[str], list[str], list[int]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            alone = [await chat(client, body, stream=False) for body in bodies]
            rows = slowed(PREFIX)
            streamed = await asyncio.gather(*(chat(client, body, stream=True) for body in bodies))
            return alone, list(streamed), rows

    alone, streamed, rows = asyncio.run(scenario())
    assert streamed == alone and all(alone)
    assert max(rows) > 1, rows
