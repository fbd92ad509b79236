"""`aimass new-domain` end to end, in a temporary copy of the checkout: scaffold every template, build each
model, and serve it, with no other file edited.

GIVEN a copy of the checkout (layers/, tools/, functions/, models/, tests/, templates/, pyproject.toml) WHEN each
template scaffolds a domain there THEN the model catalogue, the CDK app's functions and route table, the
local server and the Lambda handlers all pick it up: each model builds with `aimass models build`, answers
its generated events over real HTTP from `aimass serve`, passes its own generated functional test (V2 and
the task over HTTP, the handler with the events) and lints clean; its events pass the checks that
tests/unit/test_events.py holds the repository's to, and `python -m tests.events --check` finds them current.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aimass_tools.cli.new_domain import CARD_MODULE, card_commands, scaffold
from infra.config import ServingConfig, discover_functions
from infra.routes import model_paths, route_table, task_prefix
from models.catalogue import catalogue
from tests.events.checks import MODELS, duplicates, framing_problems, kind
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
# (template, domain name, served model): every template, one name long enough to test the line lengths.
DOMAINS = [
    ("image-classification", "glyphs", "glyphs-digits"),
    ("text-classification", "newsdesk_topics_for_the_tests", "newsdesk-topics-for-the-tests-topics"),
    ("audio-classification", "tones", "tones-tones"),
    ("tabular", "cellar", "cellar-wine"),
    ("policy", "balance", "balance-cartpole"),
]
NAMES = [name for _, name, _ in DOMAINS]
COPIED = ("layers", "tools", "functions", "models", "tests", "templates", "pyproject.toml")
# Kept between runs (beside `make typecheck`'s, git-ignored): only the copy's own modules are checked afresh.
MYPY_CACHE = ROOT / ".mypy_cache" / "new-domain-copies"


def copy_checkout(target: Path) -> None:
    """The files of the checkout that the commands read: tracked ones as they are now, plus the templates."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *COPIED], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    paths = {Path(p) for p in listed.split("\0") if p}
    # The command, its templates, its events' builder and the core module their runtimes build on, whether
    # committed yet or not.
    paths |= {p.relative_to(ROOT) for p in (ROOT / "templates").rglob("*") if p.is_file()}
    paths |= {Path("tools/aimass_tools/cli/new_domain.py"), Path("tools/aimass_tools/events.py")}
    paths |= {Path("layers/aimass/serving/classify.py")}
    for relative in paths:
        source = ROOT / relative
        if source.is_file() and "__pycache__" not in relative.parts:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def environment(checkout: Path) -> dict[str, str]:
    """This environment, less any AIMASS_ settings, importing the copy's own aimass, aimass_tools, models and tests.

    Metering stays off: the generated events carry no API key (keys are tested in tests/*/test_metering*).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIMASS_")}
    pythonpath = os.pathsep.join(str(path) for path in (checkout, checkout / "layers", checkout / "tools"))
    return env | {"PYTHONPATH": pythonpath, "COLUMNS": "200", "AIMASS_METERING": "off"}


def run(checkout: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A Python command in the copy."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=checkout,
        env=environment(checkout),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def flat(text: str) -> str:
    """Output without rich's panel borders and line wrapping."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkout")
    copy_checkout(root)
    return root


@pytest.fixture(scope="module")
def scaffolded(checkout: Path) -> dict[str, list[Path]]:
    """Every template scaffolded: the first through the command line, as a user runs it."""
    (template, name, _), *rest = DOMAINS
    result = run(checkout, "-m", "aimass_tools.cli.new_domain", name, "--template", template)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("Next:")[0].splitlines()[1:]  # the files, one a line, before the next commands
    written = {name: [Path(line.strip()) for line in listing if line.startswith("  ")]}
    for template, name, _ in rest:
        written[name] = scaffold(name, template, checkout)
    return written


