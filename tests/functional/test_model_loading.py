"""A function answers a request for a model it has loaded while another of its models still loads.

The speech function's handler is imported over a store of two tiny speech models; the second one's session is
held at a gate until the test opens it, so "still loading" lasts exactly as long as the test needs it to
(``aimass.serving.loading``).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import onnxruntime as ort
import pytest

from aimass.errors import ModelNotReady
from aimass.lambda_context import LocalLambdaContext
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.serving.updater import ModelUpdater
from aimass.settings import Settings
from aimass.store.factory import open_store
from tests.conftest import import_handler, load_event, response_body
from tests.tiny_speech import CLIP, LABELS, TINY_SPEECH, build_tiny_speech

SLOW = "tiny-speech-slow"  # sorts after TINY_SPEECH, its files the same size: loaded second
GATE_S = 30.0  # a failing test never hangs past this


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("loading-store")
    build_tiny_speech(store)
    build_tiny_speech(store, name=SLOW)
    return store


class Gate:
    """Holds the building of SLOW's session until ``open``; ``reached`` once the load is waiting there."""

    def __init__(self, fail: bool = False) -> None:
        self.reached = threading.Event()
        self.entered = 0  # how many times SLOW's session was begun
        self._open = threading.Event()
        self._fail = fail
        self._create = SessionFactory.create

    def create(self, factory: SessionFactory, model: bytes, *, label: str) -> ort.InferenceSession:
        if SLOW in label:
            self.entered += 1
            self.reached.set()
            assert self._open.wait(GATE_S)
            if self._fail:
                raise RuntimeError("the graph could not be built")
        return self._create(factory, model, label=label)

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()

    def create(factory: SessionFactory, model: bytes, *, label: str) -> ort.InferenceSession:
        return gate.create(factory, model, label=label)

    monkeypatch.setattr(SessionFactory, "create", create)
    yield gate
    gate.open()


@pytest.fixture
def function(store: Path, monkeypatch: pytest.MonkeyPatch, gate: Gate) -> Iterator[ModuleType]:
    module = import_handler(store, monkeypatch, "speech")
    assert gate.reached.wait(GATE_S)  # the first model is loaded; the second waits at the gate
    yield module
    gate.open()
    assert module.models.wait_loaded(GATE_S)


