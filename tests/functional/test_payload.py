"""The text function's image payload, assembled without Docker, serves on its own.

``aimass_tools.packaging`` replays functions/text/Dockerfile into a folder standing for ``/var/task``.
The handler then runs from that folder in a fresh interpreter that sees only the payload and the
standard library (``-I -S``: no site-packages, no PYTHONPATH), the way the Lambda runtime imports it,
and answers generated API Gateway events with the real model. A dependency missing from
functions/text/requirements.txt, a file the image does not copy, or a build/dev tool that slipped into
the image fails here.
"""

from __future__ import annotations

import ast
import base64
import csv
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import distributions
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from packaging.requirements import Requirement

from aimass.metering.key_admin import create_key
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.settings import DEFAULT_PLANS
from aimass_tools.packaging import (
    ENV_FILE,
    REPORT_FILE,
    Copy,
    PackagingError,
    PipInstall,
    Remove,
    build_payload,
    is_ignored,
    local_env,
    print_report,
    read_dockerignore,
    read_recipe,
)
from models.catalogue import catalogue
from tests.conftest import build_domain_models

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
# Every model domain's function (a functions/<domain>/ with a Dockerfile), each answering its own generated
# events; the API key authorizer (functions/authorizer) serves no model and has its own test below.
AUTHORIZER = "authorizer"
DOMAINS = sorted(
    path.parent.name for path in (ROOT / "functions").glob("*/Dockerfile") if path.parent.name != AUTHORIZER
)
# What only the serving stack imports: the authorizer's image holds none of it.
SERVING_STACK = {"numpy", "onnxruntime", "fastapi", "starlette", "mangum", "cryptography", "aws_lambda_powertools"}
# Import names of build and dev tools, the operator tools (and huggingface-hub, left out on purpose): none ships.
FORBIDDEN = {
    "aimass_tools",
    "torch",
    "pytest",
    "_pytest",
    "aws_cdk",
    "constructs",
    "jsii",
    "uvicorn",
    "typer",
    "rich",
    "huggingface_hub",
    "onnx",
    "httpx",
    "sentence_transformers",
    "transformers",
}

# Runs in the fresh interpreter, cwd = the payload. Prints one JSON line: timings, responses, modules.
SCRIPT = r"""
import json, sys, sysconfig, time

payload, started, events = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, payload)  # what the Lambda runtime does with /var/task
leaked = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
assert not leaked, f"site-packages on sys.path: {leaked}"

import handler

imported = time.time()


class Context:
    function_name = "aimass-text"
    function_version = "$LATEST"
    memory_limit_in_mb = 3008
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:aimass-text"
    aws_request_id = "0f6a1c5e-2b7d-4e8f-9a0b-1c2d3e4f5a6b"
    log_group_name = "/aws/lambda/aimass-text"
    log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self):
        return 29_000


responses, first = {}, None
for name, path in events.items():
    with open(path) as handle:
        responses[name] = handler.handler(json.load(handle), Context())
    first = first or time.time()

stdlib = (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
outside = sorted(
    name
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith((payload, *stdlib))
)
print(json.dumps({
    "import_s": imported - started,
    "first_response_s": first - started,
    "responses": responses,
    "modules": sorted(sys.modules),
    "outside": outside,
}))
"""


def event_names(domain: str) -> list[str]:
    """The domain's generated events that a healthy function answers with 200."""
    return sorted(p.stem for p in EVENTS.glob(f"apigw_*_{domain}_*.json") if "bad" not in p.stem)