@pytest.fixture(scope="module")
def store(checkout: Path, scaffolded: dict[str, list[Path]]) -> Path:
    """Every new model, built by `aimass models build` into the copy's store: two builds at a time."""
    target = checkout / "model_store"
    groups = [NAMES[:1], NAMES[1:]]  # the image build (PyTorch) beside all the others
    command = [sys.executable, "-m", "aimass_tools.cli", "models", "build", "--store", str(target)]
    builds = [
        subprocess.Popen(
            [*command, *group],
            cwd=checkout,
            env=environment(checkout),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for group in groups
    ]
    for build, group in zip(builds, groups, strict=True):
        output, _ = build.communicate(timeout=300)
        assert build.returncode == 0, f"building {group} failed:\n{output.decode()[-3000:]}"
    return target


def test_the_command_writes_a_whole_domain_and_says_what_next(scaffolded: dict[str, list[Path]]) -> None:
    name = NAMES[0]
    assert set(scaffolded[name]) >= {
        Path(f"functions/{name}/Dockerfile"),
        Path(f"functions/{name}/handler.py"),
        Path(f"functions/{name}/function.toml"),
        Path(f"functions/{name}/requirements.txt"),
        Path(f"functions/{name}/aimass_{name}/__init__.py"),
        Path(f"functions/{name}/aimass_{name}/runtime.py"),
        Path(f"functions/{name}/aimass_{name}/codecs.py"),
        Path(f"models/{name}/digits/build.py"),
        Path(f"models/{name}/digits/spec.py"),
        Path(f"models/{name}/digits/card.md"),
        Path(f"tests/functional/test_{name}_domain.py"),
        Path(f"tests/events/apigw_http_v2_{name}_infer.json"),
    }


def test_the_command_refuses_an_existing_domain_and_writes_nothing(checkout: Path, scaffolded: object) -> None:
    runtime = checkout / "functions" / NAMES[0] / f"aimass_{NAMES[0]}" / "runtime.py"
    before = runtime.read_text()
    runtime.write_text(before + "# edited\n")
    result = run(checkout, "-m", "aimass_tools.cli.new_domain", NAMES[0], "--template", "tabular")
    assert result.returncode == 2
    assert f"domain '{NAMES[0]}' already exists" in flat(result.stderr)
    assert runtime.read_text() == before + "# edited\n"
    runtime.write_text(before)


def test_the_new_events_pass_the_event_checks_and_regenerate_unchanged(
    checkout: Path, scaffolded: dict[str, list[Path]]
) -> None:
    # GIVEN the copy's events: the repository's and every new domain's
    events = {path.stem: json.loads(path.read_text()) for path in (checkout / "tests" / "events").glob("*.json")}
    new = {path.stem for paths in scaffolded.values() for path in paths if path.parent == Path("tests/events")}
    assert len(new) == 2 * len(DOMAINS)
    # THEN each new one is framed as API Gateway frames it and validates against Powertools' model, no id
    # repeats across all of them (tests/unit/test_events.py's checks) ...
    for name in sorted(new):
        assert framing_problems(events[name]) == [], name
        MODELS[kind(events[name])].model_validate(events[name])
    assert duplicates(events) == []
    # ... and the command that regenerates tests/events finds each in its table, written as the builder writes it
    result = run(checkout, "-m", "tests.events", "--check")
    assert result.returncode == 0, result.stderr


def test_the_catalogue_the_cdk_functions_and_the_routes_pick_the_domains_up(checkout: Path, scaffolded: object) -> None:
    entries = {entry.name: entry for entry in catalogue(checkout / "models")}
    functions = discover_functions(checkout, ServingConfig())
    table = {route.path: route.domain for route in route_table(
        entries.values(), {d: spec.settings.routes for d, spec in functions.items()}, front_domain="text"
    )}  # fmt: skip
    for _, name, model in DOMAINS:
        assert (entries[model].domain, entries[model].version) == (name, "1")
        assert functions[name].dockerfile == f"functions/{name}/Dockerfile"
        assert all(table[path] == name for path in (*model_paths(model), task_prefix(name)))


def test_each_model_answers_its_events_from_the_local_server(checkout: Path, store: Path) -> None:
    # GIVEN `aimass serve` over the copy's store (every domain, found from the copy's functions/)
    with serving(checkout, store) as base:
        for _, name, model in DOMAINS:
            for event_file in sorted((checkout / "tests" / "events").glob(f"apigw_http_v2_{name}_*.json")):
                event = json.loads(event_file.read_text())
                # WHEN each event's request is sent over HTTP
                response = httpx.post(
                    base + event["rawPath"], content=event["body"], headers={"content-type": "application/json"}
                )
                # THEN the new model answers it: V2 inference and the template's task
                assert response.status_code == 200, (event_file.name, response.text)
                body = response.json()
                assert model in (body.get("model_name"), body.get("model")), event_file.name


def test_the_new_cards_render_from_the_builds_and_pass_the_card_check(
    checkout: Path, scaffolded: dict[str, list[Path]], store: Path
) -> None:
    # GIVEN the built models and the commands new-domain prints to finish their cards (record, then render)
    commands = [command.split() for paths in scaffolded.values() for command in card_commands(paths)]
    assert {(python, flag, module) for python, flag, module, *_ in commands} == {("python", "-m", CARD_MODULE)}
    # WHEN they run in the checkout (whose model_store the builds wrote), one process an action: the module
    # takes every folder at once
    folders = sorted({folder for *_, folder in commands})
    assert len(folders) == len(DOMAINS) and [verb for *_, verb, _ in commands] == ["record", "render"] * len(DOMAINS)
    for action in ("record", "render"):
        result = run(checkout, "-m", CARD_MODULE, action, *folders)
        assert result.returncode == 0, result.stderr
    # THEN each new model's card passes the check tests/unit/test_model_cards.py holds every catalogued model to
    # (the new ones alone: the copy lacks sources that other cards name outside models/, such as bench/records)
    result = run(checkout, "-m", CARD_MODULE, "check", *folders)
    assert result.returncode == 0, result.stderr
    assert (checkout / folders[0] / "MODEL_CARD.md").read_text().startswith("<!-- Generated from card.md")


def test_the_generated_functional_tests_pass(checkout: Path, store: Path) -> None:
    tests = [f"tests/functional/test_{name}_domain.py" for name in NAMES]
    result = run(checkout, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]
    assert " failed" not in result.stdout and " passed" in result.stdout


def test_the_invoke_command_runs_a_new_handler_on_its_event(checkout: Path, store: Path) -> None:
    name = NAMES[-1]
    event = f"tests/events/apigw_http_v2_{name}_infer.json"
    result = run(checkout, "-m", "aimass_tools.cli", "invoke", name, event, "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200


def test_the_generated_code_is_lint_clean(checkout: Path, scaffolded: dict[str, list[Path]]) -> None:
    python = [str(path) for paths in scaffolded.values() for path in paths if path.suffix == ".py"]
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    for command in (["check", *python], ["format", "--check", *python]):
        result = subprocess.run([ruff, *command], cwd=checkout, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_generated_code_type_checks(checkout: Path, scaffolded: object) -> None:
    # As `make typecheck` runs it: every domain package on MYPYPATH, each entrypoint on its own.
    packages = sorted((checkout / "functions").glob("*/aimass_*"))
    env = environment(checkout) | {"MYPYPATH": os.pathsep.join(str(package.parent) for package in packages)}
    code = [path for name in NAMES for path in (f"functions/{name}/aimass_{name}", f"models/{name}")]
    tests = [f"tests/functional/test_{name}_domain.py" for name in NAMES]
    for files, mypy_path in (([*code, *tests], env["MYPYPATH"]), ([f"functions/{NAMES[0]}/handler.py"], "layers")):
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--cache-dir", str(MYPY_CACHE), *files],
            cwd=checkout,
            env=env | {"MYPYPATH": mypy_path},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def serving(checkout: Path, store: Path) -> Iterator[str]:
    """`aimass serve` over ``store`` in the copy, on a free port; yields the base URL once it is ready."""
    port = free_port()
    command = ["-m", "aimass_tools.cli", "serve", "--store", str(store), "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, *command],
        cwd=checkout,
        env=environment(checkout),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not ready(base):
            assert server.poll() is None, f"aimass serve exited: {server.communicate()[1].decode()[-3000:]}"
            assert time.monotonic() < deadline, "aimass serve was not ready within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v2/health/ready").status_code == 200
    except httpx.TransportError:
        return False
