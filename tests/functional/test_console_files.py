"""``/console``: the built files with a strict Content-Security-Policy, and nothing outside the build folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aimass.http.console import console_routes
from aimass.http.errors import install_error_handlers


def client_of(root: Path) -> TestClient:
    app = Starlette(routes=console_routes(root))
    install_error_handlers(app)
    return TestClient(app)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "app.js").write_text("export {};")
    (root / "app.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not served")
    return root


def test_the_folder_redirects_to_its_index_which_is_served_with_a_strict_policy(built: Path) -> None:
    client = client_of(built)
    moved = client.get("/console", follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == "console/"  # relative: an API Gateway stage prefix is kept
    page = client.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"


def test_each_file_has_its_type(built: Path) -> None:
    client = client_of(built)
    assert client.get("/console/app.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert client.get("/console/app.css").headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "/console/missing.js",
        "/console/../secret.txt",
        "/console/%2e%2e/secret.txt",
        "/console/%00",  # a NUL byte, which no file name holds
        "/console/" + "x" * 300,  # one name past the file system's limit
        "/console/" + "a/" * 3000,  # a path past it
        "/console/" + "x" * 150 + "/" + "y" * 150,  # within each name's limit, past the bundle's
    ],
)
def test_a_missing_file_or_one_outside_the_folder_is_a_404(built: Path, path: str) -> None:
    answer = client_of(built).get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    answer = client_of(tmp_path / "absent").get("/console/")
    assert answer.status_code == 503
    assert "make console" in answer.json()["error"]["message"]


def test_a_function_serves_the_console_without_fastapi(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function (the rl handler, in a fresh interpreter) with a built console
    from tests.functional.test_lean_lambda import at, imported, run_handler
    from tests.tiny_rl import build_tiny_rl

    store = tmp_path / "store"
    build_tiny_rl(store)
    monkeypatch.setenv("AIMASS_CONSOLE_DIR", str(built))
    # WHEN API Gateway sends it the console's page and a file it lacks
    loaded, page, missing = run_handler(
        store, [at("apigw_rest_v1_models", "/console/"), at("apigw_rest_v1_models", "/console/absent.js")]
    )
    # THEN both are answered by the lean app: FastAPI stays off the cold path
    assert page["response"]["statusCode"] == 200, page
    assert "<title>console</title>" in page["response"]["body"]
    headers = {name.lower(): value for name, value in page["response"]["headers"].items()}
    assert "default-src 'self'" in headers["content-security-policy"]
    assert missing["response"]["statusCode"] == 404, missing
    assert not imported(loaded, "fastapi") and not imported(missing, "fastapi")
