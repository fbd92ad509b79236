"""A cold start's head start: the engine sessions a function will serve, built while its code is imported.

A function's first load cannot start before the settings, the manifest schema and the domain runtimes are
imported (pydantic and the core: about 0.2 s), and building a large graph's session takes as long again: text's
90 MB MiniLM 0.28 s. ONNX Runtime builds a session with the GIL released, so the two can overlap, if the build
starts first. A handler's ``start_loading`` calls ``start`` before anything else: on a thread, from the standard
library's reading of the environment and of the local store's JSON, it builds the session of the version each
model will serve (its production alias, or its newest version) with the options the settings will ask for. It
reads the local store: a function's image bakes one in, which seeds its bucket store (``aimass.store.s3``), and a
version the bucket serves from that seed is the one built ahead.

It is a guess, and nothing trusts it. The session is handed over (``claim``) only to a load whose validated
manifest declares the very sha256 of the bytes the session was built from, with the same engine options; any
other load builds its own, as it would have. Unclaimed sessions are dropped once the first load is over
(``release``): where the bucket serves a version the image does not hold, the head start cost a cold start some
CPU and nothing else. Whatever it cannot read as the settings would (an unusual value, an encrypted version) it
leaves alone.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimass.store.layout import ALIASES_FILE, MANIFEST_FILE, sha256_beside, version_names

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("aimass.head_start")

PREFIX = "aimass_"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# pydantic's reading of a bool from a string (lax mode): anything else is left to the settings to refuse.
_BOOLS = {
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
}


# A claim waits at most this long for a head start to decide what it builds (it reads a few JSON documents).
PLAN_WAIT_S = 10.0
Engine = tuple[int, int, bool, str]  # intra-op threads, inter-op threads, spinning, accelerator


@dataclass(frozen=True)
class SessionSpec:
    """How ONNX Runtime sessions are built: what makes two sessions of one graph interchangeable."""

    intra_op_threads: int
    inter_op_threads: int
    spinning: bool
    providers: tuple[str, ...]

    def options(self) -> ort.SessionOptions:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads hold their cores between operators: waste where sessions share the cores (the local
        # server's concurrent requests), a gain where one session runs many tiny operators in a row (decoding).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        return options

    def session(self, graph: bytes) -> ort.InferenceSession:
        import onnxruntime as ort

        return ort.InferenceSession(graph, self.options(), providers=list(self.providers))


def providers_for(accelerator: str) -> tuple[str, ...]:
    """CUDA first where the accelerator setting allows it and ONNX Runtime has it, then the CPU ("cuda" without
    it is the caller's to refuse)."""
    import onnxruntime as ort

    if accelerator != "cpu" and CUDA in ort.get_available_providers():
        return (CUDA, CPU)
    return (CPU,)


@dataclass(frozen=True)
class _Guess:
    """A version the first load will likely open: its engine file and the digest its manifest declares."""

    label: str
    path: Path
    sha256: str
    size: int


class HeadStart:
    """Sessions built ahead of the first load, by the sha256 of their graph and their engine spec."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[str, SessionSpec], Future[ort.InferenceSession]] = {}
        self._open = True
        # Clear while a run is still deciding what to build: a claim waits for that, not for the builds.
        self._planned = threading.Event()
        self._planned.set()

    def run(self, environ: Mapping[str, str]) -> threading.Thread | None:
        """Start building on a thread; None where the environment is not one the head start can read."""
        read = _read_environment(environ)
        if read is None:
            return None
        store, domains, (intra, inter, spinning, accelerator) = read
        # ONNX Runtime (and numpy under it) imported here, on the caller's thread: numpy's first import is not safe
        # beside another thread's (a circular import of its C core fails, now and then), and the caller's next
        # imports need numpy. Imports take turns on the GIL anyway: only the build gains from a thread.
        spec = SessionSpec(intra, inter, spinning, providers_for(accelerator))
        with self._lock:
            self._open = True
        self._planned.clear()
        thread = threading.Thread(
            target=self._build_all, args=(store, domains, spec), name="aimass-head-start", daemon=True
        )
        thread.start()
        return thread

    def claim(self, sha256: str, spec: SessionSpec) -> ort.InferenceSession | None:
        """The session built from a graph of this digest with this spec, once (waiting for its build); else None."""
        self._planned.wait(PLAN_WAIT_S)
        with self._lock:
            built = self._built.pop((sha256, spec), None)
        if built is None:
            return None
        try:
            return built.result()
        except Exception:  # the load builds its own, and reports what is wrong with the graph itself
            return None

    def release(self) -> None:
        """Drop what nobody claimed, and build nothing more."""
        with self._lock:
            self._open = False
            self._built.clear()

    def _build_all(self, store: Path, domains: frozenset[str] | None, spec: SessionSpec) -> None:
        futures = []
        try:
            # Cheapest first, as the first load goes.
            guesses = sorted(_guesses(store, domains), key=lambda guess: guess.size)
            with self._lock:
                for guess in guesses:
                    future: Future[ort.InferenceSession] = Future()
                    self._built[(guess.sha256, spec)] = future
                    futures.append((guess, future))
        except Exception:  # a guess only: the first load reads the store and reports what it finds
            log.debug("no head start", exc_info=True)
            return
        finally:
            self._planned.set()
        for guess, future in futures:
            with self._lock:
                if not self._open:
                    future.cancel()  # released: nobody waits for it, and a late claim gets None
                    continue
            try:
                future.set_result(_build(guess, spec))
            except Exception as exc:  # handed to nobody: claim answers None and the load builds its own
                future.set_exception(exc)
                log.debug("head start of %s failed", guess.label, exc_info=True)


def _build(guess: _Guess, spec: SessionSpec) -> ort.InferenceSession:
    graph = guess.path.read_bytes()
    digest = sha256_beside(graph)  # hashed beside the build, both with the GIL released (as ModelArtifact.use)
    session = spec.session(graph)
    if digest.result() != guess.sha256:
        raise ValueError(f"{guess.path}: its bytes are not the ones its manifest declares")
    return session


def _read_environment(environ: Mapping[str, str]) -> tuple[Path, frozenset[str] | None, Engine] | None:
    """The store, domains and engine settings as ``aimass.settings`` would read them; None for anything else.

    Only defaults and plain values are read: any other value (which the settings may refuse, or read otherwise)
    leaves the first load to do all the work.
    """
    values = {key.lower()[len(PREFIX) :]: value for key, value in environ.items() if key.lower().startswith(PREFIX)}
    try:
        domains_value: Any = json.loads(values["domains"]) if "domains" in values else None
    except ValueError:
        return None
    if domains_value is not None and not (
        isinstance(domains_value, list) and all(isinstance(domain, str) for domain in domains_value)
    ):
        return None
    intra = values.get("intra_op_threads", "0")
    inter = values.get("inter_op_threads", "1")
    spinning = _BOOLS.get(values.get("intra_op_spinning", "false").strip().lower())
    accelerator = values.get("accelerator", "auto")
    if not (intra.isdigit() and inter.isdigit() and int(inter) >= 1) or spinning is None:
        return None
    if accelerator not in ("auto", "cpu"):
        return None  # "cuda" may refuse to load at all: the load says so
    domains = None if domains_value is None else frozenset(domains_value)
    return Path(values.get("model_store", "model_store")), domains, (int(intra), int(inter), spinning, accelerator)


def _guesses(store: Path, domains: frozenset[str] | None) -> list[_Guess]:
    """The version each model of the store serves first (``aimass.store.aliases``), where it is an ONNX graph of one
    of ``domains``, not encrypted."""
    guesses = []
    for model in sorted(store.iterdir()):
        versions = version_names(model)  # none for a stray file beside the models, as the store reads it
        if not versions:
            continue
        version = versions[-1]
        aliases = model / ALIASES_FILE
        if aliases.is_file():
            production = json.loads(aliases.read_text()).get("production")
            version = production if isinstance(production, str) else version
        manifest = json.loads((model / version / MANIFEST_FILE).read_text())
        engine = manifest.get("engine") or {}
        if manifest.get("encryption") is not None or engine.get("format", "onnx") != "onnx":
            continue
        if domains is not None and manifest.get("domain") not in domains:
            continue
        entry = next((f for f in manifest.get("files", ()) if f.get("path") == engine.get("file")), None)
        if entry is None:
            continue
        label = f"model '{model.name}' version {version}"
        guesses.append(_Guess(label, model / version / entry["path"], entry["sha256"], entry["size"]))
    return guesses


HEAD_START = HeadStart()


def start(environ: Mapping[str, str] | None = None) -> threading.Thread | None:
    """Build this process's likely sessions on a thread (``HEAD_START``); what a handler calls first."""
    return HEAD_START.run(os.environ if environ is None else environ)
