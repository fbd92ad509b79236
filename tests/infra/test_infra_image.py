"""The text function image: Dockerfile shape, build context and what CDK stages for it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from infra.constructs.domain_function import (
    CONTEXT_EXCLUDE,
    IMAGE_MODEL_STORE,
    build_context_exclude,
    dockerfile_copy_sources,
)
from infra.stacks.serving_stack import TEXT_FUNCTION_LOGICAL_ID
from tests.infra.infra_synth import REPO_ROOT, Synthesized

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
        ("FROM", "public.ecr.aws/lambda/provided:al2023"),
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
        ("COPY", "model_store/all-minilm-l6-v2 ${LAMBDA_TASK_ROOT}/model_store/all-minilm-l6-v2"),
        ("ENV", "AIMASS_MODEL_STORE=/var/task/model_store"),
        ("ENV", "AIMASS_DOMAINS='[\"text\"]'"),
        ("ENTRYPOINT", '["/usr/bin/python3.11", "-m", "awslambdaric"]'),
        ("CMD", '["handler.handler"]'),
    ]


def test_dockerfile_env_matches_the_function(synthesized: Synthesized) -> None:
    env = _env(DOCKERFILE)
    assert json.loads(env["AIMASS_DOMAINS"]) == ["text"]
    assert env["AIMASS_MODEL_STORE"] == IMAGE_MODEL_STORE
    function_env = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Environment"]["Variables"]
    for key, value in env.items():
        assert function_env[key] == value


def test_copy_sources_are_parsed() -> None:
    assert dockerfile_copy_sources(DOCKERFILE) == (
        "functions/text/requirements.txt",
        "layers/aimass",
        "functions/text/aimass_text",
        "functions/text/handler.py",
        "model_store/all-minilm-l6-v2",
    )


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
    assert exclude[3:] == list(CONTEXT_EXCLUDE)


def test_staged_build_context_holds_only_the_image_inputs(synthesized: Synthesized) -> None:
    asset = synthesized.outdir / synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Metadata"]["aws:asset:path"]
    staged = {path.relative_to(asset).as_posix() for path in asset.rglob("*")}
    allowed_roots = ("functions/text/", "layers/aimass/", "model_store/all-minilm-l6-v2/")
    for path in staged:
        assert (
            path in {".dockerignore", "functions", "functions/text", "layers", "model_store"}
            or path.startswith(allowed_roots)
            or path in {root.rstrip("/") for root in allowed_roots}
        ), path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path
        if path.startswith("model_store/"):
            assert not any(part.startswith(".") for part in path.split("/")), path
    assert "functions/text/Dockerfile" in staged
    # Whatever of the COPY sources exists in this checkout is staged.
    for source in dockerfile_copy_sources(DOCKERFILE):
        assert ((REPO_ROOT / source).exists()) == (source in staged), source


def test_synth_works_without_a_built_model(tmp_path: Path) -> None:
    # A fresh checkout has no model_store/ (it is built, never committed); synth only stages.
    from aws_cdk import App

    from infra.app import CLI_DEFAULT_CONTEXT, cdk_json_context
    from infra.config import ServingConfig
    from infra.stacks.serving_stack import ServingStack

    repo = tmp_path / "repo"
    (repo / "functions/text/aimass_text").mkdir(parents=True)
    (repo / "layers/aimass").mkdir(parents=True)
    (repo / "functions/text/Dockerfile").write_bytes(DOCKERFILE.read_bytes())
    (repo / "functions/text/handler.py").write_text("handler = None\n", encoding="utf-8")
    app = App(outdir=str(tmp_path / "cdk.out"), context={**CLI_DEFAULT_CONTEXT, **cdk_json_context()})
    stack = ServingStack(app, "NoModel", config=ServingConfig(), repo_root=repo)
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    asset = tmp_path / "cdk.out" / template["Resources"][TEXT_FUNCTION_LOGICAL_ID]["Metadata"]["aws:asset:path"]
    assert (asset / "functions/text/handler.py").is_file()
    assert not (asset / "model_store").exists()
