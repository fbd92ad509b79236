"""Every recorded API Gateway event answered alike by a function's direct path, its lean app and the FastAPI app.

A function serves the hot routes on plain Starlette and hands every other path to the FastAPI app
(``aimass.http.lean``); both apps hold the same hot routes, middleware and error renderer. Here each event of
tests/events, retargeted at the tiny models of every domain, goes through Mangum to both apps over one registry,
with metering off, on without a key (the 401 and its ``WWW-Authenticate``) and on with one (each app's answer
then billed as its own request), and the answers must be the same. The function's own handler
(``aimass.http.lambda_direct``: the inference routes answered from the event, the rest through Mangum and the lean
app) must answer each as the lean app does, the events its direct path takes (and variants of them: bad headers,
bodies, types, keys) included.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mangum import Mangum

from aimass.http.app import build_app, build_lambda_app
from aimass.http.lambda_adapter import lambda_handler
from aimass.http.lambda_direct import DirectHandler, read_event
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.serving.boot import load_models
from aimass.serving.registry import ModelRegistry
from aimass.settings import Plan, Settings
from tests.conftest import EVENTS, load_event
from tests.events.specs import RL_MODEL, TEXT_MODEL, VISION_MODEL
from tests.tiny_llm import TINY_LLM, build_tiny_llm
from tests.tiny_models import TINY_TEXT, build_tiny_text
from tests.tiny_rl import TINY_RL, build_tiny_rl
from tests.tiny_speech import TINY_SPEECH, build_tiny_speech
from tests.tiny_vision import TINY_VISION, build_tiny_vision

# The recorded model each event names, and the tiny model of its domain that answers it here.
TINY = {
    TEXT_MODEL: TINY_TEXT,
    RL_MODEL: TINY_RL,
    VISION_MODEL: TINY_VISION,
    "speech-commands": TINY_SPEECH,
    "smollm2-135m-instruct": TINY_LLM,
}
DOMAINS = ("text", "rl", "vision", "speech", "llm")
# The authorizer's event goes to the authorizer function, not to an app.
EVENT_NAMES = sorted(path.stem for path in EVENTS.glob("apigw_*.json") if path.stem != "apigw_authorizer_request")
# Beside the recorded events, requests only the FastAPI app's router answers: the document, its pages, a path
# nobody serves and a method a hot route does not take (the 405's Allow is read from the document).
DERIVED = {
    "get_openapi_document": "/openapi.json",
    "get_docs": "/docs",
    "get_unknown_path": "/v2/nowhere",
    "get_hot_route_path": f"/v2/models/{TINY_RL}/infer",
}
UNBILLED = frozenset({"get_openapi_document", "get_docs"})  # open paths: no key asked, no usage recorded
# What differs by design between two answers to one request: each request's own id (its header, the error
# document's ``request_id``, a completion's ``id``) and the second a completion was made in.
VARYING = frozenset({"x-request-id"})
VARYING_FIELDS = frozenset({"request_id", "created"})
COMPLETION_ID = ("chatcmpl-", "cmpl-")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelRegistry]:
    store = tmp_path_factory.mktemp("lean-parity-store")
    for build in (build_tiny_text, build_tiny_rl, build_tiny_vision, build_tiny_speech, build_tiny_llm):
        build(store)
    return store, load_models(Settings(model_store=store, domains=DOMAINS))


# A plan no replay reaches the limits of: both apps answer each request as the first.
UNLIMITED = {"default": Plan(rate_per_s=100_000, burst=100_000, monthly_units=10**9)}
# What a usage record says of a request, but when it came and how long it took.
BILLED = ("tenant", "key_id", "model", "version", "domain", "route", "unit", "units", "status", "billed", "cost")


@dataclass(frozen=True)
class Handlers:
    lean: Mangum
    full: Mangum
    direct: DirectHandler
    settings: Settings
    key: str | None  # the API key each event is sent with

    def billed(self, request_id: str) -> list[dict[str, object]]:
        usage, _ = open_usage(self.settings)
        now = datetime.now(UTC)
        records = usage.query(now - timedelta(days=1), now + timedelta(days=1))
        return [record.model_dump(include=set(BILLED)) for record in records if record.request_id == request_id]


@pytest.fixture(scope="module", params=["off", "keyless", "keyed"])
def handlers(
    request: pytest.FixtureRequest, registry: tuple[Path, ModelRegistry], tmp_path_factory: pytest.TempPathFactory
) -> Handlers:
    store, models = registry
    state = tmp_path_factory.mktemp(f"lean-parity-state-{request.param}")
    metering = "off" if request.param == "off" else "sqlite"
    settings = Settings(model_store=store, domains=DOMAINS, metering=metering, state_dir=state, plans=UNLIMITED)
    lean = Mangum(build_lambda_app(settings, registry=models), lifespan="off")
    full = Mangum(build_app(settings, in_lambda=True, registry=models), lifespan="off")
    direct = lambda_handler(build_lambda_app(settings, registry=models))
    assert isinstance(direct, DirectHandler)
    if request.param != "keyed":
        return Handlers(lean, full, direct, settings, None)
    keys, now = open_key_store(settings), datetime.now(UTC)
    issued = create_key(keys, tenant="acme", scopes=("invoke",), plan="default", plans=UNLIMITED, now=now)
    return Handlers(lean, full, direct, settings, issued.clear_text)


def event(name: str, key: str | None, app: str) -> dict[str, Any]:
    """The event ``name``, sent to ``app`` with ``key``: a request id of its own (the usage store answers a
    request id it has recorded as a retry)."""
    if name in DERIVED:  # the recorded REST GET /v1/models, sent to another path
        sent = load_event("apigw_rest_v1_models")
        sent["path"] = sent["resource"] = sent["requestContext"]["resourcePath"] = DERIVED[name]
        sent["requestContext"]["path"] = f"/prod{DERIVED[name]}"
        sent["requestContext"]["requestId"] += f"-{name}"
    else:
        raw = json.dumps(load_event(name))
        for real, tiny in TINY.items():
            raw = raw.replace(real, tiny)
        sent = json.loads(raw)
    sent["requestContext"]["requestId"] += f"-{app}"
    if key is not None:
        sent["headers"]["x-api-key"] = key
        if sent.get("multiValueHeaders"):
            sent["multiValueHeaders"]["x-api-key"] = [key]
    return sent


def answer(handler: Mangum | DirectHandler, sent: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler(sent, LocalLambdaContext())
    body = str(response.get("body") or "")
    headers = {key.lower(): value for key, value in (response.get("headers") or {}).items()}
    multi = {key.lower(): value for key, value in (response.get("multiValueHeaders") or {}).items()}
    return {
        "status": response["statusCode"],
        "headers": {key: value for key, value in headers.items() if key not in VARYING},
        "multi": {key: value for key, value in multi.items() if key not in VARYING},
        "body": comparable(base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()),
        "base64": response.get("isBase64Encoded", False),
    }


def comparable(body: bytes) -> object:
    """A JSON body with its varying fields blanked; any other body as it is."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    return _blank(document)


