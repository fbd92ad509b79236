"""``aimass new-domain NAME --template T``: scaffold a complete domain from a template in ``templates/``.

What it writes is found with no list to edit: the local server imports ``functions/NAME/aimass_NAME``
(``aimass.serving.domains``), ``aimass models build`` and the CDK route table read ``models/NAME/<model>/spec.py``
(``models.catalogue``), and the CDK app deploys ``functions/NAME/`` because it holds a Dockerfile and a
``function.toml`` (``infra.config``). The domain's API Gateway events are built by ``aimass_tools.events``, as
the repository's are, from the requests it writes to ``tests/events/requests/NAME.json``; ``python -m
tests.events`` regenerates them from there and ``tests/unit/test_events.py`` checks them with the rest. The
payload test replays them against the function's image, and ``tests/functional/test_NAME_domain.py`` serves the
built model over HTTP and Lambda.

The model's card is generated, as every catalogued model's is (``models/README.md``): the template writes
``card.md``, whose figures are placeholders into the build's record. new-domain builds nothing, so it prints
the two commands that finish the card once the model is built (``card_commands``): ``record`` writes the built
version's ``record.json`` and ``render`` makes ``MODEL_CARD.md`` of the two, which ``tests/unit/test_model_cards.py``
then holds to its check.

A template is a folder of ``string.Template`` files (``$domain``, ``${Domain}``, ``$model``, ...; ``$$`` is a
literal dollar) laid out as they land in the checkout, with ``DOMAIN`` standing for the name in paths, plus a
``template.toml`` (see ``templates/README.md``). ``templates/common/`` is written for every template.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
import string
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from aimass_tools.cli.common import CHECKOUT, console
from aimass_tools.events import REQUESTS, Request, event_text, from_request, requests_text

COMMON = "common"
EVENTS = REQUESTS.parent  # tests/events, where each event is a file
SUFFIX = ".tmpl"
# infra.routes.DOMAIN_NAME, kept short: the name prefixes function, image and log group names.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
# Names a domain cannot take. A domain's task prefix is /v1/<domain>/..., so the first parts of the server-wide
# and OpenAI-shaped paths are taken (/v1/models; /v1/audio/..., /v1/embeddings, /v1/chat/... and the rest),
# and so are the checkout's own entries beside the domains (models/buildkit, models/catalogue.py, and the API
# key authorizer's functions/authorizer, a function but no domain) and the parts of event file names. A
# function.toml's extra routes under /v1/ are added to these.
RESERVED = frozenset(
    {"models", "audio", "embeddings", "chat", "completions", "images", "moderations", "files", "health"}
    | {"buildkit", "catalogue", "authorizer"}
    | {"v1", "v2", "http", "rest"}  # parts of the generated events' names, apigw_http_v2_<domain>_<what>.json
)
# Writes a model's record.json from its build and renders its MODEL_CARD.md (models/buildkit/card.py). Run as a
# command in the checkout written to, so the card reads that checkout's catalogue and store.
CARD_MODULE = "models.buildkit.card"
CARD_TEMPLATE = "card.md"  # the card's prose and placeholders; MODEL_CARD.md is its rendering
# The serving core's pinned closure: what every domain image installs before its own packages.
CORE_REQUIREMENTS = Path("layers/requirements.txt")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>\S+)$")


class NewDomainError(ValueError):
    """The domain cannot be scaffolded; the message says which value is wrong and what would do."""


@dataclass(frozen=True)
class DomainTemplate:
    """One template: ``templates/<name>/`` and what its ``template.toml`` says."""

    name: str
    directory: Path
    summary: str
    model: str  # the model's folder under models/<domain>/ and the suffix of its served name
    task: str
    packages: tuple[str, ...]  # runtime packages beyond the serving core
    memory_mb: int
    sizing: str
    events: dict[str, dict[str, str]]  # event name -> {"path", "body"}


def templates(root: Path) -> dict[str, DomainTemplate]:
    """The templates under ``root`` (every folder with a ``template.toml``), by name."""
    found: dict[str, DomainTemplate] = {}
    for settings in sorted(root.glob("*/template.toml")):
        data = tomllib.loads(settings.read_text(encoding="utf-8"))
        try:
            found[settings.parent.name] = DomainTemplate(
                name=settings.parent.name,
                directory=settings.parent,
                summary=str(data["summary"]),
                model=str(data["model"]),
                task=str(data["task"]),
                packages=tuple(data.get("packages", ())),
                memory_mb=int(data["memory_mb"]),
                sizing=str(data.get("sizing", "")),
                events={name: {"path": e["path"], "body": e["body"]} for name, e in data.get("events", {}).items()},
            )
        except KeyError as exc:
            raise NewDomainError(f"{settings}: missing key {exc}") from None
    return found


def check_name(name: str, checkout: Path) -> None:
    """Refuse a name that is malformed, reserved, or already a domain of ``checkout``."""
    if not NAME.match(name):
        raise NewDomainError(
            f"'{name}' is not a domain name: use 1-30 lower-case letters, digits and '_', starting with a letter"
        )
    if keyword.iskeyword(name) or name in RESERVED | _claimed_paths(checkout):
        raise NewDomainError(f"'{name}' is reserved (an API path, a Python keyword or a checkout folder); pick another")
    taken = [f"{top}/{name}" for top in ("functions", "models") if (checkout / top / name).exists()]
    if taken:
        raise NewDomainError(f"domain '{name}' already exists ({', '.join(taken)}); pick another name")
    # Generated events are found by name, apigw_<kind>_<domain>_<what>.json: "text" would take "text_x"'s.
    domains = {path.name for top in ("functions", "models") for path in (checkout / top).glob("*") if path.is_dir()}
    clash = sorted(d for d in domains if name.startswith(f"{d}_") or d.startswith(f"{name}_"))
    if clash:
        raise NewDomainError(
            f"'{name}' and domain '{clash[0]}' would share generated events (tests/events/apigw_*_{clash[0]}_*.json); "
            "pick a name that neither starts another domain's name and '_' nor is started by one"
        )


def _claimed_paths(checkout: Path) -> set[str]:
    """First parts of the /v1/ extra routes the checkout's functions answer (``/v1/audio/...`` → ``audio``)."""
    claimed: set[str] = set()
    for settings in (checkout / "functions").glob("*/function.toml"):
        for route in tomllib.loads(settings.read_text(encoding="utf-8")).get("routes", []):
            parts = str(route).strip("/").split("/")
            if len(parts) > 1 and parts[0] == "v1":
                claimed.add(parts[1])
    return claimed


