"""`aimass new-domain`'s guards and its writing: which names it takes, and that it never overwrites a file.

Each test scaffolds into a small stand-in checkout (the templates, the core's pinned requirements and
pyproject.toml), so nothing here touches the repository.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aimass_tools.cli.new_domain import CORE_REQUIREMENTS, NewDomainError, check_name, new_domain, scaffold

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / CORE_REQUIREMENTS).parent.mkdir(parents=True)
    shutil.copy(ROOT / CORE_REQUIREMENTS, tmp_path / CORE_REQUIREMENTS)
    (tmp_path / "functions").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", ["shapes", "x", "sensor_readings_2", "a" * 30])
def test_lower_case_identifiers_are_taken(checkout: Path, name: str) -> None:
    check_name(name, checkout)


@pytest.mark.parametrize("name", ["Shapes", "2d", "_x", "my-domain", "my domain", "", "a" * 31, "caf\u00e9"])
def test_malformed_names_are_refused_with_the_rule(checkout: Path, name: str) -> None:
    with pytest.raises(NewDomainError, match="use 1-30 lower-case letters, digits and '_', starting with a letter"):
        check_name(name, checkout)


@pytest.mark.parametrize(
    "name", ["models", "audio", "embeddings", "chat", "buildkit", "authorizer", "v2", "class", "import"]
)
def test_api_paths_checkout_folders_and_keywords_are_reserved(checkout: Path, name: str) -> None:
    with pytest.raises(NewDomainError, match=f"'{name}' is reserved"):
        check_name(name, checkout)


def test_a_functions_extra_route_under_v1_reserves_its_first_part(checkout: Path) -> None:
    # GIVEN a function answering /v1/translate/text besides its own prefix
    (checkout / "functions" / "speech").mkdir()
    (checkout / "functions" / "speech" / "function.toml").write_text('routes = ["/v1/translate/text"]\n')
    # THEN a domain named translate would put its task prefix over that route
    with pytest.raises(NewDomainError, match="'translate' is reserved"):
        check_name("translate", checkout)


@pytest.mark.parametrize("top", ["functions", "models"])
def test_an_existing_domain_is_refused(checkout: Path, top: str) -> None:
    (checkout / top / "shapes").mkdir(parents=True)
    with pytest.raises(NewDomainError, match=rf"domain 'shapes' already exists \({top}/shapes\)"):
        check_name("shapes", checkout)


@pytest.mark.parametrize("name", ["rl_agents", "text_topics", "sensor"])
def test_a_name_that_would_share_another_domains_events_is_refused(checkout: Path, name: str) -> None:
    # GIVEN domains rl, text and sensor_grid: events are found as apigw_<kind>_<domain>_<what>.json
    for domain in ("rl", "text", "sensor_grid"):
        (checkout / "functions" / domain).mkdir(parents=True, exist_ok=True)
    with pytest.raises(NewDomainError, match="would share generated events"):
        check_name(name, checkout)


def test_a_model_name_another_domain_serves_is_refused(checkout: Path) -> None:
    # GIVEN a model of domain "art" served as shapes-digits, the name image-classification would give "shapes"
    (checkout / "models" / "art" / "digits").mkdir(parents=True)
    (checkout / "models" / "art" / "digits" / "spec.py").write_text('NAME = "shapes-digits"\nVERSION = "1"\n')
    with pytest.raises(
        NewDomainError, match=re.escape("model name 'shapes-digits' is taken by models/art/digits/spec.py")
    ):
        scaffold("shapes", "image-classification", checkout)
    assert not (checkout / "functions" / "shapes").exists()


def test_the_repositorys_own_domains_are_refused() -> None:
    for domain in ("text", "vision", "rl"):
        with pytest.raises(NewDomainError, match="already exists"):
            check_name(domain, ROOT)


def test_scaffold_writes_every_file_and_returns_them(checkout: Path) -> None:
    written = scaffold("shapes", "image-classification", checkout)
    assert Path("functions/shapes/aimass_shapes/runtime.py") in written
    assert all((checkout / path).is_file() for path in written)
    assert (
        "COPY model_store/shapes-digits ${LAMBDA_TASK_ROOT}/model_store/shapes-digits"
        in (checkout / "functions/shapes/Dockerfile").read_text()
    )


def test_scaffold_never_overwrites_and_then_writes_nothing(checkout: Path) -> None:
    # GIVEN a file where the new domain would write one (a generated event, say)
    event = checkout / "tests" / "events" / "apigw_http_v2_shapes_infer.json"
    event.parent.mkdir(parents=True)
    event.write_text("{}")
    # WHEN the domain is scaffolded THEN it is refused, naming the file, and nothing else is written
    with pytest.raises(NewDomainError, match=re.escape("would overwrite tests/events/apigw_http_v2_shapes_infer.json")):
        scaffold("shapes", "image-classification", checkout)
    assert event.read_text() == "{}"
    assert not (checkout / "functions" / "shapes").exists() and not (checkout / "models").exists()


def test_an_unknown_template_is_refused_with_the_known_ones(checkout: Path) -> None:
    with pytest.raises(NewDomainError, match="no template 'video'; templates: audio-classification, image-"):
        scaffold("clips", "video", checkout)


def test_the_command_prints_what_it_wrote_and_the_next_commands(checkout: Path) -> None:
    app = typer.Typer()
    app.command()(new_domain)
    result = CliRunner().invoke(app, ["cellar", "--template", "tabular", "--checkout", str(checkout)])
    assert result.exit_code == 0, result.output
    assert "functions/cellar/aimass_cellar/runtime.py" in result.output
    for command in (
        "aimass models build cellar",
        "python -m models.buildkit.card record models/cellar/wine",
        "python -m models.buildkit.card render models/cellar/wine",
        "aimass serve",
        "pytest tests/functional/test_cellar_domain.py",
        "aimass invoke cellar tests/events/apigw_http_v2_cellar_infer.json",
    ):
        assert command in result.output


def test_the_command_exits_2_on_a_bad_name(checkout: Path) -> None:
    app = typer.Typer()
    app.command()(new_domain)
    result = CliRunner().invoke(app, ["models", "--template", "tabular", "--checkout", str(checkout)])
    assert result.exit_code == 2
    assert not (checkout / "functions" / "models").exists()
