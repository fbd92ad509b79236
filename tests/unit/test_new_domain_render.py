"""What `aimass new-domain` writes for each template, rendered in memory and checked without building a model.

Every template is rendered with a name of the longest length allowed, so that a placeholder cannot push a
generated line past the linter's limit; the Python is linted with the project's own settings, and the other
files are read by the tools that consume them (the catalogue, infra's function settings, the Dockerfile
replayer).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aimass.store.manifest import ModelManifest
from aimass_tools.cli.new_domain import (
    CARD_MODULE,
    CARD_TEMPLATE,
    CORE_REQUIREMENTS,
    DomainTemplate,
    NewDomainError,
    card_commands,
    render,
    requirements,
    templates,
)
from aimass_tools.events import REQUESTS, event_text, from_request, read_requests
from aimass_tools.packaging import Copy, read_recipe
from infra.config import load_function_config
from models.buildkit import card
from models.buildkit.build_record import RECORD_FILE
from models.catalogue import catalogue
from tests.events.checks import MODELS, duplicates, framing_problems, kind

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = templates(ROOT / "templates")
LONGEST = "a_domain_name_of_thirty_chars0"  # 30 characters, the most a name may have
REQUIRED = {"image-classification", "text-classification", "audio-classification", "tabular", "policy"}
# A domain's own code (runtime.py + codecs.py, physical lines) stays below this: what the templates share
# (the graph's load checks, running it, top-k answers) lives once in the core, aimass.serving.classify.
DOMAIN_CODE_LINES = 100


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def template(request: pytest.FixtureRequest) -> DomainTemplate:
    found: DomainTemplate = TEMPLATES[request.param]
    return found


@pytest.fixture(scope="module")
def rendered(template: DomainTemplate, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's files for domain LONGEST, written into an empty folder."""
    root = tmp_path_factory.mktemp(template.name)
    for path, text in render(LONGEST, template, ROOT).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def model_of(template: DomainTemplate) -> str:
    return f"{LONGEST.replace('_', '-')}-{template.model}"


def test_the_required_templates_exist() -> None:
    assert set(TEMPLATES) >= REQUIRED
    assert all(template.events.keys() >= {"infer", template.task} for template in TEMPLATES.values())


def test_a_template_writes_the_whole_domain(template: DomainTemplate) -> None:
    files = set(render(LONGEST, template, ROOT))
    function, package = Path("functions", LONGEST), Path("functions", LONGEST, f"aimass_{LONGEST}")
    model = Path("models", LONGEST, template.model)
    assert files >= {
        *(function / name for name in ("Dockerfile", "handler.py", "function.toml", "requirements.txt")),
        *(package / name for name in ("__init__.py", "runtime.py", "codecs.py")),
        *(model / name for name in ("spec.py", "build.py", "card.md")),
        Path(f"tests/functional/test_{LONGEST}_domain.py"),
        Path(f"tests/events/apigw_http_v2_{LONGEST}_infer.json"),
        Path(f"tests/events/apigw_http_v2_{LONGEST}_{template.task}.json"),
        REQUESTS / f"{LONGEST}.json",
    }
    assert all(LONGEST in str(path) for path in files)
    assert model / "MODEL_CARD.md" not in files  # rendered from card.md and the build's record, never typed


def test_the_domains_own_code_stays_small(template: DomainTemplate) -> None:
    files = render(LONGEST, template, ROOT)
    package = Path("functions", LONGEST, f"aimass_{LONGEST}")
    lines = {name: len(files[package / name].splitlines()) for name in ("runtime.py", "codecs.py")}
    assert sum(lines.values()) < DOMAIN_CODE_LINES, (
        f"{template.name}: {lines}, {sum(lines.values())} lines; move what templates repeat into layers/aimass"
    )


