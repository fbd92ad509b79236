"""``aimass serve``: every model in the store, every domain, the API Gateway paths, on worker processes that
share the port (one per core by default), each with its share of the cores for ONNX Runtime.

Server mode itself is ``aimass_server`` (what a function image's ``server`` stage runs too); this command adds
the operator's side: options, the development key and plan, and the banner."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from aimass.errors import AimassError
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass_server.sizing import MICRO_BATCH_ROWS
from aimass_tools.cli.common import StoreOption, console, settings_for


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port [default: PORT or 8000]")] = 0,
    store: StoreOption = None,
    workers: Annotated[int, typer.Option(min=0, help="worker processes sharing the port [default: one per core]")] = 0,
    micro_batch_rows: Annotated[
        int, typer.Option(min=1, help="most rows of concurrent requests for a model run as one batch; 1: none")
    ] = MICRO_BATCH_ROWS,
) -> None:
    """Serve every model in the store under the same paths as the API Gateway deployment."""
    from aimass_server.launch import serve as serve_workers
    from aimass_server.sizing import available_cores, worker_settings

    port = port or int(os.environ.get("PORT", "8000"))
    cores = available_cores()
    workers = workers or cores
    settings = worker_settings(settings_for(store), workers=workers, cores=cores)
    settings = settings.model_copy(update={"micro_batch_rows": micro_batch_rows})
    if settings.metering != "off":
        from aimass.metering.dev_key import with_development_plan

        settings = with_development_plan(settings)
    base = f"http://{host}:{port}"
    # The development key is made here, once, before any worker reads it (SQLite in WAL mode is shared by them).
    _banner(base, settings, workers)
    serve_workers(settings, host=host, port=port, workers=workers)


def _banner(base: str, settings: Settings, workers: int) -> None:
    store = LocalModelStore(settings.model_store)
    names = store.model_names()
    console.print(f"[bold]AI Mass[/] serving {len(names)} model(s) from {settings.model_store}: {', '.join(names)}")
    console.print(
        f"{workers} worker process(es), {settings.intra_op_threads} ONNX Runtime thread(s) each, at most "
        f"{settings.max_in_flight} request(s) in flight per model and worker (then 503 with Retry-After), "
        f"concurrent requests batched up to {settings.micro_batch_rows} row(s)",
        markup=False,
    )
    console.print(f"Base URL: [bold cyan]{base}[/]   API docs: {base}/docs")
    auth = ""
    if settings.metering != "off":
        from aimass.metering.dev_key import FILE, development_key

        key, created = development_key(settings)
        state = "created" if created else "kept"
        console.print(
            f"API key of tenant 'dev' (invoke, admin; plan 'development', no rate limit; {state} in "
            f"{settings.state_dir / FILE}):"
        )
        console.print(f"  {key}", markup=False, soft_wrap=True)
        auth = f' -H "Authorization: Bearer $(cat {settings.state_dir / FILE})"'
    example = _example(base, store, names, auth)
    if example:
        console.print("Try:", style="bold")
        console.print(f"  {example}", markup=False, soft_wrap=True)
    if settings.metering != "off":
        threads = settings.batch_workers
        console.print(
            f"Batches (POST /v1/batches, or `aimass jobs submit`) run on {threads} thread(s) in each worker; "
            "more with `python -m aimass.worker`.",
            markup=False,
            soft_wrap=True,
        )
    console.print("Press Ctrl-C to stop.")


def _example(base: str, store: LocalModelStore, names: list[str], auth: str) -> str | None:
    """A ready-to-paste call: an embedding if a text model is served, else a model's V2 metadata."""
    for name in names:
        try:
            task = store.fetch(name, store.versions(name)[-1]).manifest.task
        except AimassError:
            continue
        if task == "embedding":
            body = json.dumps({"model": name, "input": ["A cat sits on the mat.", "A kitten rests on a rug."]})
            return f"curl -s {base}/v1/embeddings{auth} -H 'Content-Type: application/json' -d '{body}'"
    return f"curl -s {base}/v2/models/{names[0]}{auth}" if names else None
