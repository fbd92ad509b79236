"""Shared fixtures: a store holding the tiny text model, the app over it, and an HTTP client."""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings, get_settings
from models.catalogue import catalogue
from tests.moto_server import MotoServer
from tests.moto_server import start as start_moto
from tests.tiny_models import build_tiny_text

ROOT = Path(__file__).resolve().parents[1]

# Tests of serving, protocols and models run without API keys; the metering tests (tests/*/test_metering*.py)
# turn it on with their own state folder. Set before anything reads the settings, and inherited by the
# servers and CLIs the tests start as subprocesses.
os.environ.setdefault("AIMASS_METERING", "off")
# The CLIs' tables and lines as a wide terminal shows them, whether or not the run has a terminal (rich reads
# COLUMNS where it has none; a pytest-xdist worker never has one): the tests read whole rows and sentences.
os.environ.setdefault("COLUMNS", "200")


# `make test` runs two pytest-xdist workers, each taking whole groups of tests: a test file, or one of these
# folders, whose tests share a costly session fixture (the CDK app synthesized with jsii started; the console's
# server, browser and screenshots folder), so that it is made once.
ONE_WORKER_FOLDERS = ("tests/infra/", "tests/browser/")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class FileOrFolderScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((folder for folder in ONE_WORKER_FOLDERS if path.startswith(folder)), path)

    return FileOrFolderScheduling(config, log)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    build_tiny_text(store)
    return store


@pytest.fixture(scope="session")
def settings(tiny_store: Path) -> Settings:
    return Settings(model_store=tiny_store, max_body_bytes=64 * 1024, max_batch_items=32)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return build_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


EVENTS = Path(__file__).parent / "events"
REAL_MODEL = "all-minilm-l6-v2"


def load_event(name: str, *, model: str | None = None, recorded: str = REAL_MODEL) -> dict[str, Any]:
    """A generated API Gateway event (tests/events); with ``model``, retargeted from the ``recorded`` model it names."""
    raw = (EVENTS / f"{name}.json").read_text()
    event: dict[str, Any] = json.loads(raw if model is None else raw.replace(recorded, model))
    return event


def response_body(response: dict[str, Any]) -> bytes:
    """A Lambda proxy response's body as bytes (API Gateway responses carry binary ones base64-encoded)."""
    raw = str(response["body"])
    return base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext()


def import_handler(store: Path, monkeypatch: pytest.MonkeyPatch, domain: str = "text") -> ModuleType:
    """Import functions/<domain>/handler.py afresh, as a new Lambda container would, over ``store``."""
    monkeypatch.setenv("AIMASS_MODEL_STORE", str(store))
    monkeypatch.setenv("AIMASS_DOMAINS", json.dumps([domain]))
    get_settings.cache_clear()
    module = load_script(ROOT / f"functions/{domain}/handler.py", f"{domain}_handler")
    get_settings.cache_clear()
    return module


def load_script(path: Path, name: str) -> ModuleType:
    """Import a file that is not on the import path (a handler, a build script) as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@functools.cache
def build_domain_models(domain: str) -> Path:
    """Every catalogued model of ``domain``, built once per checkout into the repository's store (each build
    is a no-op when its verified model is already there); returns the store."""
    store = ROOT / "model_store"
    entries = [entry for entry in catalogue() if entry.domain == domain]
    assert entries, f"no catalogued model of domain '{domain}'"
    for entry in entries:
        load_script(entry.build_script, f"build_{entry.domain}_{entry.build_script.parent.name}").build(store)
    return store


@pytest.fixture(scope="session")
def real_model_store() -> Path:
    """The real text model, built once per checkout by its own build script (a no-op when present)."""
    return build_domain_models("text")


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    yield from start_moto()


@pytest.fixture
def moto(moto_session: MotoServer) -> MotoServer:
    """moto's standalone server on 127.0.0.1, emptied for this test."""
    moto_session.reset()
    return moto_session
