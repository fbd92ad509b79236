"""Loading a process's models: the one way every door (local server, Lambda, tests) does it.

Only the standard library is imported at the top, so a Lambda entrypoint can start the load before it
imports the web stack: ONNX Runtime builds sessions and hashlib checks files with the GIL released, so
that work overlaps the imports of Starlette, Mangum and the inference protocols, which are most of the rest of
a cold start (FastAPI waits for the first request that needs it: ``aimass.http.lean``).

A function builds its app over the registry ``start_loading`` returns at once, while the models load model by
model, cheapest first: its first request waits for the model it names alone (``aimass.serving.loading``).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aimass.serving.registry import ModelRegistry
    from aimass.settings import Settings
    from aimass.store.base import Unsealer
    from aimass.store.manifest import FileEntry, ModelManifest


# Lambda's AWS_LAMBDA_INITIALIZATION_TYPE where it starts an environment ahead of any request: no request waits
# for that start, and the environment is frozen once it ends (a thread loading models would stop half way).
AHEAD_OF_REQUESTS = ("provisioned-concurrency", "snap-start")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Mangum logs a line per request, which API Gateway's access log already records; formatting and
    # writing it costs more than the rest of the adapter on a warm invocation.
    logging.getLogger("mangum.http").setLevel(logging.WARNING)


class _LazyUnsealer:
    """The envelope unsealer, imported with its cipher library when an encrypted version is first opened.

    Most processes never open one, and every import counts in a cold start.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._unsealer: Unsealer | None = None

    def open(self, manifest: ModelManifest, entry: FileEntry, sealed: bytes) -> bytes:
        if self._unsealer is None:
            from aimass.store.sealing.unseal import unsealer_from_settings

            self._unsealer = unsealer_from_settings(self._settings)
        return self._unsealer.open(manifest, entry, sealed)


def lazy_unsealer(settings: Settings) -> Unsealer:
    """An unsealer that imports its cipher library when an encrypted version is first opened."""
    return _LazyUnsealer(settings)


def load_models(settings: Settings) -> ModelRegistry:
    """The store the settings name (local directory or S3), and every model of this process's domains loaded."""
    registry = open_registry(settings)
    registry.load_all()
    return registry


def open_registry(settings: Settings) -> ModelRegistry:
    """The registry over the store the settings name (local directory or S3), nothing loaded yet."""
    from aimass.serving.registry import ModelRegistry
    from aimass.serving.session import SessionFactory
    from aimass.serving.validation import validate
    from aimass.store.factory import open_store

    return ModelRegistry(
        open_store(settings, unsealer=lazy_unsealer(settings)),
        SessionFactory(settings),
        domains=settings.domains,
        validate=validate,
        keep_versions=settings.keep_versions,
    )


def start_loading(settings: Settings | None = None) -> ModelRegistry:
    """The registry of this process's models at once, their load running on a thread (``load_in_background``).

    A request waits for the model it names alone, so an app can be built over it at once. The domain runtimes
    are imported here, first: Python-level imports on two threads only take turns on the GIL, while the
    thread's file hashing and session building run beside the caller's imports. Where the settings are the
    environment's, the sessions likely needed start building before even those imports
    (``aimass.serving.head_start``). Where Lambda starts the environment ahead of its requests
    (``AHEAD_OF_REQUESTS``), every model is loaded before this returns.
    """
    if settings is None:  # the settings will be the environment's, which a head start can read first
        from aimass.serving import head_start

        head_start.start()
    from aimass.serving.domains import runtime_class
    from aimass.settings import get_settings

    settings = settings or get_settings()
    for domain in settings.domains or ():
        runtime_class(domain)
    configure_logging()
    registry = open_registry(settings)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in AHEAD_OF_REQUESTS:
        registry.load_all()
    else:
        registry.load_in_background()
    return registry
