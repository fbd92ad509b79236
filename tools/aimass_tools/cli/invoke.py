"""``aimass invoke DOMAIN EVENT.json``: run a function's Lambda handler on an API Gateway event, locally.

The handler module is imported from ``functions/<domain>/handler.py`` with the environment its image
sets, the way ``sam local invoke`` runs the image, and the response is printed as the runtime would
return it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aimass.lambda_context import LocalLambdaContext
from aimass_tools.cli.common import CHECKOUT, StoreOption, console, settings_for


def invoke(
    domain: Annotated[str, typer.Argument(help="the function's domain, e.g. text")],
    event: Annotated[Path, typer.Argument(help="an API Gateway REST (v1) or HTTP API (v2) event, as JSON")],
    store: StoreOption = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="an API key to add to the event's headers (generated events carry none), e.g. $(cat .aimass/dev-key)"
        ),
    ] = None,
) -> None:
    """Invoke a domain's Lambda handler on an event and print the response."""
    handler_file = CHECKOUT / "functions" / domain / "handler.py"
    if not handler_file.is_file():
        known = sorted(p.parent.name for p in (CHECKOUT / "functions").glob("*/handler.py"))
        raise typer.BadParameter(f"no function '{domain}'; functions: {known}", param_hint="DOMAIN")
    try:
        payload: dict[str, Any] = json.loads(event.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {event}: {exc}", param_hint="EVENT") from None
    if key is not None:
        # Both event kinds carry "headers"; REST (v1) events may also carry "multiValueHeaders", which win.
        payload.setdefault("headers", {})["x-api-key"] = key
        if payload.get("multiValueHeaders"):
            payload["multiValueHeaders"]["x-api-key"] = [key]
    os.environ["AIMASS_MODEL_STORE"] = str(settings_for(store).model_store.resolve())
    os.environ["AIMASS_DOMAINS"] = json.dumps([domain])
    spec = importlib.util.spec_from_file_location(f"aimass_{domain}_handler", handler_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # The function's own output (its request log line, its metrics) goes to stderr: stdout is the response.
    with contextlib.redirect_stdout(sys.stderr):
        spec.loader.exec_module(module)
        response = module.handler(payload, LocalLambdaContext(function_name=f"aimass-{domain}"))
    console.print_json(json.dumps(response))
    if int(response.get("statusCode", 500)) >= 400:
        raise typer.Exit(1)