def _blank(value: object) -> object:
    if isinstance(value, dict):
        return {key: "..." if key in VARYING_FIELDS else _blank(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_blank(inner) for inner in value]
    if isinstance(value, str) and value.startswith(COMPLETION_ID):
        return "..."
    return value


@pytest.mark.parametrize("name", [*EVENT_NAMES, *DERIVED])
def test_lean_and_full_apps_answer_every_recorded_event_alike(handlers: Handlers, name: str) -> None:
    # GIVEN a recorded event WHEN the lean app and the FastAPI app answer it
    lean, full = event(name, handlers.key, "lean"), event(name, handlers.key, "full")
    # THEN every part of the answers is the same
    assert answer(handlers.lean, lean) == answer(handlers.full, full)
    # AND with a key, so is what each request is billed
    if handlers.key is not None:
        billed = handlers.billed(lean["requestContext"]["requestId"])
        assert len(billed) == (0 if name in UNBILLED else 1)
        assert billed == handlers.billed(full["requestContext"]["requestId"])


def _header(sent: dict[str, Any], name: str, value: str) -> None:
    sent["headers"][name] = value
    if sent.get("multiValueHeaders"):
        sent["multiValueHeaders"][name] = [value]


def _json_body(sent: dict[str, Any], body: str) -> None:
    sent["body"], sent["isBase64Encoded"] = body, False
    _header(sent, "content-length", str(len(body.encode())))


# Variants of events the direct path takes: each mends a copy of the recorded event.
VARIANTS: dict[str, tuple[str, Any]] = {
    "declared_length_not_digits": ("apigw_rest_v1_rl_infer", lambda e: _header(e, "content-length", "1_0")),
    "declared_length_over_limit": ("apigw_http_v2_rl_infer", lambda e: _header(e, "content-length", str(10**9))),
    "wrong_media_type": ("apigw_http_v2_text_embeddings", lambda e: _header(e, "content-type", "text/plain")),
    "json_with_latin1_charset": (
        "apigw_rest_v1_text_infer",
        lambda e: _header(e, "content-type", "application/json; charset=latin-1"),
    ),
    "no_media_type": ("apigw_http_v2_rl_infer", lambda e: e["headers"].pop("content-type", None)),
    "unknown_model": ("apigw_http_v2_rl_infer", lambda e: _retarget(e, "no-such-model")),
    "pinned_version_unknown": ("apigw_rest_v1_rl_infer", lambda e: _pin(e, "99")),
    "not_json": ("apigw_http_v2_rl_infer", lambda e: _json_body(e, '{"inputs": [')),
    "embeddings_of_nothing": ("apigw_http_v2_text_embeddings", lambda e: _json_body(e, '{"model": "x"}')),
    "client_request_id": ("apigw_http_v2_rl_infer", lambda e: _header(e, "x-request-id", "client-id.42")),
    "client_request_id_refused": ("apigw_http_v2_rl_infer", lambda e: _header(e, "x-request-id", "bad id!")),
    "cookies_and_non_ascii_header": ("apigw_http_v2_rl_infer", lambda e: _cookies_and_note(e)),
    "prefers_async": ("apigw_rest_v1_text_infer", lambda e: _header(e, "prefer", "respond-async")),
    "wrong_key": ("apigw_http_v2_rl_infer", lambda e: _header(e, "x-api-key", "am_wrong")),
    "get_on_infer": ("apigw_http_v2_rl_infer", lambda e: e["requestContext"]["http"].update(method="GET")),
    "trailing_slash": ("apigw_rest_v1_rl_infer", lambda e: e.update(path=e["path"] + "/")),
}


def _cookies_and_note(sent: dict[str, Any]) -> None:
    sent["cookies"] = ["a=1", "b=2"]
    _header(sent, "x-note", "café")


def _retarget(sent: dict[str, Any], model: str) -> None:
    sent["rawPath"] = sent["rawPath"].replace(TINY_RL, model)
    sent["requestContext"]["http"]["path"] = sent["requestContext"]["http"]["path"].replace(TINY_RL, model)


def _pin(sent: dict[str, Any], version: str) -> None:
    sent["path"] = sent["path"].replace("/infer", f"/versions/{version}/infer")


def variant(name: str, key: str | None, app: str) -> dict[str, Any]:
    recorded, mend = VARIANTS[name]
    sent = event(recorded, key, app)
    sent["requestContext"]["requestId"] += f"-{name}"
    mend(sent)
    return sent


@pytest.mark.parametrize("name", [*EVENT_NAMES, *DERIVED, *VARIANTS])
def test_the_functions_handler_answers_every_event_as_its_lean_app(handlers: Handlers, name: str) -> None:
    # GIVEN an event (recorded, or a variant of one the direct path takes)
    make = variant if name in VARIANTS else event
    # (app names of one length: an answer that quotes its request id is as long on either)
    direct, lean = make(name, handlers.key, "direct"), make(name, handlers.key, "asgi00")
    # WHEN the function's handler and Mangum over its lean app answer it THEN every part of the answers is the same
    assert answer(handlers.direct, direct) == answer(handlers.lean, lean)
    # AND with a key, so is what each request is billed
    if handlers.key is not None:
        assert handlers.billed(direct["requestContext"]["requestId"]) == handlers.billed(
            lean["requestContext"]["requestId"]
        )


def test_the_direct_path_takes_the_inference_routes_and_leaves_the_rest(handlers: Handlers) -> None:
    # GIVEN the function's handler WHEN each recorded event is routed THEN V2 infer, embeddings and the tasks' JSON
    # requests are its own; forms (a transcription, a multipart image), chat, metadata and listings are not
    taken = {
        name
        for name in EVENT_NAMES
        if (request := read_event(event(name, None, "direct"))) is not None
        and handlers.direct.app.route(request) is not None
    }
    assert taken == {
        "apigw_http_v2_rl_act",
        "apigw_http_v2_rl_act_bad_nan",
        "apigw_http_v2_rl_infer",
        "apigw_http_v2_rl_infer_binary",
        "apigw_http_v2_speech_transcribe",
        "apigw_http_v2_speech_transcribe_bad_file",
        "apigw_http_v2_tensor_infer",
        "apigw_http_v2_text_bad_json",
        "apigw_http_v2_text_embeddings",
        "apigw_http_v2_text_infer",
        "apigw_http_v2_text_infer_binary",
        "apigw_http_v2_vision_classify",
        "apigw_http_v2_vision_infer_binary",
        "apigw_rest_v1_rl_act",
        "apigw_rest_v1_rl_infer",
        "apigw_rest_v1_rl_infer_binary",
        "apigw_rest_v1_speech_infer_binary",
        "apigw_rest_v1_text_infer",
        "apigw_rest_v1_text_infer_binary",
        "apigw_rest_v1_vision_infer",
    }


def test_an_unexpected_error_is_the_same_500_on_either_path(
    handlers: Handlers, registry: tuple[Path, ModelRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a registry that fails in a way no error of AI Mass describes
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(registry[1], "get", broken)
    # WHEN an inference event reaches the function's handler and the lean app
    name = "apigw_http_v2_rl_infer"
    direct, lean = event(name, handlers.key, "direct"), event(name, handlers.key, "asgi00")
    got = answer(handlers.direct, direct)
    # THEN both answer the same 500, which names no detail but the request id to quote (without a key: the 401)
    assert got == answer(handlers.lean, lean)
    if handlers.settings.metering != "off" and handlers.key is None:
        assert got["status"] == 401
        return
    assert got["status"] == 500 and "disk on fire" not in str(got["body"])
    assert "request id" in str(got["body"])