def model_name(name: str, template: DomainTemplate) -> str:
    """The served name of the domain's model: ``shapes`` from image-classification serves ``shapes-digits``."""
    return f"{name.replace('_', '-')}-{template.model}"


def card_commands(written: Iterable[Path]) -> list[str]:
    """What turns each scaffolded ``card.md`` into its model's card once the model is built: record, then render."""
    folders = sorted(path.parent.as_posix() for path in written if path.name == CARD_TEMPLATE)
    return [f"python -m {CARD_MODULE} {action} {folder}" for folder in folders for action in ("record", "render")]


def render(name: str, template: DomainTemplate, checkout: Path) -> dict[Path, str]:
    """Every file of the new domain, by path relative to ``checkout``; nothing is written."""
    values = {
        "domain": name,
        "Domain": "".join(part.capitalize() for part in name.split("_")),
        "model": model_name(name, template),
        "template": template.name,
        "summary": template.summary,
        "task": template.task,
        "memory_mb": str(template.memory_mb),
        "sizing": template.sizing,
        "packages": ", ".join(template.packages) or "nothing",
        "requirements": "\n".join(requirements(checkout, template.packages)),
    }
    files: dict[Path, str] = {}
    for source_root in (template.directory.parent / COMMON, template.directory):
        for source in sorted(source_root.rglob(f"*{SUFFIX}")):
            relative = source.relative_to(source_root).as_posix().removesuffix(SUFFIX).replace("DOMAIN", name)
            files[Path(relative)] = _substitute(source.read_text(encoding="utf-8"), values, source)
    requests = event_requests(name, template, values)
    for event, request in requests.items():
        files[EVENTS / f"{event}.json"] = event_text(from_request(event, request))
    files[REQUESTS / f"{name}.json"] = requests_text(requests)
    return files


def event_requests(name: str, template: DomainTemplate, values: dict[str, str]) -> dict[str, Request]:
    """The requests of the domain's events, by event name, as ``aimass_tools.events.from_request`` takes them:
    each of the template's ``[events.<what>]`` POSTed as JSON by an HTTP client to the HTTP API."""
    settings = template.directory / "template.toml"
    requests: dict[str, Request] = {}
    for event, spec in template.events.items():
        body = _substitute(spec["body"], values, settings)
        try:
            json.loads(body)  # a mistake fails here, not in a client
        except ValueError as exc:
            raise NewDomainError(f"{settings}: events.{event}.body is not JSON ({exc})") from None
        requests[f"apigw_http_v2_{name}_{event}"] = {
            "builder": "http_api_v2",
            "method": "POST",
            "path": _substitute(spec["path"], values, settings),
            "headers": {"Content-Type": "application/json"},
            "body": body,
        }
    return requests