def test_the_generated_python_is_lint_clean(rendered: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["check", *config, "."], ["format", "--check", *config, "."]):
        result = subprocess.run([ruff, *command], cwd=rendered, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_catalogue_finds_the_model(template: DomainTemplate, rendered: Path) -> None:
    (entry,) = catalogue(rendered / "models")
    assert (entry.domain, entry.name, entry.version) == (LONGEST, model_of(template), "1")
    assert entry.build_script == rendered / "models" / LONGEST / template.model / "build.py"


def test_the_card_is_a_template_over_the_builds_record(template: DomainTemplate, rendered: Path) -> None:
    # GIVEN the card.md new-domain writes, and what the record will hold: the manifest's fields, the build's
    # report, the constants of spec.py, and the quality keys build.py writes
    model_dir = rendered / "models" / LONGEST / template.model
    written = card.read_template(model_dir)
    spec = {
        name.id
        for node in ast.parse((model_dir / "spec.py").read_text()).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        for name in ast.walk(target)
        if isinstance(name, ast.Name)
    }
    build = (model_dir / "build.py").read_text()
    # THEN it reads the build's record only, through paths that exist in it (the integration test renders it
    # from a real build and checks it)
    assert written.source_files == {"record": RECORD_FILE}
    paths = [match.split("|")[0].split(":")[0].strip() for match in card.PLACEHOLDER.findall(written.body)]
    assert paths and all(path.startswith("record.") for path in paths)
    for path in paths:
        top, *rest = path.removeprefix("record.").replace("[", ".").split(".")
        assert top in {*ModelManifest.model_fields, "build", "constants", "recorded_at"}, path
        if top == "constants":
            assert rest[0] == "spec" and rest[1] in spec, f"{path}: spec.py has no {rest[1]}"
        elif top == "quality":
            assert f'"{rest[0]}"' in build or f"{rest[0]}=" in build, f"{path}: build.py records no {rest[0]}"
    # ... and new-domain's next steps are the card module's own record and render of that folder
    assert card_commands(render(LONGEST, template, ROOT)) == [
        f"python -m {CARD_MODULE} {action} models/{LONGEST}/{template.model}" for action in ("record", "render")
    ]
    assert (card.__name__, card.TEMPLATE_FILE) == (CARD_MODULE, CARD_TEMPLATE)


def test_the_function_settings_validate(rendered: Path) -> None:
    settings = load_function_config(rendered / "functions" / LONGEST / "function.toml")
    assert settings.routes == () and settings.timeout_s <= 29


def test_the_dockerfile_replays_and_copies_the_domain_and_its_model(template: DomainTemplate, rendered: Path) -> None:
    recipe = read_recipe(rendered / "functions" / LONGEST / "Dockerfile")
    copied = {str(step.dest) for step in recipe.steps if isinstance(step, Copy)}
    assert copied >= {"aimass", f"aimass_{LONGEST}", "handler.py", f"model_store/{model_of(template)}"}
    assert json.loads(recipe.env["AIMASS_DOMAINS"]) == [LONGEST]
    assert recipe.cmd == ["handler.handler"]


def test_requirements_are_the_core_closure_plus_the_templates_packages(
    template: DomainTemplate, rendered: Path
) -> None:
    lines = (rendered / "functions" / LONGEST / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    core = [line for line in (ROOT / CORE_REQUIREMENTS).read_text().splitlines() if line and not line.startswith("#")]
    assert set(core) <= set(pins) and pins == sorted(pins, key=lambda pin: pin.split("==")[0].lower())
    assert {pin.split("==")[0] for pin in set(pins) - set(core)} == set(template.packages)


def test_the_events_pass_the_event_checks_and_rebuild_from_their_requests(
    template: DomainTemplate, rendered: Path
) -> None:
    # GIVEN the events and the requests file new-domain wrote
    requests = read_requests(rendered / REQUESTS / f"{LONGEST}.json")
    events = {path.stem: json.loads(path.read_text()) for path in (rendered / REQUESTS.parent).glob("*.json")}
    assert set(events) == set(requests) == {f"apigw_http_v2_{LONGEST}_{what}" for what in template.events}
    for name, event in events.items():
        written = (rendered / REQUESTS.parent / f"{name}.json").read_text()
        # THEN each is what the builder makes of its request (as python -m tests.events regenerates it), is
        # framed as API Gateway frames it and validates against Powertools' model, as tests/unit/test_events.py
        # holds the repository's events
        assert written == event_text(from_request(name, requests[name]))
        assert framing_problems(event) == [], name
        MODELS[kind(event)].model_validate(event)
        json.loads(event["body"])
    assert duplicates(events) == []
    infer = events[f"apigw_http_v2_{LONGEST}_infer"]
    assert infer["rawPath"] == f"/v2/models/{model_of(template)}/infer"


def test_a_templates_package_is_pinned_as_the_project_pins_it() -> None:
    (added,) = set(requirements(ROOT, ("Pillow",))) - set(requirements(ROOT, ()))
    assert added.startswith("pillow==") and added.replace(" ", "") in (ROOT / "pyproject.toml").read_text()
    with pytest.raises(NewDomainError, match="package 'not-a-dependency' is not pinned"):
        requirements(ROOT, ("not-a-dependency",))
