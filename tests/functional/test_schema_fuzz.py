"""Every operation of the OpenAPI document, fuzzed in process with schemathesis: the document is the truth.

The app is the real one (build_app) over a tiny model of every domain, with metering on (SQLite in a temporary
state folder) and an admin key on every request, so that routes behind the key check are exercised past it.
Each operation gets schema-valid and schema-violating requests (its documented examples, the coverage phase's
boundary values and undeclared methods, then random ones), derandomized with a fixed seed so a run is the same
run every time. A failure is any 5xx, any answer the document does not describe (its status, its body's
schema, its content type, its documented headers), a schema-violating request answered 2xx, a 405 without the
right Allow header, or any answer slower than 5 s; on the operations whose document states every rule they
apply (ACCEPTS_ALL_IT_DOCUMENTS), also a schema-valid request refused as invalid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Plan, Settings
from tests.tiny_models import TINY_TEXT, build_tiny_text
from tests.tiny_rl import TINY_RL, build_tiny_rl
from tests.tiny_speech import TINY_SPEECH, build_tiny_speech
from tests.tiny_vision import TINY_VISION, build_tiny_vision

SEED = 20261205
# Random requests per operation, after its documented examples and the coverage phase's cases. Each one runs the
# real app in process, its key check and usage record included: with the document's 55 operations, 100 took 70 s
# of the suite on two cores and 60 takes 47 s (when there were 21, 300 found nothing that 100 had not).
MAX_EXAMPLES = 60
SLOWEST_S = 5.0
# A rate and quota the fuzzer never reaches: it is here to find wrong answers, not to meet the plan's limits
# (429s are documented; their own tests are in test_metering.py).
UNLIMITED = {"default": Plan(rate_per_s=1e9, burst=10**9, monthly_units=10**15)}
# The operations whose every schema-valid request is served (or a 401, 403, 404, 409 or 429 on its merits).
ACCEPTS_ALL_IT_DOCUMENTS = [
    "GET /v1/admin/keys",
    "POST /v1/admin/keys/{key_id}/revoke",
    "POST /v1/admin/keys/{key_id}/rotate",
]
# The operations whose body is a multipart form with a file in it.
TAKES_FILES = ["POST /v1/files", "POST /v1/uploads/{upload_id}/parts"]
MODELS = [TINY_TEXT, TINY_VISION, TINY_SPEECH, TINY_RL]
BUILDERS: tuple[Callable[[Path], object], ...] = (build_tiny_text, build_tiny_vision, build_tiny_speech, build_tiny_rl)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    store = tmp_path_factory.mktemp("fuzz-store")
    for build in BUILDERS:
        build(store)
    settings = Settings(
        model_store=store,
        metering="sqlite",
        state_dir=tmp_path_factory.mktemp("fuzz-state"),
        plans=UNLIMITED,
        alias_check_s=0,
        max_body_bytes=256 * 1024,
    )
    issued = create_key(
        open_key_store(settings), tenant="fuzz", scopes=("invoke", "admin"), plan="default", plans=UNLIMITED,
        now=datetime.now(UTC),
    )  # fmt: skip
    now = int(time.time())
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {issued.clear_text}"},
            # Served names and a recent day most of the time, so that requests get past the model lookup to
            # the data plane, and usage queries to the store.
            "dictionaries": {
                "models": {"values": MODELS},
                "versions": {"values": ["1"]},
                "since": {"values": [str(now - 86400), str(now - 3600)]},
                "until": {"values": [str(now), str(now + 3600)]},
            },
            "parameters": {
                "path.name": {"dictionary": "models", "probability": 0.9},
                "path.version": {"dictionary": "versions", "probability": 0.9},
                "body.model": {"dictionary": "models", "probability": 0.9},
                "query.start_time": {"dictionary": "since", "probability": 0.8},
                "query.end_time": {"dictionary": "until", "probability": 0.8},
            },
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                # Every check: no 5xx, statuses, body schemas, content types and headers as documented,
                # schema-violating requests refused, 405s with a right Allow header...
                "enabled": True,
                "max_response_time": SLOWEST_S,
                # ...but one: a request the schema allows may still be refused for what a schema cannot say
                # (a tensor's shape must fit the model's, an image must decode, end_time must follow start_time,
                # a new key's expires_at must be in the future and its plan one the server is configured with)...
                "positive_data_acceptance": {"enabled": False},
            },
            # ...except where the document says all there is: there, a schema-valid request is never a 400.
            "operations": [
                *(
                    {"include-name": name, "checks": {"positive_data_acceptance": {"enabled": True}}}
                    for name in ACCEPTS_ALL_IT_DOCUMENTS
                ),
                # A multipart part carries bytes, not JSON types: a "file" the fuzzer makes an integer arrives as
                # a file of digits, which is a file. Every other check holds there.
                *(
                    {"include-name": name, "checks": {"negative_data_rejection": {"enabled": False}}}
                    for name in TAKES_FILES
                ),
            ],
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", build_app(settings), config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's fixture-loaded schemas read the test's node id from the attribute pytest before 9
    # kept it in; give it the id (schemathesis then writes each operation's id there for its reports).
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
