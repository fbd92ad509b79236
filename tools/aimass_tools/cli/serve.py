"""``aimass serve``: every model in the store, every domain, the API Gateway paths, on worker processes that
share the port (one per core by default), each with its share of the cores for ONNX Runtime."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from aimass.errors import AimassError
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass_tools.cli.common import StoreOption, console, settings_for


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port [default: PORT or 8000]")] = 0,
    store: StoreOption = None,
    workers: Annotated[int, typer.Option(min=0, help="worker processes sharing the port [default: one per core]")] = 0,
    micro_batch_rows: Annotated[
        int, typer.Option(min=1, help="most rows of concurrent requests for a model run as one batch; 1: none")
    ] = 32,
) -> None:
    """Serve every model in the store under the same paths as the API Gateway deployment."""
    import uvicorn

    from aimass_tools.cli.server_mode import NoDelayProtocol

    port = port or int(os.environ.get("PORT", "8000"))
    cores = os.cpu_count() or 1
    workers = workers or cores
    settings = settings_for(store)
    if settings.intra_op_threads == 0:
        # "Every core" is each worker's share of them: N processes each taking every core would contend.
        settings = settings.model_copy(update={"intra_op_threads": max(1, cores // workers)})
    if settings.metering != "off":
        from aimass.metering.dev_key import with_development_plan

        settings = with_development_plan(settings)
    # The workers are spawned processes: they read their settings from the environment (server_mode.app).
    os.environ["AIMASS_MODEL_STORE"] = str(settings.model_store)
    os.environ["AIMASS_INTRA_OP_THREADS"] = str(settings.intra_op_threads)
    os.environ["AIMASS_MICRO_BATCH_ROWS"] = str(micro_batch_rows)
    os.environ["AIMASS_PLANS"] = json.dumps({name: plan.model_dump() for name, plan in settings.plans.items()})
    base = f"http://{host}:{port}"
    # The development key is made here, once, before any worker reads it (SQLite in WAL mode is shared by them).
    _banner(base, settings.model_copy(update={"micro_batch_rows": micro_batch_rows}), workers)
    uvicorn.run(
        "aimass_tools.cli.server_mode:app",
        factory=True,
        workers=workers,
        http=NoDelayProtocol,
        loop="uvloop",
        host=host,
        port=port,
        log_level="info",
        access_log=False,
    )


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
