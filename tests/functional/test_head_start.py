"""A cold start's head start (``aimass.serving.head_start``): a function's handler builds the session of the model
it will serve while its code is imported, and the first load takes it only where the bytes it was built from are
the ones the validated manifest declares, with the engine options the settings ask for. Each case runs the rl
handler in a fresh interpreter, as a new Lambda container does, over a tiny policy baked into its "image".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import pytest

from aimass.serving.boot import open_registry
from aimass.serving.head_start import HEAD_START
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.manifest import read_manifest
from tests.conftest import load_event
from tests.events.specs import RL_MODEL
from tests.moto_server import MotoServer
from tests.rl_cold_start import cold_start
from tests.tiny_rl import TINY_RL, build_tiny_rl

BUILT_AHEAD = "model.onnx was built ahead"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    build_tiny_rl(tmp_path / "store")
    return tmp_path / "store"


def cold_answer(store: Path, **env: str) -> tuple[dict[str, Any], str]:
    """The rl handler's answer to one V2 inference in a fresh interpreter over ``store``, and what it logged."""
    event = load_event("apigw_rest_v1_rl_infer", model=TINY_RL, recorded=RL_MODEL)
    started = cold_start(store, [event], **env)
    answer: dict[str, Any] = started.answers[1]["response"]
    return answer, started.logged


def test_the_first_load_takes_the_session_built_ahead(store: Path) -> None:
    # GIVEN a store whose policy is as its manifest declares WHEN a fresh function answers its first inference
    answer, logged = cold_answer(store)
    # THEN it answers from the session the head start built, which the load took over
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["model_name"] == TINY_RL
    assert BUILT_AHEAD in logged


def test_a_stray_file_beside_the_models_does_not_stop_the_head_start(store: Path) -> None:
    # GIVEN a file at the top of the store, which the store itself does not take for a model
    (store / "README.txt").write_text("models built here")
    # WHEN a fresh function answers its first inference
    answer, logged = cold_answer(store)
    # THEN the policy's session was still built ahead
    assert answer["statusCode"] == 200, answer
    assert BUILT_AHEAD in logged


def test_a_function_over_its_bucket_takes_the_session_built_from_its_image(store: Path, moto: MotoServer) -> None:
    # GIVEN the deployed configuration: a bucket store (empty: nothing published yet) seeded by the image's store
    moto.bucket("models")
    # WHEN a fresh function answers its first inference
    answer, logged = cold_answer(store, AIMASS_MODEL_BUCKET="models", **moto.environment())
    # THEN the bucket serves the image's version, from the session built ahead of the load
    assert answer["statusCode"] == 200, answer
    assert BUILT_AHEAD in logged


def test_a_graph_that_is_not_the_one_its_manifest_declares_is_refused_as_before(store: Path) -> None:
    # GIVEN the policy's graph replaced by another valid graph after its manifest was written
    path = store / TINY_RL / "1" / "model.onnx"
    graph = onnx.load(str(path))
    graph.doc_string = "not the graph the manifest declares"
    onnx.save(graph, str(path))
    # WHEN a fresh function answers its first inference
    answer, logged = cold_answer(store)
    # THEN the head start's session (which it could build) is not used, and the load refuses the version
    assert BUILT_AHEAD not in logged
    assert answer["statusCode"] == 503, answer
    assert "does not match the manifest" in logged


def test_a_setting_the_head_start_cannot_read_leaves_the_work_to_the_load(store: Path) -> None:
    # GIVEN a thread count the settings read (whitespace stripped) and the head start does not
    # WHEN a fresh function answers its first inference
    answer, logged = cold_answer(store, AIMASS_INTRA_OP_THREADS=" 1")
    # THEN nothing was built ahead: the load did it all, as it would have
    assert BUILT_AHEAD not in logged
    assert answer["statusCode"] == 200, answer


def test_a_session_no_load_claims_is_dropped_once_the_first_load_is_over(store: Path) -> None:
    # GIVEN the head start building the rl policy of a store, and a process that serves only the tensor domain
    thread = HEAD_START.run({"AIMASS_MODEL_STORE": str(store), "AIMASS_DOMAINS": '["rl"]'})
    assert thread is not None
    thread.join(timeout=60)
    settings = Settings(model_store=store, domains=("tensor",), metering="off")
    registry = open_registry(settings)
    digest = read_manifest(store / TINY_RL / "1").file("model.onnx").sha256
    spec = SessionFactory(settings).spec()
    # WHEN its first load is over (it loads nothing of the rl domain)
    registry.load_all()
    # THEN the session built ahead is gone: no later load can be handed it
    assert HEAD_START.claim(digest, spec) is None
    assert registry.names() == []


def test_a_session_is_handed_over_once(store: Path) -> None:
    # GIVEN the head start building a policy WHEN a load claims its session, then another one does
    thread = HEAD_START.run({"AIMASS_MODEL_STORE": str(store), "AIMASS_DOMAINS": '["rl"]'})
    assert thread is not None
    thread.join(timeout=60)
    spec = SessionFactory(Settings(model_store=store, domains=("rl",), metering="off")).spec()
    digest = read_manifest(store / TINY_RL / "1").file("model.onnx").sha256
    first = HEAD_START.claim(digest, spec)
    second = HEAD_START.claim(digest, spec)
    HEAD_START.release()
    # THEN the first gets the session and the second builds its own
    assert first is not None and [node.name for node in first.get_inputs()] == ["observation"]
    assert second is None
