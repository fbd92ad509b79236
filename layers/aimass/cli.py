"""The ``aimass`` command: run the local API, inspect the model store.

Operator tooling only; function images never install it (typer, rich and uvicorn stay out of them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aimass.errors import AimassError
from aimass.manifest import verify_files
from aimass.settings import Settings
from aimass.store import LocalModelStore

app = typer.Typer(help="AI Mass: trained models behind one API.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect the model store.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()

StoreOption = Annotated[
    Path | None, typer.Option("--store", help="model store directory [default: AIMASS_MODEL_STORE or ./model_store]")
]


def _settings(store: Path | None) -> Settings:
    return Settings(model_store=store) if store else Settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port [default: PORT or 8000]")] = 0,
    store: StoreOption = None,
) -> None:
    """Serve every model in the store under the same paths as the API Gateway deployment."""
    import uvicorn

    from aimass.http.app import build_app

    port = port or int(os.environ.get("PORT", "8000"))
    settings = _settings(store)
    api = build_app(settings)
    base = f"http://{host}:{port}"
    _banner(base, settings)
    # One process, one event loop: inference runs on worker threads (ONNX Runtime releases the GIL).
    uvicorn.run(api, host=host, port=port, log_level="info", access_log=False)


def _banner(base: str, settings: Settings) -> None:
    store = LocalModelStore(settings.model_store)
    names = store.model_names()
    console.print(f"[bold]AI Mass[/] serving {len(names)} model(s) from {settings.model_store}: {', '.join(names)}")
    console.print(f"Base URL: [bold cyan]{base}[/]   API docs: {base}/docs")
    if names:
        body = json.dumps({"model": names[0], "input": ["A cat sits on the mat.", "A kitten rests on a rug."]})
        console.print("Try:", style="bold")
        console.print(
            f"  curl -s {base}/v1/embeddings -H 'Content-Type: application/json' -d '{body}'",
            markup=False,
            soft_wrap=True,
        )
    console.print("Press Ctrl-C to stop.")


@models_app.command("list")
def list_models(store: StoreOption = None) -> None:
    """List the models and versions in the store."""
    settings = _settings(store)
    local = LocalModelStore(settings.model_store)
    table = Table("name", "version", "domain", "task", "size (MB)", "status")
    for name in local.model_names():
        for version in local.versions(name):
            try:
                artifact = local.fetch(name, version)
                verify_files(artifact.directory, artifact.manifest)
                manifest = artifact.manifest
            except AimassError as exc:
                table.add_row(name, version, "?", "?", "?", f"[red]{exc.message}[/]")
                continue
            size = sum(f.size for f in manifest.files) / 1e6
            table.add_row(name, version, manifest.domain, manifest.task, f"{size:.1f}", "verified")
    console.print(table)


if __name__ == "__main__":
    app()
