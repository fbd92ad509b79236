"""The route table (infra/routes.py) on a made-up catalogue: pure, no CDK."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from infra.routes import SHARED_ROUTES, Route, RouteError, check_path, route_table


@dataclass(frozen=True)
class FakeModel:
    domain: str
    name: str


# Two domains, three models; the alpha domain has an extra route, beta has none.
CATALOGUE = [FakeModel("alpha", "a-one"), FakeModel("beta", "b-one"), FakeModel("alpha", "a-two")]
EXTRA = {"alpha": ("/v1/alpha-compat",), "beta": ()}


def _owners(table: list[Route]) -> dict[str, str]:
    return {route.path: route.domain for route in table}


def test_every_model_goes_to_its_own_domain() -> None:
    owners = _owners(route_table(CATALOGUE, EXTRA, "alpha"))
    for model in CATALOGUE:
        assert owners[f"/v2/models/{model.name}"] == model.domain
        assert owners[f"/v2/models/{model.name}/{{proxy+}}"] == model.domain


def test_task_prefixes_and_extra_routes() -> None:
    owners = _owners(route_table(CATALOGUE, EXTRA, "alpha"))
    assert owners["/v1/alpha/{proxy+}"] == "alpha"
    assert owners["/v1/beta/{proxy+}"] == "beta"
    assert owners["/v1/alpha-compat"] == "alpha"


@pytest.mark.parametrize("front", ["alpha", "beta"])
def test_shared_routes_go_to_the_front_domain(front: str) -> None:
    table = route_table(CATALOGUE, EXTRA, front)
    shared = [route for route in table if route.path in dict(SHARED_ROUTES)]
    assert {route.path for route in shared} == {
        "/v2",
        "/v2/health/{proxy+}",
        "/v2/repository/index",
        "/v1/models",
        "/docs",
        "/openapi.json",
        "/v1/admin/{proxy+}",
        "/v1/usage",
        "/v1/files",
        "/v1/files/{proxy+}",
        "/v1/uploads",
        "/v1/uploads/{proxy+}",
        "/v1/batches",
        "/v1/batches/{proxy+}",
        "/console",
        "/console/{proxy+}",
    }
    assert {route.domain for route in shared} == {front}


def test_the_table_is_exactly_this() -> None:
    assert route_table(CATALOGUE, EXTRA, "alpha") == [
        ("/v2", ("ANY",), "alpha"),
        ("/v2/health/{proxy+}", ("ANY",), "alpha"),
        ("/v2/repository/index", ("ANY",), "alpha"),
        ("/v1/models", ("ANY",), "alpha"),
        ("/docs", ("GET",), "alpha"),
        ("/openapi.json", ("GET",), "alpha"),
        ("/v1/admin/{proxy+}", ("ANY",), "alpha"),
        ("/v1/usage", ("ANY",), "alpha"),
        ("/v1/files", ("ANY",), "alpha"),
        ("/v1/files/{proxy+}", ("ANY",), "alpha"),
        ("/v1/uploads", ("ANY",), "alpha"),
        ("/v1/uploads/{proxy+}", ("ANY",), "alpha"),
        ("/v1/batches", ("ANY",), "alpha"),
        ("/v1/batches/{proxy+}", ("ANY",), "alpha"),
        ("/console", ("GET",), "alpha"),
        ("/console/{proxy+}", ("GET",), "alpha"),
        ("/v2/models/a-one", ("ANY",), "alpha"),
        ("/v2/models/a-one/{proxy+}", ("ANY",), "alpha"),
        ("/v2/models/a-two", ("ANY",), "alpha"),
        ("/v2/models/a-two/{proxy+}", ("ANY",), "alpha"),
        ("/v1/alpha/{proxy+}", ("ANY",), "alpha"),
        ("/v1/alpha-compat", ("ANY",), "alpha"),
        ("/v2/models/b-one", ("ANY",), "beta"),
        ("/v2/models/b-one/{proxy+}", ("ANY",), "beta"),
        ("/v1/beta/{proxy+}", ("ANY",), "beta"),
    ]


def test_a_domain_without_models_still_gets_its_task_prefix() -> None:
    owners = _owners(route_table([FakeModel("alpha", "a-one")], EXTRA, "alpha"))
    assert owners["/v1/beta/{proxy+}"] == "beta"
    assert not any(path.startswith("/v2/models/") and domain == "beta" for path, domain in owners.items())


def test_a_model_without_a_function_is_an_error_naming_model_and_domain() -> None:
    with pytest.raises(RouteError, match=r"model 'g-one' belongs to domain 'gamma', which has no function"):
        route_table([*CATALOGUE, FakeModel("gamma", "g-one")], EXTRA, "alpha")


def test_the_front_domain_must_have_a_function() -> None:
    with pytest.raises(RouteError, match=r"front domain 'gamma' \(CDK context 'aimass:frontDomain'\)"):
        route_table(CATALOGUE, EXTRA, "gamma")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"alpha": ("/v1/models",), "beta": ()}, r"'/v1/models' is routed twice \(domains 'alpha' and 'alpha'\)"),
        ({"alpha": ("/v1/usage",), "beta": ()}, r"'/v1/usage' is routed twice \(domains 'alpha' and 'alpha'\)"),
        # A domain named admin would take the admin API's prefix.
        (
            {"alpha": (), "beta": (), "admin": ()},
            r"'/v1/admin/\{proxy\+\}' is routed twice \(domains 'alpha' and 'admin'\)",
        ),
        ({"alpha": ("/v1/x",), "beta": ("/v1/x",)}, r"'/v1/x' is routed twice \(domains 'alpha' and 'beta'\)"),
        ({"alpha": ("/v1/beta/steal",), "beta": ()}, r"lies under domain 'beta'"),
        ({"alpha": ("/v2/models/x",), "beta": ()}, r"/v2 paths are routed from the model catalogue"),
        ({"alpha": ("v1/no-slash",), "beta": ()}, r"must start with '/'"),
    ],
)
def test_conflicting_extra_routes_are_rejected(extra: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(RouteError, match=message):
        route_table(CATALOGUE, extra, "alpha")


def test_model_names_must_be_path_parts() -> None:
    with pytest.raises(RouteError, match=r"model 'a b' \(domain 'alpha'\)"):
        route_table([FakeModel("alpha", "a b")], EXTRA, "alpha")


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/audio/transcriptions", "/v1/x/{proxy+}", "/a/{id}/b"])
def test_valid_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", ["", "/", "/v1/", "v1", "/v1//x", "/v1/{proxy+}/x", "/v1/a b", "/v1/{x"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(RouteError):
        check_path(path)