@pytest.fixture(scope="module", params=DOMAINS)
def payload(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    domain: str = request.param
    store = build_domain_models(domain)
    # A folder per test run (parallel runs must not share one); the slow pip step is cached under build/.
    out = tmp_path_factory.mktemp("payload") / domain
    report = build_payload(domain, out, model_store=store)
    print_report(report)
    return out


@pytest.fixture(scope="module")
def run(payload: Path) -> dict[str, Any]:
    """One cold start: a new interpreter imports the handler and answers every generated event in turn."""
    events = {name: str(EVENTS / f"{name}.json") for name in event_names(payload.name)}
    assert events, f"no generated events for the {payload.name} function"
    # The generated events carry no API key; metering is tested on its own (tests/*/test_metering*).
    return cold_start(payload, events, {"AIMASS_METERING": "off"})


def cold_start(payload: Path, events: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    """A new interpreter that sees only ``payload`` imports its handler and answers ``events`` (name -> file)."""
    env = {**local_env(payload), "PATH": os.environ.get("PATH", ""), **env}
    started = time.time()
    result = subprocess.run(
        # -B: /var/task is read-only in Lambda, so nothing gets compiled into it there either.
        [sys.executable, "-I", "-S", "-B", "-c", SCRIPT, str(payload), repr(started), json.dumps(events)],
        cwd=payload,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"{payload.name}: cold start from the payload: handler imported (models loaded) in "
        f"{outcome['import_s']:.2f} s, first response {outcome['first_response_s']:.2f} s after process start"
    )
    return outcome


def _body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    headers = {key.lower(): value for key, value in (response.get("headers") or {}).items()}
    # The binary tensor extension: the JSON header, then the tensors' bytes.
    size = int(headers.get("inference-header-content-length", len(data)))
    return json.loads(data[:size])


def _requirement_names(domain: str) -> set[str]:
    text = (ROOT / "functions" / domain / "requirements.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return {_normalise(line.split("==")[0]) for line in lines if line}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.real_model
def test_handler_answers_from_the_payload_alone(run: dict[str, Any], payload: Path) -> None:
    # GIVEN a fresh interpreter that sees only the payload WHEN the handler answers each generated event
    served = {entry.name for entry in catalogue() if entry.domain == payload.name}
    for event, response in run["responses"].items():
        # THEN each is a 200 from one of the domain's own models (OpenAI's verbose transcription names none)
        assert response["statusCode"] == 200, (event, response)
        body = _body(response)
        named = body.get("model_name") or body.get("model") or body.get("name")
        assert named in served or (named is None and body.get("task") == "transcribe"), (event, body)


@pytest.mark.real_model
def test_only_the_payload_and_the_standard_library_are_imported(run: dict[str, Any]) -> None:
    assert run["outside"] == []
    assert not {name.split(".")[0] for name in run["modules"]} & FORBIDDEN


@pytest.mark.real_model
def test_payload_holds_exactly_the_pinned_closure(payload: Path) -> None:
    # No build or dev tool, and no huggingface-hub, among the top-level entries...
    assert not {entry.name for entry in payload.iterdir()} & FORBIDDEN
    # ...and pip installed exactly the requirements file's distributions, nothing more.
    installed = {_normalise(info.name.split("-")[0]) for info in payload.glob("*.dist-info")}
    assert installed == _requirement_names(payload.name)


@pytest.mark.real_model
def test_every_declared_dependency_is_in_the_payload(payload: Path) -> None:
    # The closure is complete: what each installed distribution requires (on this platform, without
    # extras) is installed too, at a version it accepts; the deliberate gaps are huggingface-hub (see
    # functions/text/requirements.txt) and sounddevice (pocketsphinx's microphone helper, never imported).
    installed = {_normalise(d.metadata["Name"]): d.version for d in distributions(path=[str(payload)])}
    missing = []
    for dist in distributions(path=[str(payload)]):
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = _normalise(requirement.name)
            if name in ("huggingface-hub", "sounddevice"):
                continue
            if name not in installed or not requirement.specifier.contains(installed[name], prereleases=True):
                missing.append(f"{dist.metadata['Name']} needs {spec}")
    assert not missing


@pytest.mark.real_model
def test_payload_lays_out_the_image(payload: Path) -> None:
    package = f"aimass_{payload.name}"
    assert (payload / "handler.py").is_file()
    assert (payload / "aimass" / "http" / "app.py").is_file()
    assert (payload / package).is_dir()
    # The project's own compiled files stay out (.dockerignore); the image compiles what it copied, into unchecked
    # hash-based .pyc files (flags 0b01, PEP 552), so no cold start compiles the core in a read-only task root.
    sources = [*(payload / "aimass").rglob("*.py"), *(payload / package).rglob("*.py"), payload / "handler.py"]
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        assert compiled.is_file(), f"{source.relative_to(payload)} is not compiled in the image"
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, f"{compiled} is not unchecked-hash"
    assert not (payload / "requirements.txt").exists(), "the Dockerfile removes it after pip install"
    # The operator tools (tools/aimass_tools: the CLI, quantization, this assembler) are in no image.
    assert not {"cli", "quantize", "packaging"} & {entry.name for entry in (payload / "aimass").iterdir()}
    # The models folder holds the domain's catalogued models and only what the server reads: version
    # directories, no build leftovers (a lock file, the temp directory of an interrupted build).
    expected = {entry.name: entry.version for entry in catalogue() if entry.domain == payload.name}
    assert {entry.name for entry in (payload / "model_store").iterdir()} == set(expected)
    for name, version in expected.items():
        assert sorted(entry.name for entry in (payload / "model_store" / name).iterdir()) == [version]
        assert (payload / "model_store" / name / version / "manifest.json").is_file()


@pytest.mark.real_model
def test_size_report_is_written(payload: Path) -> None:
    report = json.loads((payload / REPORT_FILE).read_text())
    assert report["total_mb"] > 0
    assert set(report["groups"]) == {"site-packages", "core", "function", "models"}
    assert "models" in report["groups"]  # a few kilobytes for a tabular model: rounds to 0.0 MiB
    assert sum(report["groups"].values()) == pytest.approx(report["total_mb"], abs=0.1)
    sizes = [row["mb"] for row in report["packages"]]
    assert sizes == sorted(sizes, reverse=True)
    assert "onnxruntime" in {row["name"] for row in report["packages"]}


# ---------------------------------------------------------------------------------------------------------
# The API key authorizer's image: the key checks alone, answering API Gateway's REQUEST authorizer events.


@pytest.fixture(scope="module")
def authorizer_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("payload") / AUTHORIZER
    print_report(build_payload(AUTHORIZER, out))
    return out


def test_the_authorizer_decides_from_its_payload_alone(authorizer_payload: Path, tmp_path: Path) -> None:
    # GIVEN a key in a key store (SQLite here; DynamoDB on AWS, the same interface)
    state = tmp_path / "state"
    issued = create_key(
        SqliteKeyStore(state / "metering.db"), tenant="acme", scopes=["invoke"], plan="free",
        plans=DEFAULT_PLANS, now=datetime.now(UTC),
    )  # fmt: skip
    event = json.loads((EVENTS / "apigw_authorizer_request.json").read_text())
    events = {}
    for name, headers in {"keyed": {"Authorization": f"Bearer {issued.clear_text}"}, "keyless": {}}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**event, "headers": {**event["headers"], **headers}}))
        events[name] = str(path)
    # WHEN a fresh interpreter that sees only the payload imports the handler and answers both
    outcome = cold_start(authorizer_payload, events, {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(state)})
    # THEN the keyed request is allowed under its edge key and the keyless one denied
    keyed, keyless = outcome["responses"]["keyed"], outcome["responses"]["keyless"]
    assert keyed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert keyed["usageIdentifierKey"] == f"aimass-{event['requestContext']['apiId']}-{issued.key.key_id}"
    assert keyless["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    # ...importing nothing outside the payload, and none of the serving stack
    assert outcome["outside"] == []
    assert not {name.split(".")[0] for name in outcome["modules"]} & (SERVING_STACK | FORBIDDEN)
    # ...and the payload is exactly the authorizer's pinned closure
    installed = {_normalise(info.name.split("-")[0]) for info in authorizer_payload.glob("*.dist-info")}
    assert installed == _requirement_names(AUTHORIZER)
    # ...beside which it holds the handler and the core modules the run imported, each one, and nothing else
    ours = {entry.name for entry in authorizer_payload.iterdir()} - _pip_entries(authorizer_payload)
    assert ours == {"aimass", "handler.py", ENV_FILE, REPORT_FILE}
    imported = {name for name in outcome["modules"] if name.split(".")[0] == "aimass"}
    assert imported == _core_modules(authorizer_payload)


def test_every_core_import_in_the_authorizer_resolves_in_its_payload(authorizer_payload: Path) -> None:
    # Imports inside functions too (the DynamoDB key store's, say), which a run against SQLite never reaches:
    # whatever module of the core the authorizer's modules name, its Dockerfile must have copied.
    missing = sorted(
        f"{module} (imported by {importer})"
        for importer, imports in _core_imports(authorizer_payload).items()
        for module in imports
        if module not in _core_modules(authorizer_payload)
    )
    assert not missing, "add a COPY line to functions/authorizer/Dockerfile for each"


def _pip_entries(payload: Path) -> set[str]:
    """The payload's top-level entries that pip installed: those its RECORDs list, its scripts and caches."""
    entries = {"bin", "__pycache__"}  # pip --target's scripts folder; top-level modules compiled by pip
    for record in payload.glob("*.dist-info/RECORD"):
        with record.open(newline="") as handle:
            entries |= {row[0].split("/")[0] for row in csv.reader(handle) if row and not row[0].startswith("..")}
    return entries


def _core_modules(root: Path) -> set[str]:
    """The modules of the core under ``root`` (a payload, or layers/) by dotted name, a package by its name."""
    modules = set()
    for path in (root / "aimass").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def _core_imports(payload: Path) -> dict[str, set[str]]:
    """Per module of the core in ``payload``, the modules of the core it imports, at any depth of its code.

    ``from aimass.x import y`` imports ``aimass.x``, and module ``aimass.x.y`` too where the core has one.
    """
    core = _core_modules(ROOT / "layers")
    found: dict[str, set[str]] = {}
    for path in (payload / "aimass").rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"{path}:{node.lineno}: a relative import"
                names |= {node.module} | ({f"{node.module}.{alias.name}" for alias in node.names} & core)
        found[str(path.relative_to(payload))] = {name for name in names if name.split(".")[0] == "aimass"}
    return found


# ---------------------------------------------------------------------------------------------------------
# The Dockerfile parser: it replays the real Dockerfile and refuses what it cannot replay faithfully.

DOCKERFILE = ROOT / "functions" / "text" / "Dockerfile"


def test_the_text_dockerfile_replays() -> None:
    recipe = read_recipe(DOCKERFILE)
    kinds = [type(step) for step in recipe.steps]
    # requirements COPY, pip install, rm, then the code and the model
    assert kinds[:3] == [Copy, PipInstall, Remove]
    copies = [step for step in recipe.steps if isinstance(step, Copy)]
    assert {str(step.dest) for step in copies} >= {"aimass", "aimass_text", "handler.py"}
    assert recipe.env["AIMASS_MODEL_STORE"] == "/var/task/model_store"
    assert json.loads(recipe.env["AIMASS_DOMAINS"]) == ["text"]
    assert recipe.cmd == ["handler.handler"]


@pytest.mark.parametrize("function", [*DOMAINS, AUTHORIZER])
def test_no_image_copies_the_operator_tools(function: str) -> None:
    recipe = read_recipe(ROOT / "functions" / function / "Dockerfile")
    sources = [source for step in recipe.steps if isinstance(step, Copy) for source in step.sources]
    assert not [source for source in sources if PurePosixPath(source).parts[0] == "tools"]


def test_functions_holds_only_functions() -> None:
    # The payload assembler and the other operator tools live in tools/; functions/ is what gets deployed.
    entries = [entry for entry in (ROOT / "functions").iterdir() if entry.name != "__pycache__"]
    assert all((entry / "Dockerfile").is_file() for entry in entries), sorted(entry.name for entry in entries)


def _dockerfile(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text("\n".join(["FROM public.ecr.aws/lambda/python:3.11", *lines, 'CMD ["handler.handler"]']))
    return path


def test_env_values_lose_their_quotes_as_in_docker(tmp_path: Path) -> None:
    recipe = read_recipe(_dockerfile(tmp_path, """ENV A='["text"]' B=["text"]""", "ENV C=${LAMBDA_TASK_ROOT}/x"))
    assert recipe.env == {"A": '["text"]', "B": "[text]", "C": "/var/task/x"}


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("RUN pip install -r ${LAMBDA_TASK_ROOT}/r.txt --target ${LAMBDA_TASK_ROOT}", "--no-deps"),
        ("RUN pip install --no-deps --upgrade -r ${LAMBDA_TASK_ROOT}/r.txt --target ${LAMBDA_TASK_ROOT}", "--upgrade"),
        ("RUN dnf install -y gcc", "not replayed"),
        ("RUN python3.11 -m compileall ${LAMBDA_TASK_ROOT}/aimass", "not replayed"),
        ("RUN python3.11 -m compileall -q --invalidation-mode unchecked-hash /opt/aimass", "outside"),
        ("WORKDIR /var/task", "WORKDIR"),
        ("COPY --from=builder /x ${LAMBDA_TASK_ROOT}/x", "--from"),
        ("COPY handler.py /opt/handler.py", "outside"),
    ],
)
def test_what_cannot_be_replayed_is_refused(tmp_path: Path, line: str, complaint: str) -> None:
    with pytest.raises(PackagingError, match=re.escape(complaint)):
        read_recipe(_dockerfile(tmp_path, line))


def test_dockerignore_rules_apply_as_in_docker() -> None:
    rules = read_dockerignore(ROOT)
    assert is_ignored(PurePosixPath("layers/aimass/__pycache__/app.cpython-311.pyc"), rules)
    assert is_ignored(PurePosixPath("model_store/all-minilm-l6-v2/.build.lock"), rules)
    assert not is_ignored(PurePosixPath("model_store/all-minilm-l6-v2/1/model.onnx"), rules)
    assert not is_ignored(PurePosixPath("layers/aimass/http/app.py"), rules)
