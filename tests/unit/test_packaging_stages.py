"""The payload assembler's stages: a function's Dockerfile is the Lambda stage and, built on it, the server stage;
either is replayed by name (``--target``), the Lambda stage by default, and what Docker would do differently is
refused."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from aimass_tools.packaging import SERVER_ENTRYPOINT, Copy, PackagingError, PipInstall, read_recipe
from aimass_tools.packaging.__main__ import main

LAMBDA = """FROM public.ecr.aws/lambda/provided:al2023 AS function
COPY functions/x/requirements.txt ${LAMBDA_TASK_ROOT}/requirements.txt
RUN python3.11 -m pip install --no-deps -r ${LAMBDA_TASK_ROOT}/requirements.txt --target ${LAMBDA_TASK_ROOT}
COPY functions/x/handler.py ${LAMBDA_TASK_ROOT}/handler.py
ENV AIMASS_DOMAINS='["x"]'
ENTRYPOINT ["/usr/bin/python3.11", "-m", "awslambdaric"]
CMD ["handler.handler"]
"""
SERVER = """FROM function AS server
COPY layers/server-requirements.txt ${LAMBDA_TASK_ROOT}/server-requirements.txt
RUN python3.11 -m pip install --no-deps -r ${LAMBDA_TASK_ROOT}/server-requirements.txt --target ${LAMBDA_TASK_ROOT}
COPY layers/aimass_server ${LAMBDA_TASK_ROOT}/aimass_server
ENV PYTHONPATH=${LAMBDA_TASK_ROOT}
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s CMD ["/usr/bin/python3.11", "-m", "aimass_server.health"]
ENTRYPOINT ["/usr/bin/python3.11", "-m", "aimass_server"]
"""


def dockerfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_the_lambda_stage_is_the_default_and_replays_alone(tmp_path: Path) -> None:
    alone = read_recipe(dockerfile(tmp_path, LAMBDA))
    both = read_recipe(dockerfile(tmp_path, LAMBDA + SERVER))
    assert both == alone
    assert (both.stage, both.cmd, both.serves_http) == ("function", ["handler.handler"], False)


def test_the_server_stage_builds_on_the_lambda_stage(tmp_path: Path) -> None:
    lambda_recipe = read_recipe(dockerfile(tmp_path, LAMBDA + SERVER))
    server = read_recipe(tmp_path / "Dockerfile", "server")
    # its steps are the Lambda stage's, then its own; ENV accumulates
    assert server.steps[: len(lambda_recipe.steps)] == lambda_recipe.steps
    added = server.steps[len(lambda_recipe.steps) :]
    assert [type(step) for step in added] == [Copy, PipInstall, Copy]
    assert server.env == {"AIMASS_DOMAINS": '["x"]', "PYTHONPATH": "/var/task"}
    # Docker's rule: a stage's ENTRYPOINT resets the CMD it inherited
    assert (server.entrypoint, server.cmd, server.serves_http) == (SERVER_ENTRYPOINT, [], True)
    assert server.expose == [8080]
    assert server.healthcheck == ["/usr/bin/python3.11", "-m", "aimass_server.health"]


@pytest.mark.parametrize(
    ("text", "target", "complaint"),
    [
        (LAMBDA + SERVER, "servers", "no stage named 'servers'"),
        (LAMBDA.replace(" AS function", "") + "FROM public.ecr.aws/lambda/provided:al2023\n", None, "no stage named"),
        (LAMBDA + SERVER + 'CMD ["handler.handler"]\n', "server", "passes no CMD"),
        (LAMBDA + SERVER.replace("EXPOSE 8080", "EXPOSE http"), "server", "EXPOSE expects"),
        (LAMBDA + SERVER.replace("CMD [", "CMD python3.11 ["), "server", "HEALTHCHECK must be"),
        (LAMBDA + SERVER.replace('aimass_server"]', 'uvicorn"]'), "server", "ENTRYPOINT must be"),
        (LAMBDA + "FROM --platform=linux/amd64 function AS server\n", "server", "FROM"),
        (LAMBDA + "FROM function AS function\n", None, "a second stage named 'function'"),
        # every stage must replay, the one assembled or not
        (LAMBDA + SERVER + "WORKDIR /srv\n", None, "WORKDIR is not replayed"),
    ],
)
def test_what_docker_would_build_otherwise_is_refused(
    tmp_path: Path, text: str, target: str | None, complaint: str
) -> None:
    with pytest.raises(PackagingError, match=re.escape(complaint)):
        read_recipe(dockerfile(tmp_path, text), target)


def test_the_command_line_names_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An unknown stage is one line on stderr and exit status 1, before anything is written.
    assert main(["rl", "--target", "nope", "--out", str(tmp_path / "out")]) == 1
    assert "no stage named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_new_domain_template_has_both_stages(tmp_path: Path) -> None:
    # GIVEN the Dockerfile `aimass new-domain` writes, for a made-up domain
    template = Path(__file__).resolve().parents[2] / "templates/common/functions/DOMAIN/Dockerfile.tmpl"
    values = {"domain": "shapes", "summary": "shapes", "template": "tabular", "model": "shapes-model"}
    path = dockerfile(tmp_path, string.Template(template.read_text()).substitute(values))
    # THEN its default stage is the Lambda function and its server stage serves HTTP with server mode
    assert (read_recipe(path).stage, read_recipe(path).cmd) == ("function", ["handler.handler"])
    server = read_recipe(path, "server")
    assert server.serves_http and server.expose == [8080] and server.healthcheck
    copied = {str(step.dest) for step in server.steps if isinstance(step, Copy)}
    assert {"aimass", "aimass_shapes", "aimass_server", "server-requirements.txt"} <= copied