def _substitute(text: str, values: dict[str, str], source: Path) -> str:
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise NewDomainError(f"{source}: bad placeholder {exc}; known: {sorted(values)} ($$ for a dollar)") from None


def requirements(checkout: Path, packages: tuple[str, ...]) -> list[str]:
    """The core closure (``layers/requirements.txt``) plus ``packages`` at pyproject.toml's pins, sorted by name."""
    core = (checkout / CORE_REQUIREMENTS).read_text(encoding="utf-8").splitlines()
    pins = _pins(line.split("#", 1)[0] for line in core)
    project: dict[str, Any] = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _pins(project["dependencies"])
    for package in packages:
        if _normal(package) not in declared:
            raise NewDomainError(f"package '{package}' is not pinned (name==version) in pyproject.toml's dependencies")
        pins[_normal(package)] = declared[_normal(package)]
    return [pins[name] for name in sorted(pins)]


def _pins(lines: Iterable[str]) -> dict[str, str]:
    """``name==version`` lines by normalised name."""
    return {_normal(m["name"]): f"{m['name']}=={m['version']}" for line in lines if (m := PIN.match(line.strip()))}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def scaffold(name: str, template: str, checkout: Path = CHECKOUT) -> list[Path]:
    """Write domain ``name`` from ``template`` into ``checkout``; return the paths written (relative)."""
    found = templates(checkout / "templates")
    if template not in found:
        raise NewDomainError(f"no template '{template}'; templates: {', '.join(found) or 'none found'}")
    check_name(name, checkout)
    model = model_name(name, found[template])
    if model in (owners := _catalogued(checkout)):
        raise NewDomainError(f"model name '{model}' is taken by {owners[model]}; pick another domain name")
    files = render(name, found[template], checkout)
    existing = sorted(str(path) for path in files if (checkout / path).exists())
    if existing:
        raise NewDomainError(f"would overwrite {', '.join(existing)}; move them away or pick another name")
    for path, text in files.items():
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).write_text(text, encoding="utf-8")
    return sorted(files)


def _catalogued(checkout: Path) -> dict[str, str]:
    """The served names the checkout's models already have, and the spec.py that names each (as models.catalogue)."""
    owners: dict[str, str] = {}
    for spec in (checkout / "models").glob("*/*/spec.py"):
        for node in ast.parse(spec.read_text(encoding="utf-8"), str(spec)).body:
            match node:
                case ast.Assign(targets=[ast.Name(id="NAME")], value=ast.Constant(value=str() as value)):
                    owners[value] = spec.relative_to(checkout).as_posix()
    return owners


def new_domain(
    name: Annotated[str, typer.Argument(help="the domain: lower-case letters, digits and '_', e.g. shapes")],
    template: Annotated[str, typer.Option("--template", "-t", help="what the domain does; see templates/")],
    checkout: Annotated[Path, typer.Option(hidden=True, help="the checkout to write into")] = CHECKOUT,
) -> None:
    """Scaffold a new domain (function, model build, tests, events) from a template."""
    try:
        written = scaffold(name, template, checkout)
    except NewDomainError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"[bold]{name}[/]: {len(written)} files from the {template} template, written under {checkout}:")
    for path in written:
        console.print(f"  {path.as_posix()}", markup=False)
    console.print("Next:", style="bold")
    for command in (
        f"aimass models build {name}",
        *card_commands(written),
        "aimass serve",
        f"pytest tests/functional/test_{name}_domain.py",
        f"aimass invoke {name} tests/events/apigw_http_v2_{name}_infer.json",
    ):
        console.print(f"  {command}", markup=False)
    console.print(
        "After the build (or `make models`), record and render write the model's record.json and MODEL_CARD.md "
        "from its card.md: commit the three, and run them again whenever a rebuild changes the model.",
        markup=False,
    )


def main() -> None:
    """``python -m aimass_tools.cli.new_domain``: the command on its own."""
    typer.run(new_domain)


if __name__ == "__main__":
    main()
