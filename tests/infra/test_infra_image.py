"""The function images: Dockerfile shape, build context and what CDK stages for each domain."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.domain_function import IMAGE_MODEL_STORE
from infra.constructs.image_function import (
    CONTEXT_EXCLUDE,
    LAMBDA_STAGE,
    build_context_exclude,
    dockerfile_copy_sources,
)
from infra.stacks.serving_stack import function_logical_id
from tests.infra.infra_synth import AUTHORIZER, DOCKERFILE_DOMAINS, REPO_ROOT, Synthesized

DOCKERFILE = REPO_ROOT / "functions/text/Dockerfile"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    lines = [line.strip() for line in dockerfile.read_text(encoding="utf-8").splitlines()]
    return [
        (line.split(maxsplit=1)[0], line.split(maxsplit=1)[1]) for line in lines if line and not line.startswith("#")
    ]


def _env(dockerfile: Path) -> dict[str, str]:
    """ENV KEY=value lines, unquoted the way Docker does it."""
    env: dict[str, str] = {}
    for instruction, argument in _instructions(dockerfile):
        if instruction == "ENV":
            (word,) = shlex.split(argument)
            key, value = word.split("=", 1)
            env[key] = value
    return env


def test_dockerfile_steps_in_order() -> None:
    assert _instructions(DOCKERFILE) == [
        ("FROM", "public.ecr.aws/lambda/provided:al2023 AS function"),
        ("RUN", "dnf install -y python3.11 python3.11-pip && dnf clean all"),
        ("COPY", "functions/text/requirements.txt ${LAMBDA_TASK_ROOT}/requirements.txt"),
        (
            "RUN",
            "python3.11 -m pip install --no-cache-dir --no-deps -r ${LAMBDA_TASK_ROOT}/requirements.txt"
            " --target ${LAMBDA_TASK_ROOT} && rm ${LAMBDA_TASK_ROOT}/requirements.txt",
        ),
        ("COPY", "layers/aimass ${LAMBDA_TASK_ROOT}/aimass"),
        ("COPY", "functions/text/aimass_text ${LAMBDA_TASK_ROOT}/aimass_text"),
        ("COPY", "functions/text/handler.py ${LAMBDA_TASK_ROOT}/handler.py"),
        (
            "RUN",
            "python3.11 -m compileall -q --invalidation-mode unchecked-hash ${LAMBDA_TASK_ROOT}/aimass"
            " ${LAMBDA_TASK_ROOT}/aimass_text ${LAMBDA_TASK_ROOT}/handler.py",
        ),
        ("COPY", "model_store/all-minilm-l6-v2 ${LAMBDA_TASK_ROOT}/model_store/all-minilm-l6-v2"),
        ("COPY", "build/console ${LAMBDA_TASK_ROOT}/console"),
        ("ENV", "AIMASS_CONSOLE_DIR=/var/task/console"),
        ("ENV", "AIMASS_MODEL_STORE=/var/task/model_store"),
        ("ENV", "AIMASS_DOMAINS='[\"text\"]'"),
        ("ENTRYPOINT", '["/usr/bin/python3.11", "-m", "awslambdaric"]'),
        ("CMD", '["handler.handler"]'),
        # The same image as a long-lived server, built on the Lambda stage (which the CDK app names as its target).
        ("FROM", "function AS server"),
        ("COPY", "layers/server-requirements.txt ${LAMBDA_TASK_ROOT}/server-requirements.txt"),
        (
            "RUN",
            "python3.11 -m pip install --no-cache-dir --no-deps -r ${LAMBDA_TASK_ROOT}/server-requirements.txt"
            " --target ${LAMBDA_TASK_ROOT} && rm ${LAMBDA_TASK_ROOT}/server-requirements.txt",
        ),
        ("COPY", "layers/aimass_server ${LAMBDA_TASK_ROOT}/aimass_server"),
        ("RUN", "python3.11 -m compileall -q --invalidation-mode unchecked-hash ${LAMBDA_TASK_ROOT}/aimass_server"),
        ("ENV", "PYTHONPATH=${LAMBDA_TASK_ROOT}"),
        ("EXPOSE", "8080"),
        (
            "HEALTHCHECK",
            '--interval=15s --timeout=5s --start-period=60s CMD ["/usr/bin/python3.11", "-m", "aimass_server.health"]',
        ),
        ("ENTRYPOINT", '["/usr/bin/python3.11", "-m", "aimass_server"]'),
        ("CMD", "[]"),
    ]


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_dockerfile_env_matches_the_function(synthesized: Synthesized, domain: str) -> None:
    # The function's environment replaces the image's: where both set a key, they must agree, or a
    # local `docker run` and the deployed function would behave differently.
    env = _env(REPO_ROOT / "functions" / domain / "Dockerfile")
    assert json.loads(env.get("AIMASS_DOMAINS", json.dumps([domain]))) == [domain]
    assert env.get("AIMASS_MODEL_STORE", IMAGE_MODEL_STORE) == IMAGE_MODEL_STORE
    function_env = synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
    for key in env.keys() & function_env.keys():
        assert function_env[key] == env[key], key


def test_copy_sources_are_parsed() -> None:
    function = (
        "functions/text/requirements.txt",
        "layers/aimass",
        "functions/text/aimass_text",
        "functions/text/handler.py",
        "model_store/all-minilm-l6-v2",
        "build/console",
    )
    assert dockerfile_copy_sources(DOCKERFILE, LAMBDA_STAGE) == function
    # The server stage builds on the Lambda stage; no target: every stage's
    server = (*function, "layers/server-requirements.txt", "layers/aimass_server")
    assert dockerfile_copy_sources(DOCKERFILE, "server") == dockerfile_copy_sources(DOCKERFILE) == server


def test_an_image_without_the_lambda_stage_is_refused(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM public.ecr.aws/lambda/provided:al2023\nCOPY a ${LAMBDA_TASK_ROOT}/a\n")
    with pytest.raises(ValueError, match="AS function"):
        dockerfile_copy_sources(dockerfile, LAMBDA_STAGE)


@pytest.mark.parametrize("line", ["COPY --from=build /a /b", "COPY a b c", 'COPY ["a", "b"]'])
def test_copy_lines_must_stay_simple(tmp_path: Path, line: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM scratch\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 'COPY <src> <dest>'"):
        dockerfile_copy_sources(dockerfile)


def test_dockerignore_matches_the_asset_excludes() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert tuple(patterns) == CONTEXT_EXCLUDE


def test_build_context_is_an_allow_list() -> None:
    exclude = build_context_exclude("functions/text/Dockerfile", ["layers/aimass"])
    assert exclude[:3] == ["*", "!functions/text/Dockerfile", "!layers/aimass"]
    # The console's exception is for the image that copies it only: staged in others, it would change their hash.
    assert exclude[3:] == [pattern for pattern in CONTEXT_EXCLUDE if pattern != "!build/console"]
    front = build_context_exclude("functions/text/Dockerfile", ["layers/aimass", "build/console"])
    # Docker's last matching pattern decides: the exception comes after the build folder's exclusion.
    assert front[4:] == list(CONTEXT_EXCLUDE) and front.index("build/*") < len(front) - 1 - front[::-1].index(
        "!build/console"
    )


@pytest.mark.parametrize("domain", [*DOCKERFILE_DOMAINS, AUTHORIZER])
def test_staged_build_context_holds_only_the_image_inputs(synthesized: Synthesized, domain: str) -> None:
    dockerfile = f"functions/{domain}/Dockerfile"
    sources = dockerfile_copy_sources(REPO_ROOT / dockerfile, LAMBDA_STAGE)
    function = synthesized.resources[function_logical_id(domain)]
    asset = synthesized.outdir / function["Metadata"]["aws:asset:path"]
    staged = {path.relative_to(asset).as_posix() for path in asset.rglob("*")}
    allowed = {dockerfile, *sources}
    parents = {"/".join(path.split("/")[:i]) for path in allowed for i in range(1, path.count("/") + 1)}
    for path in staged:
        assert (
            path == ".dockerignore"
            or path in allowed | parents
            or any(path.startswith(f"{source}/") for source in sources)
        ), path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path
        if path.startswith("model_store/"):
            assert not any(part.startswith(".") for part in path.split("/")), path
    assert dockerfile in staged
    # Whatever of the COPY sources exists in this checkout is staged.
    for source in sources:
        assert ((REPO_ROOT / source).exists()) == (source in staged), source


def test_synth_works_without_a_built_model(fake_synthesized: Synthesized) -> None:
    # A fresh checkout has no model_store/ (it is built, never committed); synth only stages.
    for domain in ("text", "toy", AUTHORIZER):
        asset = (
            fake_synthesized.outdir
            / fake_synthesized.resources[function_logical_id(domain)]["Metadata"]["aws:asset:path"]
        )
        assert (asset / f"functions/{domain}/handler.py").is_file()
        assert not (asset / "model_store").exists()
        # Another domain's files never enter this image (nor change its hash).
        assert {path.name for path in (asset / "functions").iterdir()} == {domain}


@pytest.mark.parametrize("domain", [*DOCKERFILE_DOMAINS, AUTHORIZER])
def test_every_function_image_builds_the_lambda_stage(synthesized: Synthesized, domain: str) -> None:
    # GIVEN the Dockerfile, whose last stage (Docker's default) is the long-lived server for a domain
    # WHEN the CDK app stages the function's image asset
    function = synthesized.resources[function_logical_id(domain)]
    source = _image_asset_sources(synthesized)[function["Metadata"]["aws:asset:path"]]
    # THEN the asset names the Lambda stage as its build target
    assert source["dockerBuildTarget"] == LAMBDA_STAGE
    assert source["dockerFile"] == f"functions/{domain}/Dockerfile"
    # ...and the server stage's own inputs stay out of its build context (editing them redeploys no function)
    asset = synthesized.outdir / function["Metadata"]["aws:asset:path"]
    assert not (asset / "layers" / "aimass_server").exists()
    assert not (asset / "layers" / "server-requirements.txt").exists()


def _image_asset_sources(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Each Docker image asset's source in the cloud assembly's asset manifests, by its staged directory."""
    sources: dict[str, dict[str, Any]] = {}
    for manifest in synthesized.outdir.glob("*.assets.json"):
        for image in json.loads(manifest.read_text(encoding="utf-8")).get("dockerImages", {}).values():
            sources[image["source"]["directory"]] = image["source"]
    return sources
