"""The ``aimass`` command: run the local API, build and inspect models, invoke functions locally.

Operator tooling only: no function image copies tools/, so typer, rich and uvicorn stay out of them.
"""

from __future__ import annotations

import typer

from aimass_tools.cli import (  # noqa: F401  (encrypt, model_import, quantize: `models ...`)
    cost,
    encrypt,
    files,
    invoke,
    jobs,
    keys,
    model_import,
    models,
    new_domain,
    quantize,
    serve,
    usage,
)

app = typer.Typer(help="AI Mass: trained models behind one API.", no_args_is_help=True)
app.command()(serve.serve)
app.command()(invoke.invoke)
app.command("new-domain")(new_domain.new_domain)
app.command()(cost.cost)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(usage.app, name="usage")
app.add_typer(files.app, name="files")
app.add_typer(jobs.app, name="jobs")

__all__ = ["app"]
