"""The two ends of every measurement: a domain's Lambda handler as deployed, and its bare ONNX Runtime engine."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from aimass.errors import AimassError
from aimass.serving.domains import runtime_class
from aimass.serving.runtime import ModelRuntime, Prediction
from aimass.serving.session import SessionFactory
from aimass.settings import Settings, get_settings
from aimass.store.base import ModelArtifact
from aimass.store.local import LocalModelStore
from bench.common import swapped
from bench.workload import REPO, Array, Feeds, Outputs, Workload
from models.catalogue import catalogue

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # build_app's
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def handler_file(domain: str) -> Path:
    return REPO / "functions" / domain / "handler.py"


def handler_env(store: Path, domain: str) -> dict[str, str]:
    """The environment a domain's function sets (see functions/<domain>/Dockerfile).

    Metering off: this bench measures the serving stack over the raw engine; what keys and usage records add
    is bench/metering.py's to measure.
    """
    return {"AIMASS_MODEL_STORE": str(store), "AIMASS_DOMAINS": json.dumps([domain]), "AIMASS_METERING": "off"}


def find_model(store: Path, workload: Workload[Any]) -> ModelArtifact:
    """The catalogued model of the workload's domain, at the version this checkout builds, verified."""
    entries = [e for e in catalogue() if e.domain == workload.domain and workload.model in (None, e.name)]
    if len(entries) != 1:
        found = [e.name for e in entries]
        raise AimassError(f"{workload.domain}: expected one catalogued model, found {found}; set Workload.model")
    entry = entries[0]
    local = LocalModelStore(store)
    if entry.version not in (local.versions(entry.name) if entry.name in local.model_names() else []):
        raise AimassError(f"{entry.name} v{entry.version} is not in {store}; build it: make models")
    return local.fetch(entry.name, entry.version)


@dataclass(frozen=True)
class LoadedHandler:
    handler: Handler
    sessions: dict[str, ort.InferenceSession]  # the ONNX Runtime sessions its app created, by label


def load_handler(domain: str) -> LoadedHandler:
    """Import functions/<domain>/handler.py as a new Lambda container does (AIMASS_* must be set already).

    ModelRuntime.engine_session is watched while it loads (whether it builds the session or takes the one its
    head start built), so that the floor can run on the handler's own session: two sessions of one model with
    the same options do not run equally fast (in one process the first one created ran 0.1-0.35 ms slower than
    later ones here), which would pass for stack overhead.
    """
    get_settings.cache_clear()
    silence_logs()
    created: dict[str, ort.InferenceSession] = {}
    engine_session = ModelRuntime.engine_session

    def watched(self: ModelRuntime) -> ort.InferenceSession:
        session = engine_session(self)
        created[self.label] = session
        return session

    with swapped(ModelRuntime, "engine_session", watched):
        module = _exec_handler(domain, f"handler_{domain}")
        module.models.wait_loaded()  # the handler's models load on a thread (aimass.serving.boot.start_loading)
    get_settings.cache_clear()
    return LoadedHandler(handler=module.handler, sessions=created)


def _exec_handler(domain: str, module_name: str) -> Any:
    spec = importlib.util.spec_from_file_location(module_name, handler_file(domain))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ (and the settings read afresh from it) for the block; then as they were."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def import_handler(domain: str, env: Mapping[str, str], *, variant: str) -> Any:
    """functions/<domain>/handler.py imported afresh under ``env``, as a container with that environment does.

    Each ``variant`` is a module of its own, with its own app and models: one process can hold the same
    handler configured several ways (metering off and on) and call them in turns. Returns the module; its
    ``handler`` is what Lambda calls.
    """
    silence_logs()
    with environment(env):
        return _exec_handler(domain, f"handler_{domain}_{variant}")


def silence_logs() -> None:
    """Configure logging as build_app does, but into /dev/null instead of the terminal.

    What the app logs per request is still formatted and written, so its cost stays in the numbers (in
    Lambda the lines go to CloudWatch), but the bench's tables stay readable. build_app's own basicConfig
    call then finds the root logger configured and leaves it alone.
    """
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sink)


class RawEngine:
    """The floor: the model's ONNX Runtime session, without HTTP, Mangum, FastAPI or the protocols.

    The domain's own runtime is built with the project's SessionFactory, so the codecs, the graph and the
    session options are exactly those the handler serves with. The handler's own session (from
    ``load_handler``) replaces the one built here, which stays available as ``separate_session``. Every
    domain runtime keeps its session as ``runtime.session``.
    """

    def __init__(
        self, artifact: ModelArtifact, settings: Settings, handler_sessions: Mapping[str, ort.InferenceSession]
    ):
        self.runtime: ModelRuntime = runtime_class(artifact.manifest.domain)(artifact, SessionFactory(settings))
        self.runtime.load()
        self.separate_session: ort.InferenceSession = getattr(self.runtime, "session")  # noqa: B009
        own = handler_sessions.get(self.runtime.label)
        if own is None:
            raise AimassError(
                f"the handler created no session for {self.runtime.label} (it made {list(handler_sessions)})"
            )
        self.runtime.session = own  # type: ignore[attr-defined]
        self.outputs = [spec.name for spec in artifact.manifest.engine.outputs]

    @property
    def session(self) -> ort.InferenceSession:
        session: ort.InferenceSession = getattr(self.runtime, "session")  # noqa: B009
        return session

    def run(self, feeds: Feeds, session: ort.InferenceSession | None = None) -> Outputs:
        values = (session or self.session).run(self.outputs, feeds)
        return dict(zip(self.outputs, values, strict=True))

    def predict(self, inputs: Mapping[str, Array]) -> Prediction:
        """The runtime alone: the domain's codec and the run, as the protocol layer calls it."""
        return self.runtime.predict(inputs)


# Session config entries SessionFactory sets; the floor probe applies the same ones.
SESSION_CONFIG_KEYS = ("session.intra_op.allow_spinning",)


def session_options_spec(settings: Settings) -> dict[str, Any]:
    """The project's session options as plain data, for a probe that must not import the project."""
    options = SessionFactory(settings).options()
    return {
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "execution_mode": options.execution_mode.name,
        "graph_optimization_level": options.graph_optimization_level.name,
        "config": {key: options.get_session_config_entry(key) for key in SESSION_CONFIG_KEYS},
    }
