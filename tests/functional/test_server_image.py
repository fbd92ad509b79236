"""A domain's image as a long-lived server: the Dockerfile's server stage, assembled without Docker, serves HTTP.

``aimass_tools.packaging`` replays functions/rl/Dockerfile's ``server`` stage (the Lambda stage, then server
mode and its pinned requirements) into a folder standing for ``/var/task``. Its ENTRYPOINT then runs from that
folder with the image's ENV, in an interpreter that sees only the payload and the standard library (``-S``: no
site-packages), on two worker processes; the test calls it over HTTP as a load balancer would, runs the image's
HEALTHCHECK, and stops the server's whole process group. The Lambda stage beside it is the image it always was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from aimass_tools.packaging import (
    ENV_FILE,
    LAMBDA_STAGE,
    REPORT_FILE,
    Copy,
    PipInstall,
    build_payload,
    local_env,
    read_recipe,
)
from tests.conftest import build_domain_models
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "rl"
SERVER_STAGE = "server"
EVENT = ROOT / "tests" / "events" / "apigw_http_v2_rl_infer.json"
# The domains whose image has a server stage: every one but the authorizer, which serves no HTTP of its own.
SERVED = sorted(
    path.parent.name for path in (ROOT / "functions").glob("*/Dockerfile") if path.parent.name != "authorizer"
)
# What server mode adds to the Lambda stage's payload, and nothing else: its package, its pinned closure.
SERVER_ENTRIES = {"aimass_server", "uvicorn", "click", "h11", "httptools", "uvloop"}
OPERATOR_TOOLS = {"aimass_tools", "typer", "rich"}
SERVER_LIST = "layers/server-requirements.txt"


@dataclass
class Served:
    payload: Path
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def store() -> Path:
    return build_domain_models(DOMAIN)


@pytest.fixture(scope="module")
def payload(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("server-image") / DOMAIN
    build_payload(DOMAIN, out, model_store=store, target=SERVER_STAGE)
    return out


@pytest.fixture(scope="module")
def served(payload: Path) -> Iterator[Served]:
    described = json.loads((payload / ENV_FILE).read_text())
    port = free_port()
    env = {
        **local_env(payload),
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "AIMASS_HOST": "127.0.0.1",
        "AIMASS_WORKERS": "2",
        "AIMASS_METERING": "off",
        "AIMASS_ALIAS_CHECK_S": "0",
    }
    # The image's interpreter is python3.11; this one (the same version) stands in for it, without site-packages.
    interpreter, *arguments = described["entrypoint"]
    assert interpreter == "/usr/bin/python3.11" and described["cmd"] == []
    log = payload.parent / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-S", "-B", *arguments],
            cwd=payload,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers stop with it
        )
    running = Served(payload, f"http://127.0.0.1:{port}", process, log, env)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(process)


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{served.base}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert served.process.poll() is None, served.log.read_text()[-5000:]
        assert time.monotonic() < deadline, "server not ready in 60 s:\n" + served.log.read_text()[-5000:]
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


@pytest.mark.real_model
def test_the_server_image_answers_v2_inference_over_http(served: Served, store: Path) -> None:
    # GIVEN the server stage's payload serving on two workers
    event = json.loads(EVENT.read_text())
    # WHEN a V2 inference arrives over HTTP, as through a load balancer
    answer = httpx.post(
        served.base + event["rawPath"], content=event["body"], headers={"content-type": "application/json"}
    )
    # THEN it is the model's answer, the one the function's own app gives
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert (body["model_name"], body["id"]) == ("cartpole-ppo", "req-rl-1")
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["probabilities"]["shape"] == [2, 2]
    settings = Settings(model_store=store, domains=(DOMAIN,), metering="off", alias_check_s=0)
    with TestClient(build_app(settings)) as client:
        expected = client.post(event["rawPath"], content=event["body"], headers={"content-type": "application/json"})
    for output in expected.json()["outputs"]:
        assert outputs[output["name"]]["data"] == pytest.approx(output["data"], abs=1e-6)
    # ...from two worker processes, each with its share of the cores for ONNX Runtime
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text().split()
    workers = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    port = served.base.rsplit(":", 1)[1]
    assert f"2 worker process(es) on 127.0.0.1:{port}, {threads} ONNX" in served.log.read_text()


@pytest.mark.real_model
def test_the_images_healthcheck_passes_while_it_serves_and_fails_without_it(served: Served) -> None:
    healthcheck = json.loads((served.payload / ENV_FILE).read_text())["healthcheck"]
    command = [sys.executable, "-S", "-B", *healthcheck[1:]]
    ready = subprocess.run(command, cwd=served.payload, env=served.env, capture_output=True, timeout=30, check=False)
    assert ready.returncode == 0, ready.stderr
    nobody = {**served.env, "PORT": str(free_port())}
    down = subprocess.run(command, cwd=served.payload, env=nobody, capture_output=True, timeout=30, check=False)
    assert down.returncode == 1 and b"/v2/health/ready" in down.stderr


@pytest.mark.real_model
def test_the_server_imports_only_the_payload_and_the_standard_library(served: Served) -> None:
    # The interpreter the server runs in, as it starts: its import path is the payload's and the stdlib's alone.
    probe = "import json, sys; import aimass_server.launch, aimass_server.worker; print(json.dumps(sys.path))"
    found = subprocess.run(
        [sys.executable, "-S", "-B", "-c", probe], cwd=served.payload, env=served.env, capture_output=True, check=True
    )
    # '' is the working directory, the payload; python311.zip is listed, and absent
    on_path = [p or str(served.payload) for p in json.loads(found.stdout) if Path(p or ".").exists()]
    outside = [p for p in on_path if not p.startswith((str(served.payload), sysconfig.get_path("stdlib")))]
    assert not outside


@pytest.mark.real_model
def test_the_lambda_stage_is_the_server_stage_without_server_mode(payload: Path, store: Path, tmp_path: Path) -> None:
    # GIVEN the Lambda stage assembled beside the server stage
    function = tmp_path / DOMAIN
    build_payload(DOMAIN, function, model_store=store)
    assert json.loads((function / ENV_FILE).read_text())["stage"] == LAMBDA_STAGE
    # THEN the server stage holds every file of it, unchanged (bytecode compiled anew: marshal's output varies
    # from one process to the next), and adds server mode only
    lambda_files = _files(function)
    server_files = _files(payload)
    assert lambda_files.keys() <= server_files.keys()
    changed = [path for path, data in lambda_files.items() if not path.endswith(".pyc") and server_files[path] != data]
    assert not changed
    added = {PurePosixPath(path).parts[0].split("-")[0] for path in server_files.keys() - lambda_files.keys()}
    assert added == SERVER_ENTRIES
    # ...and the Lambda stage has none of server mode
    assert not {entry.name for entry in function.iterdir()} & SERVER_ENTRIES


@pytest.mark.real_model
def test_the_server_payload_carries_no_operator_tool(payload: Path) -> None:
    assert not {entry.name for entry in payload.iterdir()} & OPERATOR_TOOLS


@pytest.mark.parametrize("domain", SERVED)
@pytest.mark.parametrize("stage", [LAMBDA_STAGE, SERVER_STAGE])
def test_no_stage_of_any_image_copies_or_installs_operator_tools(domain: str, stage: str) -> None:
    recipe = read_recipe(ROOT / "functions" / domain / "Dockerfile", stage)
    copied = [source for step in recipe.steps if isinstance(step, Copy) for source in step.sources]
    assert not [source for source in copied if PurePosixPath(source).parts[0] == "tools"]
    installed = [step.requirements.name for step in recipe.steps if isinstance(step, PipInstall)]
    lists = {"requirements.txt": f"functions/{domain}/requirements.txt", "server-requirements.txt": SERVER_LIST}
    for listed in installed:
        lines = (ROOT / lists[listed]).read_text().splitlines()
        names = {line.split("==")[0].lower() for line in lines if "==" in line}
        assert not names & {"typer", "rich", "aimass-tools"}, (stage, listed)
    assert ("server-requirements.txt" in installed) == (stage == SERVER_STAGE)


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes; the assembler's own two files left out."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name not in (ENV_FILE, REPORT_FILE)
    }
