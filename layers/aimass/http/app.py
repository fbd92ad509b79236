"""The ASGI applications: the FastAPI app of the local server, and a function's lean app (``aimass.http.lean``).

Both serve one route table: the hot routes (the inference endpoints) are built once and are the same Route
objects in each; on Lambda every other path is the FastAPI app's, built on the first request that needs it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aimass import __version__
from aimass.http import offload as offloads
from aimass.http.hot_routes import HotRoute, HotTable, LazyRoutes, hot_table, install_hot_routes
from aimass.http.inference_routes import openai_hot_routes, v2_hot_routes
from aimass.http.lambda_direct import LambdaApp
from aimass.http.openai_chat import lazy_chat_routes
from aimass.http.tasks import lazy_task_routes
from aimass.http.v2_generate import lazy_v2_generate_routes
from aimass.protocol.openai import OpenAIService
from aimass.protocol.v2_dataplane import DataPlane
from aimass.serving.boot import configure_logging, load_models
from aimass.serving.canary import AliasesWriter, CanaryJudge
from aimass.serving.registry import ModelRegistry
from aimass.serving.updater import ModelUpdater
from aimass.settings import Settings, get_settings

if TYPE_CHECKING:  # the web stack: a function's direct path answers its hot routes without it (LambdaApp)
    from fastapi import FastAPI
    from starlette.applications import Starlette

    from aimass.batches.dispatch import LineRoutes
    from aimass.batches.service import BatchService
    from aimass.files.base import FileStore
    from aimass.http.metered import MeteringGate
    from aimass.http.peers import Peers
    from aimass.metering.service import MeteringService
    from aimass.observability import Observer


class Background(Protocol):
    """Work a local server runs beside its requests for as long as its lifespan (model updates, batch workers)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


DESCRIPTION = """Trained models behind one API.

* **Open Inference Protocol (KServe V2)** under `/v2`, JSON and binary tensors, for every model; its generate
  extension (`generate`, `generate_stream`) for the models that write text.
* **OpenAI-compatible** `/v1/embeddings`, `/v1/chat/completions`, `/v1/completions` and `/v1/models`.

Every response carries an `x-request-id` header. Errors answer `{"error": "..."}` on `/v2` routes and
`{"error": {"message", "type", "code", "param"}, "request_id"}` elsewhere.

Bodies are read in the media types each operation lists (JSON as `application/json` or `+json`, UTF-8; a
request without a `Content-Type` is read as JSON); any other type is a 415. Numbers are JSON numbers and
flags JSON booleans: `"1"` is not 1, nor `true` 1.
"""


