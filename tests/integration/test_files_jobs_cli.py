"""``aimass files`` and ``aimass jobs`` against a real ``aimass serve`` (metering on, its development key found
in the state folder as a user's shell would find it): uploads, downloads, shares, and batches from plain texts
to their results.

Tests of routes the server may not offer (uploads in parts, shares, batches) check its OpenAPI document first
and are skipped, saying which route is missing, only when the server does not serve it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from aimass_tools.cli import app
from tests.conftest import ROOT
from tests.integration.test_metering_server import Server
from tests.tiny_models import DIM, TINY_TEXT


class Cli:
    """The ``aimass`` command aimed at one server: AIMASS_URL, and its state folder for the development key."""

    def __init__(self, server: Server, state: Path) -> None:
        self.server = server
        self.env = {"AIMASS_URL": server.base, "AIMASS_STATE_DIR": str(state), "COLUMNS": "200"}
        self.paths = set(httpx.get(f"{server.base}/openapi.json", timeout=10).json()["paths"])

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env={**self.env, **(env or {})})

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def needs(self, path: str) -> None:
        if path not in self.paths:
            pytest.skip(f"this server does not serve {path} yet")


@pytest.fixture(scope="module")
def cli(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    state = tmp_path_factory.mktemp("files-jobs") / "state"
    server = Server(tiny_store, state)
    try:
        yield Cli(server, state)
    finally:
        server.stop()


def refused(result: Result, reason: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and reason in " ".join(result.stderr.split()), result.stderr


def test_a_file_goes_up_lists_comes_down_and_goes_away(cli: Cli, tmp_path: Path) -> None:
    content = b"".join(b'{"n": %d}\n' % n for n in range(1000))
    source = tmp_path / "input.jsonl"
    source.write_bytes(content)
    file_id = cli.ok("files", "upload", str(source)).strip()
    assert file_id.startswith("file-")

    listed = cli.ok("files", "list")
    assert file_id in listed and "input.jsonl" in listed and "batch" in listed

    target = tmp_path / "copy.jsonl"
    assert f"wrote {target}" in cli.ok("files", "download", file_id, "-o", str(target))
    assert target.read_bytes() == content and not list(tmp_path.glob(".*.part"))
    assert cli.run("files", "download", file_id, "-o", "-").stdout_bytes == content

    assert cli.ok("files", "delete", file_id).strip() == f"deleted {file_id}"
    refused(cli.run("files", "download", file_id, "-o", str(target)), f"error: no file '{file_id}' (HTTP 404, request")
    assert target.read_bytes() == content  # a failed download leaves the earlier file alone


def test_the_command_as_a_user_runs_it(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello\n")
    uploaded = subprocess.run(
        [sys.executable, "-m", "aimass_tools.cli", "files", "upload", str(source)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False, env={**os.environ, **cli.env},
    )  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.strip().startswith("file-")


def test_failures_say_what_and_where(cli: Cli, tmp_path: Path) -> None:
    unreachable = cli.run("files", "list", "--url", "http://127.0.0.1:9")
    refused(unreachable, "error: cannot reach AI Mass at http://127.0.0.1:9")
    refused(cli.run("files", "list", "--key", "am_not_a_key"), "(HTTP 401, request")
    refused(cli.run("files", "delete", "nope"), "file_id must be a file id")
    refused(cli.run("files", "upload", str(tmp_path / "absent.jsonl")), "does not exist", code=2)


def test_a_large_file_goes_up_in_parts(cli: Cli, tmp_path: Path) -> None:
    cli.needs("/v1/uploads")
    content = os.urandom(300 * 1024)
    source = tmp_path / "large.bin"
    source.write_bytes(content)
    file_id = cli.ok("files", "upload", str(source), "--multipart-over", "64KiB", "--part-size", "64KiB").strip()
    target = tmp_path / "back.bin"
    cli.ok("files", "download", file_id, "-o", str(target))
    assert target.read_bytes() == content


def test_a_file_is_shared_with_another_tenant_and_unshared(cli: Cli, tmp_path: Path) -> None:
    cli.needs("/v1/files/{file_id}/shares")
    created = cli.run("keys", "create", "--tenant", "acme", "--scopes", "invoke", env={"AIMASS_METERING": "sqlite"})
    assert created.exit_code == 0, created.output
    acme = {"AIMASS_API_KEY": next(word for word in created.stdout.split() if word.startswith("am_"))}
    source = tmp_path / "shared.jsonl"
    source.write_text('{"a": 1}\n')
    file_id = cli.ok("files", "upload", str(source)).strip()
    target = tmp_path / "theirs.jsonl"
    refused(cli.run("files", "download", file_id, "-o", str(target), env=acme), "HTTP 404")

    assert "shared" in cli.ok("files", "share", file_id, "acme")
    assert "acme" in cli.ok("files", "shares", file_id)
    assert cli.run("files", "download", file_id, "-o", str(target), env=acme).exit_code == 0
    assert target.read_text() == '{"a": 1}\n'

    cli.ok("files", "unshare", file_id, "acme")
    assert "shared with no tenant" in cli.ok("files", "shares", file_id)
    refused(cli.run("files", "download", file_id, "-o", str(target), env=acme), "HTTP 404")


def test_texts_become_a_batch_whose_results_come_back(cli: Cli, tmp_path: Path) -> None:
    cli.needs("/v1/batches")
    texts = tmp_path / "texts.csv"
    texts.write_text("id,text\n" + "".join(f"t{n},sentence number {n}\n" for n in range(7)))
    submitted = cli.run(
        "jobs", "submit", "--texts", str(texts), "--column", "text", "--id-column", "id", "--model", TINY_TEXT,
        "--metadata", "project=demo",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    assert batch_id.startswith("batch_") and "built 7 request line(s) for /v1/embeddings" in submitted.stderr

    waited = cli.run("jobs", "wait", batch_id, "--interval", "0.5", "--timeout", "120")
    assert waited.exit_code == 0, waited.output
    assert f"{batch_id}: completed (7 completed, 0 failed of 7)" in waited.stdout

    status = cli.ok("jobs", "status", batch_id)
    assert "completed" in status and "project" in status and "demo" in status and "output file" in status
    assert batch_id in cli.ok("jobs", "list")

    out = tmp_path / "out.jsonl"
    cli.ok("jobs", "results", batch_id, "-o", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == [f"t{n}" for n in range(7)]
    for line in lines:
        assert line["response"]["status_code"] == 200
        assert len(line["response"]["body"]["data"][0]["embedding"]) == DIM
    refused(cli.run("jobs", "results", batch_id, "--errors"), "it has no error file")


def test_a_ready_input_with_a_bad_line_completes_with_an_error_file(cli: Cli, tmp_path: Path) -> None:
    cli.needs("/v1/batches")
    ready = tmp_path / "ready.jsonl"
    lines = [
        {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": {"model": model, "input": "hi"}}
        for custom_id, model in (("good", TINY_TEXT), ("bad", "no-such-model"))
    ]
    ready.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch_id = cli.ok("jobs", "submit", "--input", str(ready), "--endpoint", "/v1/embeddings").strip()
    waited = cli.run("jobs", "wait", batch_id, "--interval", "0.5", "--timeout", "120")
    assert waited.exit_code == 0, waited.output
    assert "(1 completed, 1 failed of 2)" in waited.stdout
    errors = [json.loads(line) for line in cli.ok("jobs", "results", batch_id, "--errors").splitlines()]
    assert [line["custom_id"] for line in errors] == ["bad"]


def test_a_cancelled_batch_ends_and_wait_says_so(cli: Cli, tmp_path: Path) -> None:
    cli.needs("/v1/batches")
    texts = tmp_path / "many.txt"
    texts.write_text("".join(f"text {n}\n" for n in range(2000)))
    batch_id = cli.ok("jobs", "submit", "--texts", str(texts), "--model", TINY_TEXT, "--per-line", "1").strip()
    cancelled = cli.run("jobs", "cancel", batch_id)
    # A batch this small may finish before the cancel arrives: the server says so, and wait agrees.
    assert cancelled.exit_code in (0, 1), cancelled.output
    waited = cli.run("jobs", "wait", batch_id, "--interval", "0.5", "--timeout", "120")
    final = waited.stdout.split(": ", 1)[1].split()[0]
    assert final in ("cancelled", "completed") and (waited.exit_code == 0) == (final == "completed")


def test_an_unknown_batch_is_reported(cli: Cli) -> None:
    cli.needs("/v1/batches")
    refused(cli.run("jobs", "status", "batch_" + "x" * 24), "HTTP 404")


@pytest.mark.parametrize(
    ("args", "option", "reason"),
    [
        (["--images", "{tmp}/missing", "--model", "m"], "--images", "is not a folder"),
        (["--audio", "{tmp}", "--model", "m"], "--audio", "holds no audio files"),
        (["--texts", "{tmp}/empty.txt", "--model", "m"], "--texts", "holds no texts"),
        (["--texts", "{tmp}/two.csv", "--model", "m", "--column", "body"], "--column", "has no column 'body'"),
        (["--texts", "{tmp}/two.csv"], "--model", "builds lines that name a model"),
        (["--texts", "{tmp}/two.csv", "--images", "{tmp}", "--model", "m"], "--input", "give exactly one of"),
        (["--input", "{tmp}/two.csv"], "--endpoint", "needs the route its lines call"),
        (["--images", "{tmp}", "--model", "m", "--id-column", "id"], "--id-column", "applies to --texts only"),
        (["--input", "{tmp}/two.csv", "--endpoint", "/v1/x", "--metadata", "novalue"], "--metadata", "KEY=VALUE"),
    ],
)  # fmt: skip
def test_bad_submissions_name_the_option_before_anything_is_sent(
    tmp_path: Path, args: list[str], option: str, reason: str
) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "two.csv").write_text("id,text\n1,a\n")
    given = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    # Nothing listens on port 9: a command that tried to send would fail differently.
    result = CliRunner().invoke(app, ["jobs", "submit", *given, "--url", "http://127.0.0.1:9"], env={"COLUMNS": "200"})
    refused(result, reason, code=2)
    assert option in result.stderr
