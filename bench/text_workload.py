"""The text benchmark's workload: sentences, API Gateway events, the model, the handler and the raw engine."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from aimass.domains import runtime_class
from aimass.errors import AimassError
from aimass.manifest import ModelManifest
from aimass.runtime import Tensor
from aimass.session import SessionFactory
from aimass.settings import Settings, get_settings
from aimass.store import LocalModelStore, ModelArtifact
from bench.common import swapped

if TYPE_CHECKING:
    from aimass_text.runtime import TextEmbeddingRuntime

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "events"
HANDLER_FILE = REPO / "functions" / "text" / "handler.py"
DOMAIN = "text"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # build_app's

# Varied English sentences of 8-20 words: what an embedding endpoint sees, not one repeated string.
SENTENCES: tuple[str, ...] = (
    "A man is playing a guitar on the corner of a busy street.",
    "The quarterly report shows revenue grew by twelve percent compared with last year.",
    "Please remind me to call the dentist tomorrow morning before nine.",
    "The new library opens on Saturday with a reading for children.",
    "Heavy rain is expected across the north of the country this weekend.",
    "She finished the marathon in under four hours despite a sore knee.",
    "How do I reset my password if I no longer have access to my email?",
    "The committee postponed its decision on the bridge until the spring.",
    "Our flight was delayed because of a technical problem with the engine.",
    "Fresh basil and ripe tomatoes make the simplest summer pasta sauce.",
    "The museum has added a gallery of photographs from the early twentieth century.",
    "Researchers found that the enzyme breaks down plastic faster at higher temperatures.",
    "Can you recommend a quiet hotel near the train station?",
    "The striker scored twice in the second half to win the match.",
    "Interest rates were left unchanged at the central bank's meeting on Thursday.",
    "My laptop battery drains quickly when several browser tabs are open.",
    "The old lighthouse was converted into a small guest house last year.",
    "Children learn a second language more easily when they start young.",
    "The software update fixes a bug that caused the app to crash on start.",
    "A gentle breeze carried the smell of the sea through the open window.",
    "Volunteers planted two hundred trees along the river on Sunday afternoon.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Traffic on the motorway was slow after an accident near the junction.",
    "He apologised for missing the meeting and asked for the notes.",
    "The telescope captured detailed images of a distant spiral galaxy.",
    "Customers can return unused items within thirty days for a full refund.",
    "The orchestra will perform a new symphony by a young local composer.",
    "Drinking enough water during the day helps you stay focused at work.",
    "The startup raised money to expand its delivery service to three more cities.",
    "Snow closed the mountain pass, so the hikers turned back early.",
    "The contract must be signed by both parties before work can begin.",
    "A small cat sat on the windowsill watching the birds in the garden.",
)
SINGLE = SENTENCES[0]


@dataclass(frozen=True)
class Route:
    """One way to ask for embeddings: the recorded event it is sent as and how its body is written."""

    name: str
    template: str  # a recorded API Gateway HTTP API (v2) event under tests/events

    def path(self, model: str) -> str:
        return f"/v2/models/{model}/infer" if self.name == "v2" else "/v1/embeddings"

    def body(self, manifest: ModelManifest, texts: Sequence[str]) -> bytes:
        if self.name == "v2":
            text_input = manifest.inputs[0].name
            document: dict[str, Any] = {
                "inputs": [{"name": text_input, "shape": [len(texts)], "datatype": "BYTES", "data": list(texts)}]
            }
        else:
            document = {"input": texts[0] if len(texts) == 1 else list(texts), "model": manifest.name}
        return json.dumps(document).encode()

    def event(self, manifest: ModelManifest, texts: Sequence[str]) -> dict[str, Any]:
        return api_gateway_event(self.template, self.path(manifest.name), self.body(manifest, texts))

    def embeddings(self, body: bytes | str) -> npt.NDArray[np.float32]:
        """The vectors in a response body of this route."""
        document = json.loads(body)
        if self.name == "v2":
            rows = document["outputs"][0]["data"]
            shape = document["outputs"][0]["shape"]
            return np.asarray(rows, dtype=np.float32).reshape(shape)
        return np.asarray([item["embedding"] for item in document["data"]], dtype=np.float32)


V2 = Route("v2", "apigw_http_v2_text_infer")
OPENAI = Route("openai", "apigw_http_v2_text_embeddings")
ROUTES = (V2, OPENAI)


@cache
def _template(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def api_gateway_event(template: str, path: str, body: bytes) -> dict[str, Any]:
    """A recorded HTTP API (v2) event with its path and body replaced."""
    event = copy.deepcopy(_template(template))
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    event["headers"]["content-length"] = str(len(body))
    return event


def handler_env(store: Path) -> dict[str, str]:
    """The environment the text function sets (see functions/text/Dockerfile)."""
    return {"AIMASS_MODEL_STORE": str(store), "AIMASS_DOMAINS": json.dumps([DOMAIN])}


def find_model(store: Path) -> ModelArtifact:
    """The store's text embedding model, verified."""
    local = LocalModelStore(store)
    for name in local.model_names():
        artifact = local.fetch(name, local.versions(name)[-1])
        if (artifact.manifest.domain, artifact.manifest.task) == (DOMAIN, "embedding"):
            return artifact
    raise AimassError(f"no text embedding model in {store}; build one: make models")


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LoadedHandler:
    handler: Handler
    sessions: list[ort.InferenceSession]  # the ONNX Runtime sessions its app created, in order