def create_app(
    registry: ModelRegistry,
    settings: Settings,
    *,
    offload: offloads.Offload,
    peers: Peers | None = None,
    updater: ModelUpdater | None = None,
    in_lambda: bool = False,
    metering: MeteringService | None = None,
    observer: Observer | None = None,
    files: FileStore | None = None,
    batches: BatchService | None = None,
    background: Sequence[Background] = (),
    served: Served | None = None,
) -> FastAPI:
    """The app over ``registry``; with an ``updater``, models follow their aliases (see aimass.serving.updater).

    With ``metering`` and ``files``, the Files API (``aimass.http.files``) serves each tenant its files, and
    with ``batches`` too, the Batch API (``aimass.http.batches``) runs files of requests.

    On Lambda the update check rides on invocations (a middleware); elsewhere it runs on a background
    thread for as long as the app's lifespan (the local server's, or a TestClient's), as does whatever
    ``background`` holds (the local batch workers).

    ``served``: the services and hot routes to serve, where another app serves them too (``create_lambda_app``).
    """
    from fastapi import Depends, FastAPI

    from aimass.http.console import console_routes
    from aimass.http.dependencies import json_body
    from aimass.http.document import install_document
    from aimass.http.errors import install_error_handlers, install_validation_handler
    from aimass.http.openai import openai_router
    from aimass.http.v2 import v2_router

    lifespan = None
    running: list[Background] = [*background]
    if updater is not None and not in_lambda:
        running.insert(0, updater)
    if running:

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            for each in running:
                each.start()
            try:
                yield
            finally:
                for each in reversed(running):
                    each.stop()

    app = FastAPI(title="AI Mass", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    served = served or serve(registry, settings, offload, batches=_deferred(metering, files, batches))
    app.include_router(v2_router(served.plane, peers))
    app.include_router(openai_router(served.openai, peers))
    install_hot_routes(app, served.hot)
    install_document(app, served.hot.declared, deferred=served.hot.deferred)
    install_error_handlers(app)
    install_validation_handler(app)
    path_limits: dict[str, int] = {}
    if metering is not None:
        from aimass.http.admin import admin_router
        from aimass.http.usage import usage_router

        # The admin routes' bodies are JSON; each route documents its own errors (aimass.http.admin).
        app.include_router(admin_router(metering.keys, settings), dependencies=[Depends(json_body)])
        app.include_router(usage_router(metering.usage, settings, counter=metering.counter))
        if files is not None:
            from aimass.http.files import PATH, files_router, upload_body_limit
            from aimass.http.model_admin import model_admin_router
            from aimass.http.uploads import PARTS_PATH, part_body_limit, uploads_router

            app.include_router(files_router(files, settings))
            app.include_router(uploads_router(files, settings))
            # The management API's bodies are JSON too.
            admin_models = model_admin_router(settings, files, registry, updater=updater)
            app.include_router(admin_models, dependencies=[Depends(json_body)])
            if not in_lambda:  # a Lambda's body is bounded before it runs (max_body_bytes, 6 MiB)
                path_limits[PATH] = upload_body_limit(settings)
                path_limits[PARTS_PATH] = part_body_limit(settings)
            if batches is not None:
                from aimass.http.batches import batches_router

                app.include_router(batches_router(batches))
    app.router.routes.extend(console_routes())
    if observer is not None:
        from aimass.observability import LocalObserver, metrics_route

        if isinstance(observer, LocalObserver):
            app.router.routes.append(metrics_route(observer))
    install_middleware(
        app,
        settings,
        in_lambda=in_lambda,
        metering=metering,
        observer=observer,
        updater=updater,
        path_limits=path_limits,
    )
    return app


@dataclass(frozen=True)
class Served:
    """The protocol services and the hot routes over them, built once for every app that serves them."""

    plane: DataPlane
    openai: OpenAIService
    hot: HotTable


def serve(
    registry: ModelRegistry, settings: Settings, offload: offloads.Offload, *, batches: BatchService | None
) -> Served:
    """With ``batches``, requests too large to answer now run as batches when the client prefers it (RFC 7240
    respond-async).

    Generation, chat and task routes are lazy: their protocols are imported by their first request, so a
    function whose first request is an inference (V2) or an embedding does not import them on its cold start.
    """
    plane, openai = DataPlane(registry, settings), OpenAIService(registry, settings)
    # Embeddings are milliseconds a sentence: one alone in a long-lived server's worker skips the thread hop.
    # (V2 infer may name a generative model, seconds long for a few bytes of prompt: it always takes a thread.)
    short = offloads.threaded_unless_alone if offload is offloads.threaded else offload
    declared: list[HotRoute | LazyRoutes] = [
        *v2_hot_routes(plane, offload),
        lazy_v2_generate_routes(registry, settings, offload),
        *openai_hot_routes(openai, short),
        lazy_chat_routes(registry, settings, offload),
        lazy_task_routes(registry, settings, offload),
    ]
    return Served(plane, openai, hot_table(declared, batches=batches))


def _deferred(
    metering: MeteringService | None, files: FileStore | None, batches: BatchService | None
) -> BatchService | None:
    # A request runs as a batch only where the Batch API is on: with keys (a batch is its caller's) and files.
    return batches if metering is not None and files is not None else None


def install_middleware(
    app: Starlette,
    settings: Settings,
    *,
    in_lambda: bool,
    metering: MeteringService | None,
    observer: Observer | None,
    updater: ModelUpdater | None,
    path_limits: dict[str, int] | None = None,
    gate: MeteringGate | None = None,
) -> None:
    """The middleware every app has, innermost first (Starlette wraps each one added around the others).

    ``gate``: the metering gate to share with a function's direct path (one per function), else one of its own."""
    from aimass.http.middleware.body_read import BodyReadMiddleware
    from aimass.http.middleware.model_update import ModelUpdateMiddleware
    from aimass.http.middleware.request_context import RequestContextMiddleware

    if not in_lambda:  # a Lambda gets the whole body with its event
        # Innermost: what it answers for a body that never came is what the usage record says.
        app.add_middleware(BodyReadMiddleware, timeout_s=settings.body_timeout_s)
    if metering is not None:
        from aimass.http.metered import MeteringGate
        from aimass.http.middleware.metering import MeteringMiddleware

        app.add_middleware(MeteringMiddleware, gate=gate or MeteringGate(metering, observer))
    if updater is not None and in_lambda:
        app.add_middleware(ModelUpdateMiddleware, updater=updater)
    limits = path_limits or {}
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, path_limits=limits)


