"""What a domain's benchmark is made of: its items, its requests, its engine feeds and its cold-start floor.

A domain adds one module, ``bench/workloads/<domain>.py``, that defines a ``Workload`` subclass and
assigns an instance to ``WORKLOAD``; everything else (timing, probes, server, report) is shared.

Light on purpose: only the standard library and numpy are imported at the top, here and in every workload
module, because the cold-start floor probe imports the workload in a fresh process to prepare its input, and
every import it makes counts in the floor. The project (``aimass``, the domain packages) is imported lazily,
inside the methods the in-process bench calls.
"""

from __future__ import annotations

import base64
import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.base import ModelArtifact
    from aimass.store.manifest import ModelManifest

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "events"

Array = npt.NDArray[Any]
Feeds = dict[str, Array]  # graph input name -> tensor
Outputs = dict[str, Array]  # graph output name -> tensor
Item = TypeVar("Item")


@dataclass(frozen=True)
class Request:
    """One HTTP request: what the server is sent and what the API Gateway event carries."""

    path: str
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # beyond content-type and content-length
    binary: bool = False  # API Gateway hands a binary body to Lambda base64-encoded


@dataclass(frozen=True)
class Route(Generic[Item]):
    """One way to ask a domain's model for an answer, and how to tell the answer is the raw engine's."""

    name: str  # the key in results.json ("v2", "openai", "classify", ...)
    label: str  # as the tables print it
    template: str  # a recorded API Gateway HTTP API (v2) event under tests/events; path and body replaced
    request: Callable[[ModelManifest, Sequence[Item]], Request]
    agrees: Callable[[bytes | str, Outputs], bool]  # does a 200 body say what the raw engine computed?


@cache
def _template(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def api_gateway_event(template: str, request: Request) -> dict[str, Any]:
    """A recorded HTTP API (v2) event with its path, body and content headers replaced."""
    event = copy.deepcopy(_template(template))
    event["rawPath"] = request.path
    event["requestContext"]["http"]["path"] = request.path
    event["body"] = base64.b64encode(request.body).decode() if request.binary else request.body.decode()
    event["isBase64Encoded"] = request.binary
    headers = {k: v for k, v in event["headers"].items() if k not in ("content-type", "content-length")}
    headers |= {"content-type": request.content_type, "content-length": str(len(request.body))}
    event["headers"] = headers | {k.lower(): v for k, v in request.headers.items()}
    return event


def v2_outputs(body: bytes | str) -> list[Array]:
    """The output tensors of a V2 JSON response, in order, shaped."""
    document = json.loads(body)
    return [np.asarray(o["data"]).reshape(o["shape"]) for o in document["outputs"]]


def close(got: Array, expected: Array, *, atol: float, rtol: float) -> bool:
    return got.shape == expected.shape and bool(np.allclose(got, expected, atol=atol, rtol=rtol))


class Workload(ABC, Generic[Item]):
    """A domain's benchmark input. ``items()[0]`` is what every latency and cold-start request carries."""

    domain: str
    noun: str  # what one item is ("sentence", "image"): throughput counts these
    codec_label: str  # what the domain's codec does to turn items into the graph's feeds
    v2_template: str  # the recorded event the V2 infer requests are sent as
    model: str | None = None  # the catalogued model to measure; None: the domain's only one
    atol, rtol = 1e-5, 1e-4  # how close the handler's, the server's and the floor's answers must be

    @abstractmethod
    def items(self) -> Sequence[Item]:
        """Varied items (at least 32): throughput batches are windows over them."""

    @abstractmethod
    def v2_input(self, manifest: ModelManifest, items: Sequence[Item]) -> dict[str, Any]:
        """The V2 JSON input tensor (name, shape, datatype, data) that carries ``items``."""

    @abstractmethod
    def predict_inputs(self, manifest: ModelManifest, items: Sequence[Item]) -> dict[str, Array]:
        """The tensors ``runtime.predict`` gets for that V2 request (BYTES as object arrays of bytes)."""

    @abstractmethod
    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[Item]) -> Feeds:
        """What the runtime feeds the graph for ``items``, made by the domain's own codec."""

    def routes(self) -> tuple[Route[Item], ...]:
        """The domain's other routes (task endpoints, OpenAI-shaped ones), measured beside V2."""
        return ()

    def describe(self, runtime: ModelRuntime, item: Item) -> dict[str, Any]:
        """Context keys for results.json about the item every latency request carries."""
        return {}

    def v2_request(self, manifest: ModelManifest, items: Sequence[Item]) -> Request:
        body = json.dumps({"inputs": [self.v2_input(manifest, items)]}).encode()
        return Request(f"/v2/models/{manifest.name}/infer", body)

    def v2_agrees(self, body: bytes | str, expected: Outputs) -> bool:
        """The V2 answer's first output against the graph's first output (the served one, under its name)."""
        return close(v2_outputs(body)[0], next(iter(expected.values())), atol=self.atol, rtol=self.rtol)

    def v2_route(self) -> Route[Item]:
        return Route("v2", "V2 infer", self.v2_template, self.v2_request, self.v2_agrees)

    # --- The cold-start floor, run in a fresh process by bench/probes.py ----------------------------

    def floor_spec(self, artifact: ModelArtifact, runtime: ModelRuntime, item: Item, scratch: Path) -> dict[str, Any]:
        """What ``floor_prepare`` needs, as plain data. By default: the engine feeds, saved as a file."""
        path = scratch / f"{self.domain}-floor-feeds.npz"
        np.savez(path, **self.engine_feeds(runtime, [item]))  # type: ignore[arg-type]
        return {"feeds": str(path)}

    @staticmethod
    def floor_prepare(spec: dict[str, Any]) -> Callable[[], Feeds]:
        """In the floor process: load what the input needs (timed with the model load), and return what
        turns the request's item into feeds (timed with the first run).

        By default the feeds come ready-made: right for a domain whose request carries the graph's
        tensors as they are (observations, waveforms), where the floor has nothing to decode.
        """
        with np.load(spec["feeds"]) as saved:
            feeds = {name: saved[name] for name in saved.files}
        return lambda: feeds
