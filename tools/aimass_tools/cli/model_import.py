"""``aimass models import PATH --name NAME``: a trained model, in one command, to a version that answers V2.

PATH is an ONNX file, a folder (with a manifest.json, or with model.onnx and its labels.txt, tokenizer.json), a
scikit-learn pickle or a TorchScript module (``aimass_tools.importing.sources``). The graph is checked and
described by ``aimass.importing`` (the very code the management API runs), published as the model's next
version, and served by the tensor domain: at once where the model had no production version, else once
promoted (``--promote`` here). With ``--url``, the graph (converted here first, where it is not ONNX) is uploaded
to that deployment and imported by its management API (``POST /v1/admin/models``) with an admin key: the same
checks, run by the function that will serve it.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aimass.errors import InvalidInput
from aimass.importing.fit import TASKS, ImageOptions
from aimass.importing.folder import check_folder
from aimass.importing.importer import DOMAIN, Imported, ImportSpec, import_graph
from aimass.importing.memory import function_memory_mb
from aimass.importing.publishing import publish_imported
from aimass.importing.samples import parse_samples
from aimass.serving.session import SessionFactory
from aimass.store import aliases as rules
from aimass.store.manifest import ModelManifest
from aimass_tools.cli.common import (
    CHECKOUT,
    BucketOption,
    PrefixOption,
    StoreOption,
    console,
    open_cli_store,
    reported_errors,
    settings_for,
    transfer_progress,
)
from aimass_tools.cli.models import ForceOption, ReasonOption, _checked_move, app
from aimass_tools.cli.remote import KeyOption, client
from aimass_tools.importing import load_source
from aimass_tools.importing.sources import read_lines

FUNCTION_TOML = CHECKOUT / "functions" / DOMAIN / "function.toml"
TaskOption = Annotated[
    str,
    typer.Option("--task", help=f"what the model does: {', '.join(TASKS)} (auto: found from its shape)"),
]


@app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(exists=True, help="model.onnx, a folder, a scikit-learn .joblib/.pkl, a .pt")],
    name: Annotated[str, typer.Option("--name", help="the model's name in the API")],
    labels: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="class names, one a line")] = None,
    description: Annotated[str, typer.Option(help="what it does, for listings")] = "",
    task: TaskOption = "auto",
    tokenizer: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="tokenizer.json: makes a text encoder an embedder")
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help='inputs it accepts, {"inputs": {name: rows}} [default: made up]'
        ),
    ] = None,
    features: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="a table's feature names, one a line")
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="a TorchScript module's input batch shape, batch first: 1,3,32,32")
    ] = None,
    image_scale: Annotated[
        float | None, typer.Option(help="an image classifier's pixel scale [default: 1/255]")
    ] = None,
    image_mean: Annotated[str | None, typer.Option(help="per channel, after scaling: 0.485,0.456,0.406")] = None,
    image_std: Annotated[str | None, typer.Option(help="per channel, after scaling: 0.229,0.224,0.225")] = None,
    quality: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="JSON of what you measured (accuracy, ...)")
    ] = None,
    license_: Annotated[str, typer.Option("--license", help="the model's licence")] = "",
    tenant: Annotated[
        str | None, typer.Option(help="only this tenant's keys may call it [default: every tenant's]")
    ] = None,
    visibility: Annotated[str, typer.Option(help="with --url: who may call it, tenant (the key's) or all")] = "tenant",
    memory_mb: Annotated[
        int | None,
        typer.Option(help="memory of the function serving it [default: functions/tensor/function.toml's]"),
    ] = None,
    promote: Annotated[bool, typer.Option(help="make it the production version, once checked")] = False,
    reason: ReasonOption = "",
    force: ForceOption = False,
    store: StoreOption = None,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="import through the management API of this deployment (an admin key), not a store"),
    ] = None,
    key: KeyOption = None,
) -> None:
    """Import a trained model as the next version of NAME, served by the tensor domain (V2, and its task)."""
    with reported_errors():
        if task not in TASKS:
            raise InvalidInput(f"--task must be one of {', '.join(TASKS)}, got '{task}'", param="task")
        if url is not None:
            source = load_source(path, input_shape=_shape(input_shape))
            if source.graph is None:
                raise InvalidInput(
                    "a folder with a manifest is published into a store (--store, --bucket), not through --url"
                )
            options: dict[str, Any] = {
                "task": task,
                "labels": list(read_lines(labels)) if labels else (list(source.labels) if source.labels else None),
                "description": description,
                "license": license_,
                "feature_names": list(read_lines(features)) if features else _listed(source.feature_names),
                "samples": parse_samples(samples.read_bytes()) if samples else None,
                "quality": _json(quality) if quality else {},
                "promote": promote,
                "reason": reason,
                "visibility": visibility,
            }
            scaling = _image(image_scale, image_mean, image_std)
            if scaling is not None:
                options["image"] = {"scale": scaling.scale, "mean": list(scaling.mean), "std": list(scaling.std)}
            _through_api(url, key, name, source.filename, source.graph, tokenizer or None, source.tokenizer, options)
            return
        settings = settings_for(store, bucket, prefix)
        target = open_cli_store(store, bucket, prefix)
        sessions = SessionFactory(settings)
        limit = memory_mb or function_memory_mb(settings.import_memory_mb) or _function_toml_memory()
        source = load_source(path, input_shape=_shape(input_shape))
        with tempfile.TemporaryDirectory(prefix="aimass-import-") as scratch:
            if source.folder is not None:
                manifest, checked = check_folder(source.folder, sessions, memory_limit_mb=limit)
                if manifest.name != name:
                    raise InvalidInput(
                        f"the folder's manifest names model '{manifest.name}', not '{name}'", param="name"
                    )
                before = target.versions(name)
                with transfer_progress("uploading") as progress:
                    published = target.publish(source.folder, progress=progress)
                created = published.version not in before
                console.print(f"{name}: {checked}", markup=False, soft_wrap=True)
            else:
                assert source.graph is not None
                spec = ImportSpec(
                    name=name,
                    task=task,  # checked against TASKS above
                    labels=read_lines(labels) if labels else source.labels,
                    description=description,
                    source=source.source,
                    license=license_,
                    feature_names=read_lines(features) if features else source.feature_names,
                    image=_image(image_scale, image_mean, image_std),
                    filename=source.filename,
                    quality=_json(quality) if quality else {},
                    tenant=tenant,
                )
                given = parse_samples(samples.read_bytes()) if samples else None
                tokens = tokenizer.read_bytes() if tokenizer else source.tokenizer
                work = Path(scratch) / name
                with console.status(f"checking and describing {source.filename}"):
                    imported = import_graph(
                        source.graph, spec, work, sessions, tokenizer=tokens, samples=given, memory_limit_mb=limit
                    )
                _describe(imported, limit)
                with transfer_progress("uploading") as progress:
                    published, created = publish_imported(
                        target, work, imported.manifest, progress=progress, reserved=settings.reserved_model_names
                    )
        _published(target.location, published, created)
        if promote:
            _checked_move(
                target,
                settings,
                name,
                published.version,
                lambda current, versions, why: rules.promote(name, current, published.version, versions, why),
                reason,
                force=force,
                doing="promoting it",
            )
        else:
            aliases = target.aliases(name)
            if aliases.production is not None and aliases.production != published.version:
                console.print(
                    f"{name}: production stays on version {aliases.production}; version {published.version} serves "
                    f"once promoted: aimass models promote {name} {published.version} (or models canary)",
                    markup=False,
                    soft_wrap=True,
                )


def _through_api(
    url: str,
    key: str | None,
    name: str,
    filename: str,
    graph: bytes,
    tokenizer: Path | None,
    tokens: bytes | None,
    options: dict[str, Any],
) -> None:
    """Upload the graph (in resumable parts when large) and its tokenizer, then import them by id."""
    with client(url, key) as api, tempfile.TemporaryDirectory(prefix="aimass-import-") as scratch:
        staged = Path(scratch) / filename
        staged.write_bytes(graph)
        with transfer_progress("uploading") as progress:
            uploaded = api.upload(staged, purpose="model", progress=progress)
            body = {"name": name, "file_id": uploaded["id"], **{k: v for k, v in options.items() if v is not None}}
            if tokenizer is not None or tokens is not None:
                path = tokenizer or Path(scratch) / "tokenizer.json"
                if tokenizer is None and tokens is not None:
                    path.write_bytes(tokens)
                body["tokenizer_file_id"] = api.upload(path, purpose="model", progress=progress)["id"]
        with console.status(f"importing {filename} at {api.base_url}"):
            answer = api.call("POST", "/v1/admin/models", json=body)
    version = answer["version"]
    done = "published" if answer["created"] else "already held this import:"
    console.print(
        f"{name}: {version['task']}; {done} version {version['version']} at {api.base_url} (about "
        f"{answer['memory_needed_mb']:,} MB to serve)",
        markup=False,
        soft_wrap=True,
    )
    console.print("answers: " + "; ".join(answer["endpoints"]), markup=False, soft_wrap=True)


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values else None


def _describe(imported: Imported, limit: int | None) -> None:
    manifest, facts = imported.manifest, imported.facts
    table = Table("", "", title=f"{manifest.name}: {manifest.task}", show_header=False)
    table.add_row("inputs", _tensors(manifest.inputs))
    table.add_row("outputs", _tensors(manifest.outputs))
    if manifest.inputs != manifest.engine.inputs:
        table.add_row("graph inputs", _tensors(manifest.engine.inputs))
    if manifest.labels:
        shown = ", ".join(manifest.labels[:8]) + (f" (+{len(manifest.labels) - 8})" if len(manifest.labels) > 8 else "")
        table.add_row("labels", shown)
    table.add_row("opsets", ", ".join(f"{domain} {version}" for domain, version in facts["opsets"].items()))
    table.add_row("operators", f"{len(facts['operators'])} kinds, {facts['nodes']} nodes")
    if facts["dynamic_axes"]:
        table.add_row("dynamic axes", "; ".join(f"{n}: {axes}" for n, axes in facts["dynamic_axes"].items()))
    table.add_row("memory", f"about {imported.needed_mb:,} MB" + (f" of the function's {limit:,} MB" if limit else ""))
    table.add_row("validation", f"{manifest.validation}: run on the tensor runtime, checked on every load")
    console.print(table)


def _published(location: str, manifest: ModelManifest, created: bool) -> None:
    name, version = manifest.name, manifest.version
    if created:
        console.print(f"published {name} version {version} to {location}", markup=False, soft_wrap=True)
    else:
        console.print(f"{name} version {version} already holds this import; nothing to do", markup=False)
    endpoints = [f"POST /v2/models/{name}/infer"]
    tasks = {"image-classification": "classify-images", "tabular-classification": "classify-rows", "embedding": "embed"}
    if manifest.task in tasks:
        endpoints.append(f'POST /v1/{manifest.domain}/{tasks[manifest.task]} {{"model": "{name}", ...}}')
    if manifest.task == "embedding":
        endpoints.append(f'POST /v1/embeddings {{"model": "{name}", "input": [...]}}')
    console.print("answers: " + "; ".join(endpoints), markup=False, soft_wrap=True)


def _tensors(specs: tuple[Any, ...]) -> str:
    return ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in specs)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InvalidInput(f"--input-shape must be integers separated by commas, got '{text}'") from None
    if not shape or any(d < 1 for d in shape):
        raise InvalidInput(f"--input-shape must be positive sizes, batch first, got '{text}'")
    return shape


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidInput(f"{option} must be numbers separated by commas, got '{text}'") from None


def _image(scale: float | None, mean: str | None, std: str | None) -> ImageOptions | None:
    if scale is None and mean is None and std is None:
        return None
    default = ImageOptions()
    return ImageOptions(
        scale=default.scale if scale is None else scale,
        mean=_floats(mean, "--image-mean") or default.mean,
        std=_floats(std, "--image-std") or default.std,
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return document


def _function_toml_memory() -> int | None:
    try:
        memory = tomllib.loads(FUNCTION_TOML.read_text()).get("memory_mb")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return memory if isinstance(memory, int) else None