def create_lambda_app(parts: _Parts) -> LambdaApp:
    """A function's app: its inference routes answered straight from the Lambda event (``aimass.http.lambda_direct``);
    every other request on a Starlette app of the hot routes that hands the rest of the paths to the FastAPI app
    over the same parts, built (FastAPI imported) on the first request that needs it (``aimass.http.lean``)."""
    served = serve(
        parts.registry, parts.settings, offloads.inline, batches=_deferred(parts.metering, parts.files, parts.batches)
    )
    gate = None
    if parts.metering is not None:
        from aimass.http.metered import MeteringGate

        gate = MeteringGate(parts.metering, parts.observer)

    def full() -> FastAPI:
        return _full_app(parts, in_lambda=True, served=served)

    def starlette_app() -> Starlette:
        from starlette.applications import Starlette

        from aimass.http.console import console_routes
        from aimass.http.errors import install_error_handlers
        from aimass.http.lean import FullApp

        # The console's files are plain routes too: its pages load without FastAPI.
        app = Starlette(routes=[*served.hot.routes, *console_routes(), FullApp(full)])
        install_error_handlers(app)
        install_middleware(
            app,
            parts.settings,
            in_lambda=True,
            metering=parts.metering,
            observer=parts.observer,
            updater=parts.updater,
            gate=gate,
        )
        return app

    return LambdaApp(served.hot, parts.settings, starlette_app, updater=parts.updater, gate=gate)


def build_app(
    settings: Settings | None = None, *, in_lambda: bool = False, registry: ModelRegistry | None = None
) -> FastAPI:
    """Composition root: load every model this process serves (unless given), then build the app around them."""
    parts = _compose(settings, registry, in_lambda=in_lambda)
    return _full_app(parts, in_lambda=in_lambda, background=parts.background)


def build_lambda_app(settings: Settings | None = None, *, registry: ModelRegistry | None = None) -> LambdaApp:
    """A function's composition root: ``build_app(in_lambda=True)``'s app, with FastAPI off the cold path."""
    return create_lambda_app(_compose(settings, registry, in_lambda=True))


def _full_app(
    parts: _Parts, *, in_lambda: bool, served: Served | None = None, background: Sequence[Background] = ()
) -> FastAPI:
    return create_app(
        parts.registry,
        parts.settings,
        offload=offloads.inline if in_lambda else offloads.threaded,
        peers=parts.peers,
        updater=parts.updater,
        in_lambda=in_lambda,
        metering=parts.metering,
        observer=parts.observer,
        files=parts.files,
        batches=parts.batches,
        background=background,
        served=served,
    )


@dataclass(frozen=True)
class _Parts:
    registry: ModelRegistry
    settings: Settings
    peers: Peers | None
    updater: ModelUpdater
    metering: MeteringService | None
    observer: Observer | None
    files: FileStore | None
    batches: BatchService | None
    background: list[Background]


def _compose(settings: Settings | None, registry: ModelRegistry | None, *, in_lambda: bool) -> _Parts:
    settings = settings or get_settings()
    configure_logging()
    if registry is None:
        registry = load_models(settings)
    peers = _peers(settings)
    updater = ModelUpdater(registry, interval_s=settings.alias_check_s, judge=canary_judge(registry))
    metering = metering_from_settings(settings)
    files = _files(settings, in_lambda) if metering is not None else None
    batches, background = (None, []) if files is None else _batches(settings, registry, files, in_lambda)
    observer = _observer(settings, in_lambda) if metering is not None else None
    return _Parts(registry, settings, peers, updater, metering, observer, files, batches, background)


