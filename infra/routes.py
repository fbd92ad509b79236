"""The route table: which domain function answers which API path, computed from the model catalogue.

Pure (no CDK): ``route_table()`` takes the catalogued models, each domain's extra routes (from its
``functions/<domain>/function.toml``) and the front domain, and returns ``[(path, methods, domain)]``.
The API construct builds one API Gateway resource and method per row, so a new model directory
(``models/<domain>/<model>/spec.py``) is routed at the next synth with no list to edit.

For every catalogued model ``m`` of domain ``d``:

* ``/v2/models/m`` and ``/v2/models/m/{proxy+}`` (metadata, readiness, inference, pinned versions) go
  to function ``d``;

for every domain ``d`` that has a function:

* its task prefix ``/v1/d/{proxy+}`` (``/v1/{domain}/{task}``) and each of its extra routes go to ``d``;

for the import domain (``aimass:importDomain``, the tensor function: imported models are not catalogued, and
arrive after a deploy), ``/v2/models/{proxy+}`` (every model the catalogue does not name; API Gateway prefers
the literal routes above it) and the management API ``/v1/admin/models[/...]`` (more specific than the admin
API's ``/v1/admin/{proxy+}``);

and the server-wide routes (``/v2``, ``/v2/health/...``, ``/v2/repository/index``, ``/v1/models``,
``/docs``, ``/openapi.json``, the console's ``/console[/...]``) and the account routes (the admin API
``/v1/admin/...``, ``/v1/usage``, the files ``/v1/files[/...]`` and ``/v1/uploads[/...]``, the batches
``/v1/batches[/...]``) go to the front domain's function.

The open routes (``OPEN_PATHS``: the shared routes that hold a path the app serves without a key,
``aimass.contract.is_open_path``: the V2 server metadata and health, the docs, the console's files) are public;
every other route needs an AI Mass API key, which API Gateway's authorizer checks before the request reaches a
function (when ``aimass:edgeAuthorizer`` is on) and the function checks again.

Each function knows only its own models, so the front function answers the listings of the whole
namespace (``/v1/models``, ``/v2/repository/index``) by asking the other functions for theirs (``aimass.http.peers``;
the stack tells it who they are). ``/v2/health/ready`` and ``/docs`` remain the front function's own: each
model's readiness is ``/v2/models/<name>/ready``, answered by the function that serves it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from aimass.contract import OPEN_PATHS as APP_OPEN_PATHS
from aimass.contract import is_open_path

ANY = ("ANY",)
GET = ("GET",)

# The server-wide routes and their methods. ANY lets the app answer a wrong method with its own
# error body (405 in the route's error shape) instead of API Gateway's bare 403.
SHARED_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v2", ANY),
    ("/v2/health/{proxy+}", ANY),
    ("/v2/repository/index", ANY),
    ("/v1/models", ANY),
    ("/docs", GET),
    ("/openapi.json", GET),
    # Key administration and usage reports: the front function alone may write keys and read usage.
    ("/v1/admin/{proxy+}", ANY),
    ("/v1/usage", ANY),
    # A tenant's uploaded files (OpenAI's Files and Uploads APIs) and its batches: kept by the front function,
    # which submits the batches' shards to AWS Batch.
    ("/v1/files", ANY),
    ("/v1/files/{proxy+}", ANY),
    ("/v1/uploads", ANY),
    ("/v1/uploads/{proxy+}", ANY),
    ("/v1/batches", ANY),
    ("/v1/batches/{proxy+}", ANY),
    # The browser console's files (aimass.http.console): open, as the app serves them without a key.
    ("/console", GET),
    ("/console/{proxy+}", GET),
)


# What the import domain's function answers beyond its catalogued models and its task prefix.
IMPORT_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v2/models/{proxy+}", ANY),
    ("/v1/admin/models", ANY),
    ("/v1/admin/models/{proxy+}", ANY),
)


def holds_open_path(route_path: str) -> bool:
    """Does the API Gateway route ``route_path`` hold a path the app serves without a key?

    A literal route is that path; a greedy one (``/v2/health/{proxy+}``) holds every path under its prefix,
    and the app itself asks for a key on each of them it does not leave open.
    """
    if "{" not in route_path:
        return is_open_path(route_path)
    prefix = route_path.split("{", 1)[0]
    # Either it holds some open paths (the app refuses the rest), or every path under it is open (the console).
    return any(path.startswith(prefix) for path in APP_OPEN_PATHS) or is_open_path(prefix)


# Routes anyone may call without a key: the shared routes that hold what the app itself leaves open. Load
# balancers and uptime probes have no key; the docs describe how to get one.
OPEN_PATHS: frozenset[str] = frozenset(path for path, _ in SHARED_ROUTES if holds_open_path(path))

# What API Gateway accepts as one path part: a literal, a {name} variable or a greedy {name+} (last only).
_LITERAL = re.compile(r"^[A-Za-z0-9._-]+$")
_VARIABLE = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\+?\}$")
DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RouteError(ValueError):
    """The route table cannot be built; the message names the model, domain or path at fault."""


class Route(NamedTuple):
    path: str
    methods: tuple[str, ...]
    domain: str

    @property
    def is_open(self) -> bool:
        """Callable without an API key (``OPEN_PATHS``): no authorizer, no key required at the edge."""
        return self.path in OPEN_PATHS


class CataloguedModel(Protocol):
    """What the table needs of a catalogue entry (``models.catalogue.CatalogueEntry`` has it)."""

    @property
    def domain(self) -> str: ...

    @property
    def name(self) -> str: ...


def task_prefix(domain: str) -> str:
    return f"/v1/{domain}/{{proxy+}}"


def model_paths(name: str) -> tuple[str, str]:
    return f"/v2/models/{name}", f"/v2/models/{name}/{{proxy+}}"


def check_path(path: str) -> str:
    """Raise RouteError unless ``path`` is one API Gateway resource path (``/a/b``, ``/a/{proxy+}``)."""
    if not path.startswith("/") or path == "/" or path.endswith("/"):
        raise RouteError(f"route {path!r}: must start with '/' and not end with one")
    parts = path[1:].split("/")
    for index, part in enumerate(parts):
        if _LITERAL.match(part):
            continue
        if not _VARIABLE.match(part):
            raise RouteError(f"route {path!r}: {part!r} is neither a literal path part nor a {{variable}}")
        if part.endswith("+}") and index != len(parts) - 1:
            raise RouteError(f"route {path!r}: a greedy {part} must be the last part")
    return path


def route_table(
    models: Iterable[CataloguedModel],
    extra_routes: Mapping[str, Sequence[str]],
    front_domain: str,
    import_domain: str | None = None,
) -> list[Route]:
    """``[(path, methods, domain)]``: shared routes first, then per domain (sorted) its models, task prefix, extras,
    and for ``import_domain`` (where it has a function) the routes of imported models (``IMPORT_ROUTES``).

    ``extra_routes`` has one key per domain that has a function (its extra routes, possibly none).
    """
    domains = sorted(extra_routes)
    for domain in domains:
        if not DOMAIN_NAME.match(domain):
            raise RouteError(f"domain {domain!r}: a domain name is lower-case letters, digits and '_'")
    if front_domain not in extra_routes:
        raise RouteError(
            f"front domain {front_domain!r} (CDK context 'aimass:frontDomain') has no function; "
            f"domains with a function: {domains}"
        )

    by_domain: dict[str, list[str]] = {domain: [] for domain in domains}
    for model in models:
        if model.domain not in by_domain:
            raise RouteError(
                f"model {model.name!r} belongs to domain {model.domain!r}, which has no function "
                f"(no functions/{model.domain}/Dockerfile); domains with a function: {domains}"
            )
        if not _LITERAL.match(model.name):
            raise RouteError(f"model {model.name!r} (domain {model.domain!r}): the name is not a valid URL path part")
        by_domain[model.domain].append(model.name)

    table = [Route(path, methods, front_domain) for path, methods in SHARED_ROUTES]
    for domain in domains:
        for name in sorted(by_domain[domain]):
            table.extend(Route(path, ANY, domain) for path in model_paths(name))
        table.append(Route(task_prefix(domain), ANY, domain))
        for path in extra_routes[domain]:
            check_path(path)
            if path == "/v2" or path.startswith("/v2/"):
                raise RouteError(
                    f"extra route {path!r} of domain {domain!r}: /v2 paths are routed from the model catalogue"
                )
            other = next((d for d in domains if d != domain and path.startswith(f"/v1/{d}/")), None)
            if other is not None:
                raise RouteError(f"extra route {path!r} of domain {domain!r} lies under domain {other!r}'s task prefix")
            table.append(Route(path, ANY, domain))
        if domain == import_domain:
            table.extend(Route(path, methods, domain) for path, methods in IMPORT_ROUTES)

    owners: dict[str, str] = {}
    for route in table:
        if route.path in owners:
            raise RouteError(
                f"path {route.path!r} is routed twice (domains {owners[route.path]!r} and {route.domain!r})"
            )
        owners[route.path] = route.domain
    return table
