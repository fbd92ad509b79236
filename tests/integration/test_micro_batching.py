"""Server mode's scheduling over real HTTP (the worker app and protocol of `aimass serve`): requests that arrive
while a model's engine is busy run as one engine call, and each is answered as it would be alone (vectors, usage),
errors included; a small embeddings request alone in its worker runs on the event loop, without the thread hop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from aimass.errors import InvalidInput
from aimass.http.app import build_app
from aimass.serving.boot import load_models
from aimass.settings import Settings
from aimass_server.held import HeldRequests
from aimass_server.protocol import NoDelayProtocol
from tests.ports import free_port
from tests.tiny_models import TINY_TEXT

SENTENCES = [
    "the cat sat",
    "a dog runs in the park",
    "hello",
    "the quick brown fox jumps",
    "rain falls on the roof",
    "poison",
    "birds sing at dawn",
    "one two three four five six",
]


class Served:
    """The app on uvicorn (the server mode's protocol) on a thread; every engine call's rows are recorded."""

    def __init__(self, settings: Settings) -> None:
        registry = load_models(settings)
        runtime = registry.get(TINY_TEXT)
        predict = runtime.predict
        self.calls: list[list[str]] = []
        self.threads: list[str] = []
        self.slow_s = 0.0

        def recorded(inputs: Mapping[str, Any]) -> Any:
            texts = [value.decode() for value in next(iter(inputs.values())).tolist()]
            self.calls.append(texts)
            self.threads.append(threading.current_thread().name)
            if "poison" in texts:  # what the runtime refuses: only a lone run may answer with it
                raise InvalidInput("the text 'poison' is refused", param="input")
            time.sleep(self.slow_s)
            return predict(inputs)

        runtime.predict = recorded  # type: ignore[method-assign]
        self.port = free_port()
        app = HeldRequests(build_app(settings, registry=registry))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, http=NoDelayProtocol)
        config.log_level = "warning"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="event-loop")
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server not started in 10 s"
            time.sleep(0.02)

    def embed(self, text: str) -> httpx.Response:
        body = {"model": TINY_TEXT, "input": text}
        return httpx.post(f"http://127.0.0.1:{self.port}/v1/embeddings", json=body, timeout=20)

    def infer(self, text: str) -> httpx.Response:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}
        return httpx.post(f"http://127.0.0.1:{self.port}/v2/models/{TINY_TEXT}/infer", json=body, timeout=20)


@pytest.fixture
def served(tiny_store: Path) -> Iterator[Served]:
    settings = Settings(model_store=tiny_store, metering="off", alias_check_s=0, micro_batch_rows=32)
    running = Served(settings)
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


def test_requests_that_arrive_while_the_engine_runs_share_one_call_and_get_their_own_answers(served: Served) -> None:
    # GIVEN each request's answer alone, the engine idle between them
    alone = {text: served.embed(text) for text in SENTENCES}
    assert [len(call) for call in served.calls] == [1] * len(SENTENCES)
    assert alone["poison"].status_code == 400
    # WHEN they arrive together at an engine that takes 0.2 s a call
    served.calls.clear()
    served.slow_s = 0.2
    with ThreadPoolExecutor(len(SENTENCES)) as pool:
        together = dict(zip(SENTENCES, pool.map(served.embed, SENTENCES), strict=True))
    # THEN the first runs at once and the rest, queued behind it, in fewer calls than requests
    batched = [call for call in served.calls if len(call) > 1]
    assert batched, f"no engine call held more than one request: {served.calls}"
    # AND each is answered as alone: its vector, its own tokens; the refused one with its own error, alone
    for text in SENTENCES:
        assert together[text].status_code == alone[text].status_code, text
        if text == "poison":
            assert together[text].json()["error"] | {"request_id": None} == alone[text].json()["error"] | {
                "request_id": None
            }
            continue
        mine, single = together[text].json(), alone[text].json()
        assert mine["usage"] == single["usage"], text
        np.testing.assert_allclose(mine["data"][0]["embedding"], single["data"][0]["embedding"], atol=1e-5)


def test_the_v2_route_and_the_embeddings_route_batch_together(served: Served) -> None:
    # GIVEN a busy engine
    served.slow_s = 0.2
    texts = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]
    # WHEN V2 infer and /v1/embeddings requests for one model arrive together, after a first one
    with ThreadPoolExecutor(len(texts) + 1) as pool:
        first = pool.submit(served.embed, "first of all")
        time.sleep(0.05)
        v2 = [pool.submit(served.infer, text) for text in texts[:2]]
        openai = [pool.submit(served.embed, text) for text in texts[2:]]
        answers = [future.result() for future in [first, *v2, *openai]]
    # THEN every one is answered, V2 with its own row, and requests of both routes shared an engine call
    assert all(answer.status_code == 200 for answer in answers)
    for future in v2:
        (output,) = future.result().json()["outputs"]
        assert output["shape"] == [1, len(output["data"])]
    assert any(set(call) & set(texts[:2]) and set(call) & set(texts[2:]) for call in served.calls), served.calls


def test_a_small_embeddings_request_alone_in_its_worker_runs_on_the_event_loop_and_others_on_threads(
    served: Served,
) -> None:
    # GIVEN an idle worker
    # WHEN one small embeddings request comes, then one with a body over the inline bound, then a V2 request
    assert served.embed("the cat sat").status_code == 200
    assert served.embed("word " * 1000).status_code == 200
    assert served.infer("the cat sat").status_code == 200
    # THEN the first ran on the event loop's thread: no hop; the large one and V2 infer on worker threads
    assert served.threads[0] == "event-loop"
    assert served.threads[1] != "event-loop" and served.threads[2] != "event-loop", served.threads
    # AND WHEN three requests arrive on open connections while one is held, they go to the threads
    served.threads.clear()
    served.slow_s = 0.5
    base = f"http://127.0.0.1:{served.port}"
    clients = [httpx.Client(base_url=base, timeout=20) for _ in range(4)]
    try:
        for client in clients:  # connected before anything is timed: a slow client start cannot stagger them
            assert client.get("/v2/health/live").status_code == 200
        body = {"model": TINY_TEXT, "input": "a b"}
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(clients[0].post, "/v1/embeddings", json=body)
            time.sleep(0.1)
            others = [pool.submit(client.post, "/v1/embeddings", json=body) for client in clients[1:]]
            assert all(future.result().status_code == 200 for future in [first, *others])
    finally:
        for client in clients:
            client.close()
    assert served.threads[0] == "event-loop" and "event-loop" not in served.threads[1:], served.threads
