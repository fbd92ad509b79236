"""The one runtime interface every domain implements.

A domain (text, vision, speech, rl, ...) is a small ``ModelRuntime`` subclass: it loads its model version
and turns named input tensors into named output tensors. It writes no protocol code: the V2, OpenAI-shaped
and task endpoints in ``aimass.protocol`` validate the wire format against the manifest and call
``predict`` with numpy arrays (BYTES tensors arrive as object arrays of ``bytes``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from aimass.manifest import ModelManifest
from aimass.session import SessionFactory
from aimass.store import ModelArtifact
from aimass.tasks import TaskSpec

Tensor = npt.NDArray[np.generic]


@dataclass(frozen=True)
class Prediction:
    outputs: dict[str, Tensor]
    # Billable counts the domain knows best, e.g. {"prompt_tokens": 17} for text.
    usage: dict[str, int] = field(default_factory=dict)


class ModelRuntime(ABC):
    """Serves one model version. Subclasses load in ``load`` and must keep ``predict`` thread-safe."""

    # The usage count a request is billed by (a key of Prediction.usage / TaskResult.usage); None: the only
    # one the runtime reports (see aimass.metering.meter).
    billing_unit: ClassVar[str | None] = None

    def __init__(self, artifact: ModelArtifact, sessions: SessionFactory) -> None:
        self.artifact = artifact
        self.sessions = sessions

    @property
    def manifest(self) -> ModelManifest:
        return self.artifact.manifest

    @property
    def label(self) -> str:
        return f"model '{self.manifest.name}' version {self.manifest.version}"

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
