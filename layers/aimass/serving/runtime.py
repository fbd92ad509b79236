"""The one runtime interface every domain implements.

A domain (text, vision, speech, rl, ...) is a small ``ModelRuntime`` subclass: it loads its model version
and turns named input tensors into named output tensors. It writes no protocol code: the V2, OpenAI-shaped
and task endpoints in ``aimass.protocol`` validate the wire format against the manifest and call
``predict`` with numpy arrays (BYTES tensors arrive as object arrays of ``bytes``).

What every domain's ``load`` starts with is written here once: ``preprocessing`` reads the manifest's
``preprocessing`` block as the domain's own pydantic model, and ``engine_session`` opens the version's graph
and checks it against the manifest, so a domain's ``load`` is only what it adds:

    def load(self) -> None:
        self.pre = self.preprocessing(SpeechPreprocessing)
        self.session = self.engine_session()

A runtime of another engine (the manifest's ``engine.format``; ``aimass.serving.domains`` picks the class)
opens that engine itself, from ``engine_files``: the version's engine files as paths that never touch a
disk. The store, checksums, decryption, validation samples, hot swaps and metering are the same for it.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import BaseModel, ValidationError

from aimass.errors import ModelLoadError
from aimass.serving.memory_files import MemoryFiles
from aimass.serving.observed import Observed
from aimass.serving.session import SessionFactory, check_signature
from aimass.serving.tasks import TaskSpec
from aimass.store.base import ModelArtifact
from aimass.store.manifest import ModelManifest

Tensor = npt.NDArray[np.generic]
Schema = TypeVar("Schema", bound=BaseModel)
# What clients read when a version's preprocessing block is refused; the detail (pydantic's) is the operator's.
INVALID_PREPROCESSING = "its manifest's preprocessing block is invalid"


@dataclass(frozen=True)
class Prediction:
    outputs: dict[str, Tensor]
    # Billable counts the domain knows best, e.g. {"prompt_tokens": 17} for text.
    usage: dict[str, int] = field(default_factory=dict)
    # The same counts per row of the first input, where the domain knows them (text: each string's tokens):
    # what lets requests run as one engine batch be billed apart (aimass.batches.coalesce).
    per_item: dict[str, list[int]] = field(default_factory=dict)


class ModelRuntime(ABC):
    """Serves one model version. Subclasses load in ``load`` and must keep ``predict`` thread-safe."""

    # The usage count a request is billed by (a key of Prediction.usage / TaskResult.usage); None: the only
    # one the runtime reports (see aimass.metering.meter).
    billing_unit: ClassVar[str | None] = None

    def __init__(self, artifact: ModelArtifact, sessions: SessionFactory) -> None:
        self.artifact = artifact
        self.sessions = sessions
        self.observed = Observed()  # what it has served here (aimass.metering.meter.measured notes each call)

    @property
    def manifest(self) -> ModelManifest:
        return self.artifact.manifest

    @property
    def label(self) -> str:
        return f"model '{self.manifest.name}' version {self.manifest.version}"

    def preprocessing(self, schema: type[Schema]) -> Schema:
        """The manifest's ``preprocessing`` block as ``schema``; a block it refuses is a ModelLoadError."""
        try:
            return schema.model_validate(self.manifest.preprocessing)
        except ValidationError as exc:
            raise ModelLoadError(f"{self.label}: invalid preprocessing: {exc}", public=INVALID_PREPROCESSING) from None

    def engine_session(self) -> ort.InferenceSession:
        """An ONNX Runtime session of the manifest's engine file, refused unless its graph has the engine's
        declared inputs and outputs (names and datatypes)."""
        engine = self.manifest.engine
        # Built while the graph's hash is checked beside it (ModelArtifact.use), unless a cold start's head start
        # already built it from the bytes the manifest declares.
        session = self.sessions.built_ahead(self.manifest, engine.file)
        if session is None:
            session = self.artifact.use(engine.file, lambda graph: self.sessions.create(graph, label=self.label))
        check_signature(session, engine.inputs, engine.outputs, self.label)
        return session

    def engine_files(self) -> MemoryFiles:
        """The engine's files as in-memory files opened by path: ``engine.file`` under the key ``file``, each of
        ``engine.parts`` under its own key. Each is checked (and decrypted) as it is read; close them once the
        engine has loaded."""
        engine = self.manifest.engine
        listed = {"file": engine.file, **engine.parts}
        return MemoryFiles(
            {key: functools.partial(self.artifact.read, path) for key, path in listed.items()}, label=self.label
        )

    @abstractmethod
    def load(self) -> None:
        """Create sessions and whatever the codecs need; raise ModelLoadError naming what is wrong."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        """Run the model on inputs already checked against ``manifest.inputs`` (names, datatypes, shapes).

        Raise InvalidInput for values the manifest cannot express as wrong (an undecodable string, say).
        """

    def tasks(self) -> dict[str, TaskSpec]:
        """The task endpoints this model answers, by task name (``POST /v1/{domain}/{task}``)."""
        return {}

    @classmethod
    def declared_tasks(cls) -> dict[str, TaskSpec]:
        """The tasks any model of this runtime may offer, routed before one is loaded: a domain whose models
        arrive while a process runs (imported ones) has its task routes from the start. Only the request model,
        file field and summary of each spec are read; a request runs the spec of the model it names."""
        return {}