def load_handler() -> LoadedHandler:
    """Import functions/text/handler.py as a new Lambda container does (AIMASS_* must be set already).

    SessionFactory.create is watched while it loads, so that the floor can run on the handler's own
    session: two sessions of one model with the same options do not run equally fast (in one process the
    first one created ran 0.1-0.35 ms slower than later ones here), which would pass for stack overhead.
    """
    get_settings.cache_clear()
    silence_logs()
    created: list[ort.InferenceSession] = []
    create = SessionFactory.create

    def watched(self: SessionFactory, model: bytes, *, label: str) -> ort.InferenceSession:
        session = create(self, model, label=label)
        created.append(session)
        return session

    spec = importlib.util.spec_from_file_location("handler", HANDLER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with swapped(SessionFactory, "create", watched):
        spec.loader.exec_module(module)
    get_settings.cache_clear()
    return LoadedHandler(handler=module.handler, sessions=created)


def silence_logs() -> None:
    """Configure logging as build_app does, but into /dev/null instead of the terminal.

    Mangum logs one INFO line per request; it is still formatted and written, so its cost stays in the
    numbers (in Lambda the line goes to CloudWatch), but the bench's tables stay readable. build_app's own
    basicConfig call then finds the root logger configured and leaves it alone.
    """
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sink)


class RawEngine:
    """The floor: an ONNX Runtime session of the model, without HTTP, Mangum, FastAPI or the protocols.

    Built by the project's text runtime with the project's SessionFactory, so the tokenizer configuration,
    graph and session options are exactly those the handler serves with. ``session`` (the handler's own,
    from ``load_handler``) replaces the one built here, which stays available as ``separate_session``.
    """

    def __init__(
        self, artifact: ModelArtifact, settings: Settings, *, session: ort.InferenceSession | None = None
    ) -> None:
        # Found the way the server finds it; typed as what the text domain is.
        self.runtime = cast("TextEmbeddingRuntime", runtime_class(DOMAIN)(artifact, SessionFactory(settings)))
        self.runtime.load()
        self.separate_session: ort.InferenceSession = self.runtime.session
        if session is not None:
            self.runtime.session = session
        self.output = artifact.manifest.engine.outputs[0].name

    @property
    def session(self) -> ort.InferenceSession:
        return self.runtime.session

    def feeds(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        """Tokenise as the runtime does (dynamic padding, same truncation), once, outside any timed loop."""
        encodings = self.runtime.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: tensors[name] for name in self.runtime.feeds}

    def run(self, feeds: dict[str, npt.NDArray[np.int64]], session: ort.InferenceSession | None = None) -> Tensor:
        (embeddings,) = (session or self.session).run([self.output], feeds)
        result: Tensor = embeddings
        return result

    def predict(self, texts: Sequence[str]) -> Tensor:
        """Tokenise and run: the engine's own end-to-end cost for a batch."""
        batch = np.empty(len(texts), dtype=object)
        batch[:] = [text.encode() for text in texts]
        prediction = self.runtime.predict({self.runtime.text_input: batch})
        return prediction.outputs[self.runtime.served_output]


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
