"""The llm function's Lambda entrypoints, driven by its recorded API Gateway HTTP API (v2) chat event.

The event names the real model, smollm2-135m-instruct; here it is retargeted at the tiny decoder, whose
greedy answer the numpy reference computes token for token from the event's own messages. The function's
image runs AI Mass's Runtime API loop over ``handler.app`` (streamed answers); ``handler.handler`` answers
the same app buffered, through Mangum. Both are held to the reference.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from aimass.http.lambda_streaming import StreamingRuntime
from aimass.lambda_context import LocalLambdaContext
from tests.conftest import import_handler, load_event, response_body
from tests.gateway_requests import http_request
from tests.lambda_runtime_api import RuntimeApi, runtime_api
from tests.tiny_llm import TINY_LLM, build_tiny_llm, chatml, reference_greedy, words

REAL_MODEL = "smollm2-135m-instruct"
EVENT = "apigw_http_v2_llm_chat"


@pytest.fixture(scope="module")
def handler_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    store = tmp_path_factory.mktemp("llm-lambda-store")
    build_tiny_llm(store)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "llm")


def sent() -> dict[str, Any]:
    """The chat request the event's client sent."""
    document: dict[str, Any] = json.loads(http_request(load_event(EVENT)).body)
    return document


def expected_answer() -> tuple[str, int, int]:
    """The reference's greedy answer to the event's messages: its text and the prompt and completion sizes."""
    request = sent()
    assert request["temperature"] == 0  # greedy: one answer is right
    prompt = chatml([(message["role"], message["content"]) for message in request["messages"]])
    tokens = reference_greedy(prompt, request["max_tokens"])
    return words(tokens), len(prompt), len(tokens)


def assert_the_references_answer(body: dict[str, Any]) -> None:
    text, prompt_tokens, completion_tokens = expected_answer()
    assert body["object"] == "chat.completion" and body["model"] == TINY_LLM
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == text
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }  # fmt: skip


def test_the_chat_event_is_answered_through_mangum(handler_module: ModuleType) -> None:
    event = load_event(EVENT, model=TINY_LLM, recorded=REAL_MODEL)
    response = handler_module.handler(event, LocalLambdaContext())
    assert response["statusCode"] == 200, response
    assert_the_references_answer(json.loads(response_body(response)))


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    with runtime_api() as stand_in:
        yield stand_in


def test_the_chat_event_is_answered_through_the_images_runtime_loop(
    handler_module: ModuleType, api: RuntimeApi
) -> None:
    # GIVEN the loop the function's image runs, over the handler module's app
    runtime = StreamingRuntime(handler_module.app, api.address, timeout_s=30)
    thread = threading.Thread(target=runtime.handle_next, daemon=True)
    thread.start()
    # WHEN Lambda hands it the recorded event
    event = load_event(EVENT, model=TINY_LLM, recorded=REAL_MODEL)
    api.invoke(event["requestContext"]["requestId"], event)
    answer = api.answer()
    thread.join(timeout=30)
    # THEN the answer streamed back to API Gateway is the reference's
    assert answer.streamed and answer.error is None
    prelude, body = answer.prelude()
    assert prelude["statusCode"] == 200, body
    assert_the_references_answer(json.loads(body))