def event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An HTTP API (v2) event for ``method path`` (the recorded envelope of a V2 request)."""
    event = copy.deepcopy(load_event("apigw_http_v2_text_infer"))
    event.update(rawPath=path, body=json.dumps(body) if body is not None else "")
    event["requestContext"]["http"].update(method=method, path=path)
    if body is None:
        del event["headers"]["content-length"], event["headers"]["content-type"]
    else:
        event["headers"]["content-length"] = str(len(event["body"]))
    return event


def infer(model: str) -> dict[str, Any]:
    waveform = {"name": "waveform", "shape": [1, CLIP], "datatype": "FP32", "data": [0.0] * CLIP}
    return event("POST", f"/v2/models/{model}/infer", {"inputs": [waveform]})


def call(module: ModuleType, request: dict[str, Any]) -> tuple[int, Any]:
    response: dict[str, Any] = module.handler(request, LocalLambdaContext())
    return response["statusCode"], json.loads(response_body(response))


def test_a_loaded_model_answers_while_another_still_loads(function: ModuleType) -> None:
    # GIVEN a speech function whose second model is still loading
    # WHEN the first model is asked for
    status, body = call(function, infer(TINY_SPEECH))
    # THEN it answers, and the other model is loading still
    assert status == 200, body
    assert body["model_name"] == TINY_SPEECH and body["outputs"][0]["shape"] == [1, len(LABELS)]
    assert not function.models.wait_loaded(0)


def test_readiness_says_which_model_is_loading(function: ModuleType) -> None:
    # GIVEN the second model still loading: the server is not ready, the first model is
    status, body = call(function, event("GET", "/v2/health/ready"))
    assert status == 503 and body["error"] == f"not ready: {SLOW}: it is still loading"
    ready = {"name": TINY_SPEECH, "ready": True}
    assert call(function, event("GET", f"/v2/models/{TINY_SPEECH}/ready")) == (200, ready)
    # AND the loading model's own readiness says so at once (a probe is not held while it loads)
    status, body = call(function, event("GET", f"/v2/models/{SLOW}/ready"))
    assert status == 503 and "still loading" in body["error"]
    # AND the repository index lists the loading model as unavailable, saying why
    status, index = call(function, event("POST", "/v2/repository/index", {}))
    assert status == 200
    assert {m["name"]: (m["state"], m["reason"]) for m in index} == {
        TINY_SPEECH: ("READY", ""),
        SLOW: ("UNAVAILABLE", "it is still loading"),
    }


def test_an_unknown_model_is_not_found_at_once(function: ModuleType) -> None:
    status, body = call(function, infer("no-such-model"))
    assert status == 404 and "no-such-model" in body["error"]
    assert not function.models.wait_loaded(0)


def test_a_request_for_a_loading_model_waits_for_its_load(function: ModuleType, gate: Gate) -> None:
    # GIVEN a request for the model that is still loading, made while it loads
    answers: list[tuple[int, Any]] = []
    waiting = threading.Thread(target=lambda: answers.append(call(function, infer(SLOW))))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not answers  # it waits, rather than failing
    # WHEN the load finishes
    gate.open()
    waiting.join(GATE_S)
    # THEN the request is answered by that model
    assert answers and answers[0][0] == 200 and answers[0][1]["model_name"] == SLOW
    assert call(function, event("GET", "/v2/health/ready")) == (200, {"ready": True})


def loading_registry(store: Path, monkeypatch: pytest.MonkeyPatch, gate: Gate, wait_s: float) -> ModelRegistry:
    monkeypatch.setattr(SessionFactory, "create", lambda f, m, *, label: gate.create(f, m, label=label))
    settings = Settings(model_store=store, domains=("speech",), metering="off")
    sessions = SessionFactory(settings)
    registry = ModelRegistry(open_store(settings), sessions, domains=settings.domains, load_wait_s=wait_s)
    registry.load_in_background()
    assert gate.reached.wait(GATE_S)
    return registry


def test_a_wait_is_bounded_and_a_failed_load_is_not_ready(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(fail=True)
    registry = loading_registry(store, monkeypatch, gate, wait_s=0.01)
    # GIVEN a model held in its load: a request for it waits no longer than the bound, and one that will not
    # wait is told at once
    with pytest.raises(ModelNotReady, match=f"model '{SLOW}' is still loading"):
        registry.get(SLOW)
    with pytest.raises(ModelNotReady, match="still loading"):
        registry.get(SLOW, wait=False)
    assert registry.get(TINY_SPEECH).manifest.name == TINY_SPEECH
    # WHEN its load fails with an error nobody foresaw
    gate.open()
    assert registry.wait_loaded(GATE_S)
    # THEN it is not ready, with a reason a client may read, and the other model serves on
    with pytest.raises(ModelNotReady, match="version 1 was rejected: it failed to load"):
        registry.get(SLOW)
    assert [s.state for s in registry.states()] == ["READY", "UNAVAILABLE"]
    assert not registry.ready


def test_an_update_check_during_the_first_load_takes_its_version(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a model held in its first load, and an update check that comes due meanwhile (a Lambda invocation's)
    gate = Gate()
    registry = loading_registry(store, monkeypatch, gate, wait_s=GATE_S)
    checking = threading.Thread(target=ModelUpdater(registry, interval_s=0).check)
    checking.start()
    checking.join(0.2)
    assert checking.is_alive()  # it waits for the version the first load is preparing
    # WHEN the first load finishes
    gate.open()
    checking.join(GATE_S)
    # THEN both serve the one version that load prepared: it was not loaded a second time
    assert registry.wait_loaded(GATE_S) and not checking.is_alive()
    assert gate.entered == 1 and registry.get(SLOW).manifest.name == SLOW


def test_an_environment_started_ahead_of_its_requests_is_loaded_when_its_import_ends(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an environment Lambda starts for provisioned concurrency (frozen once its start ends)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    # WHEN the handler is imported
    module = import_handler(store, monkeypatch, "speech")
    # THEN every model has loaded by then
    assert module.models.wait_loaded(0) and module.models.ready