def _peers(settings: Settings) -> Peers | None:
    # Imported here: only a front function has peers, and their module (boto3's client among them) is not for
    # every cold start.
    if not settings.peers:
        return None
    from aimass.http.peers import peers_from_settings

    return peers_from_settings(settings.peers, settings.peer_cache_s, settings.peer_timeout_s)


def canary_judge(registry: ModelRegistry) -> CanaryJudge | None:
    """The canary policy's judge, where this process may move the aliases of its store."""
    store = registry.store
    return CanaryJudge(registry, store) if isinstance(store, AliasesWriter) else None


def _batches(
    settings: Settings, registry: ModelRegistry, files: FileStore, in_lambda: bool
) -> tuple[BatchService | None, list[Background]]:
    """The Batch API's service, and the local workers that run its shards (none on AWS: AWS Batch runs them)."""
    if in_lambda and not settings.batch_targets:
        return None, []  # a function keeps no local queue: batches need their AWS Batch targets
    from aimass.batches.backends import open_batches, runner_factory
    from aimass.batches.service import BatchService, Endpoints

    opened = open_batches(settings)

    def models() -> dict[str, str]:
        served = {runtime.manifest.name: runtime.manifest.domain for runtime in registry.runtimes()}
        # On AWS, the other domain functions' catalogued models, as the CDK app tells the front function.
        for peer in settings.peers:
            served.update({name: peer.domain for name in peer.models})
        return served

    quota = None
    if settings.metering != "off":
        from aimass.batches.billing import QuotaCheck
        from aimass.metering.stores.usage_factory import open_usage

        quota = QuotaCheck(open_usage(settings)[1], settings)
    service = BatchService(
        opened.store, opened.launcher, files, Endpoints(models, imports=settings.import_domain), settings, quota=quota
    )
    if opened.local is None or in_lambda or settings.batch_workers == 0:
        return service, []
    from aimass.batches.pool import WorkerPool

    make = runner_factory(settings, batch_line_routes(registry, settings), opened, files)
    return service, [WorkerPool(opened.local, make, threads=settings.batch_workers, lease_s=settings.batch_lease_s)]


def _files(settings: Settings, in_lambda: bool) -> FileStore | None:
    # A function's state folder is not kept between invocations: there, files need their bucket.
    if in_lambda and not settings.files_bucket:
        return None
    from aimass.files.factory import open_files

    return open_files(settings)


def batch_line_routes(registry: ModelRegistry, settings: Settings) -> LineRoutes:
    """What batch lines run on: the API's own routes, without the metering middleware (batches bill per
    shard), under the batch settings; embeddings lines are gathered into engine batches."""
    from aimass.batches.coalesce import coalescers
    from aimass.batches.dispatch import LineRoutes

    lines = batch_settings(settings)
    app = create_app(registry, lines, offload=offloads.inline, in_lambda=True)
    return LineRoutes(app, coalescers(OpenAIService(registry, lines), lines.max_body_bytes))


def batch_settings(settings: Settings) -> Settings:
    """The settings a batch's lines run under: a request's item limit is the batch one (``batch_max_items``),
    and no time budget holds (``aimass.serving.cost``): a line has no API Gateway to answer within."""
    return settings.model_copy(update={"max_batch_items": settings.batch_max_items, "sync_budget_s": math.inf})


def _observer(settings: Settings, in_lambda: bool) -> Observer:
    # Imported here: Powertools is for the processes that meter requests, not every cold start.
    from aimass.observability import observer_for

    return observer_for(settings, in_lambda=in_lambda)


def metering_from_settings(settings: Settings) -> MeteringService | None:
    """Keys, usage records and quota counters from the settings' backend; None when metering is off."""
    if settings.metering == "off":
        return None
    from aimass.metering.service import MeteringService
    from aimass.metering.stores.key_factory import open_key_store
    from aimass.metering.stores.usage_factory import open_usage

    # Quota counters are charged with the record (UsageStore.record_billed); the service keeps the counter for
    # GET /v1/usage to read what is left.
    usage, counter = open_usage(settings)
    # Lambda states the function's configured memory; the usage record carries it (0 locally).
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
    return MeteringService(open_key_store(settings), usage, settings, memory_mb=memory_mb, counter=counter)
