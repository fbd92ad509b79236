"""``aimass models`` publish / promote / canary / rollback / list / show / verify, on a directory and on S3."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aimass.store.manifest import read_manifest, write_manifest
from aimass.store.sealing.keys import LocalKeyProvider
from aimass.store.sealing.seal import seal_version
from aimass_tools.cli import app
from tests.conftest import ROOT
from tests.moto_server import MotoServer
from tests.tiny_models import TINY_TEXT, add_validation_samples, build_tiny_text

BUCKET = "aimass-models"


@dataclass
class Target:
    """A store the commands act on: its options and environment, and a way to damage a stored file."""

    options: list[str]
    tamper: Callable[[str, str], None]
    env: dict[str, str] = field(default_factory=dict)
    cache: Path | None = None

    def run(self, *args: str) -> Result:
        # Wide enough that table cells never wrap.
        env = {"COLUMNS": "200", **self.env}
        return CliRunner().invoke(app, ["models", *args, *self.options], env=env)


def local_target(tmp_path: Path) -> Target:
    root = tmp_path / "store"

    def tamper(version: str, path: str) -> None:
        (root / TINY_TEXT / version / path).write_text("{}")

    return Target(["--store", str(root)], tamper)


def s3_target(moto: MotoServer, tmp_path: Path) -> Target:
    client = moto.bucket(BUCKET)

    def tamper(version: str, path: str) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{TINY_TEXT}/{version}/{path}", Body=b"{}")

    env = {
        **moto.environment(),
        "AIMASS_MODEL_BUCKET": BUCKET,
        "AIMASS_AWS_ENDPOINT_URL": moto.endpoint,
        "AIMASS_CACHE_DIR": str(tmp_path / "cache"),
    }
    return Target([], tamper, env, tmp_path / "cache")


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "local":
        return local_target(tmp_path)
    return s3_target(request.getfixturevalue("moto"), tmp_path)


@pytest.fixture
def builds(tmp_path: Path) -> list[str]:
    """Three built model folders, each with other weights."""
    return [str(build_tiny_text(tmp_path / f"build-{seed}", seed=seed)) for seed in (7, 3, 5)]


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result: Result) -> str:
    """An expected failure: exit code 1 and a one-line red reason, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ") or f"{TINY_TEXT} version" in result.stderr
    return result.stderr


def test_a_model_goes_through_its_lifecycle(target: Target, builds: list[str]) -> None:
    first, second, third = builds
    assert "published tiny-text version 1 (2 files, " in ok(target.run("publish", first))
    promoted = ok(target.run("publish", second, "--promote"))
    assert "published tiny-text version 2" in promoted and "tiny-text: production 2" in promoted
    assert "already published with these files; nothing to do" in ok(target.run("publish", second))
    assert "published tiny-text version 3" in ok(target.run("publish", third))

    assert "tiny-text: production 2; canary 3 takes 10 %" in ok(target.run("canary", TINY_TEXT, "3", "--percent", "10"))
    listed = ok(target.run("list"))
    rows = {line.split("│")[2].strip(): line for line in listed.splitlines() if TINY_TEXT in line}
    assert set(rows) == {"1", "2", "3"}
    assert "production" in rows["2"] and "canary 10 %" in rows["3"] and "text" in rows["1"]
    assert "KB" in rows["1"] and "2026-11-28" in rows["1"]

    assert ok(target.run("rollback", TINY_TEXT)).strip() == "tiny-text: production 2"  # ends the canary
    assert "production 3" in ok(target.run("promote", TINY_TEXT, "3", "--reason", "better recall"))
    assert "production 2" in ok(target.run("rollback", TINY_TEXT))

    shown = ok(target.run("show", TINY_TEXT))
    actions = [line.split("│")[2].strip() for line in shown.splitlines() if line.startswith("│ 2026-")]
    assert actions == ["promote", "canary", "end-canary", "promote", "rollback"]
    assert "better recall" in shown and "tiny-text: production 2" in shown
    assert "2026-11-28T00:00:00Z" in shown and "built" in shown
    if target.cache is not None:
        # list and show read manifests; promote, canary and rollback fetched the versions they moved an alias
        # to (2, 3), to check that each could serve before pointing at it.
        assert sorted(path.name for path in (target.cache / TINY_TEXT).iterdir()) == ["2", "3"]

    verified = ok(target.run("verify", TINY_TEXT))
    assert [line.split(":")[0] for line in verified.splitlines()] == [f"tiny-text version {v}" for v in "123"]
    assert "tiny-text version 2: verified (2 files, " in ok(target.run("verify", TINY_TEXT, "2"))


def test_a_damaged_file_fails_verify_naming_it(target: Target, builds: list[str]) -> None:
    ok(target.run("publish", builds[0]))
    ok(target.run("publish", builds[1]))
    target.tamper("2", "tokenizer.json")
    result = target.run("verify", TINY_TEXT)
    reason = refused(result)
    assert "tiny-text version 1: verified" in result.stdout
    assert "tiny-text version 2: " in reason and "tokenizer.json: size 2 does not match the manifest's" in reason


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["canary", TINY_TEXT, "1", "--percent", "150"], "canary percent must be between 1 and 99, got 150"),
        (["promote", TINY_TEXT, "9"], "model 'tiny-text' has no version '9'; published versions: 1, 2"),
        (["rollback", TINY_TEXT], "model 'tiny-text' has no earlier usable production version to roll back to"),
        (["promote", "nope", "1"], "no model 'nope' in the store at "),
        (["show", "nope"], "no model 'nope' in the store at "),
        (["verify", TINY_TEXT, "7"], "model 'tiny-text' version '7' is not in the store"),
    ],
)
def test_bad_requests_exit_1_with_the_reason(target: Target, builds: list[str], args: list[str], reason: str) -> None:
    ok(target.run("publish", builds[0]))
    ok(target.run("publish", builds[1]))
    assert reason in refused(target.run(*args))


def test_publishing_other_bytes_under_a_taken_version_is_refused(target: Target, builds: list[str]) -> None:
    ok(target.run("publish", builds[0]))
    reason = refused(target.run("publish", builds[1], "--version", "1"))
    assert "version 1 is already published with different files (model.onnx); versions are immutable" in reason
    assert "version must be a positive integer" in refused(target.run("publish", builds[1], "--version", "v2"))


def test_the_bucket_options_in_a_real_process(moto: MotoServer, tmp_path: Path) -> None:
    moto.bucket(BUCKET)
    build = build_tiny_text(tmp_path / "build")
    env = {**os.environ, **moto.environment(), "AIMASS_AWS_ENDPOINT_URL": moto.endpoint, "COLUMNS": "200"}
    env.pop("AIMASS_MODEL_BUCKET", None)
    where = ["--bucket", BUCKET, "--prefix", "team-a"]

    def aimass(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "aimass_tools.cli", "models", *args, *where]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)

    published = aimass("publish", str(build))
    assert published.returncode == 0, published.stderr
    assert f"published tiny-text version 1 (2 files, 1.9 KB) to s3://{BUCKET}/team-a/" in published.stdout
    keys: list[dict[str, Any]] = moto.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert f"team-a/{TINY_TEXT}/1/manifest.json" in {k["Key"] for k in keys}
    assert TINY_TEXT in aimass("list").stdout
    failed = aimass("canary", TINY_TEXT, "1", "--percent", "0")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip() == "error: canary percent must be between 1 and 99, got 0"


def one_red_line(result: Result) -> str:
    """A refusal: exit code 1 and the reason on one line."""
    reason = refused(result)
    assert len(reason.strip().splitlines()) == 1, reason
    return reason


@pytest.mark.parametrize("command", [["promote"], ["canary", "--percent", "10"]])
def test_a_version_damaged_in_the_store_is_refused_unless_forced(
    target: Target, builds: list[str], command: list[str]
) -> None:
    # GIVEN production 1, and version 2 whose file was damaged in the store after it was published
    ok(target.run("publish", builds[0], "--promote"))
    ok(target.run("publish", builds[1]))
    target.tamper("2", "tokenizer.json")
    before = ok(target.run("show", TINY_TEXT))
    verb, *options = command

    # WHEN the alias is moved to it THEN the command refuses, naming the file and why, and changes nothing
    reason = one_red_line(target.run(verb, TINY_TEXT, "2", *options))
    assert reason.startswith("error: tiny-text version 2 cannot serve: ")
    assert "tokenizer.json: size 2 does not match the manifest's" in reason
    assert "the aliases are unchanged (--force to override)" in reason
    assert ok(target.run("show", TINY_TEXT)) == before

    # WHEN forced THEN it moves, with a warning, and the history records what the version failed
    forced = target.run(verb, TINY_TEXT, "2", *options, "--force")
    moved = ok(forced)
    assert forced.stderr.startswith("warning: tiny-text version 2 cannot serve: ")
    assert "tokenizer.json: size 2" in forced.stderr and "the functions will refuse it" in forced.stderr
    assert ("tiny-text: production 2" if verb == "promote" else "canary 2 takes 10 %") in moved
    history = ok(target.run("show", TINY_TEXT))
    assert "forced past its check: " in history and "tokenizer.json: size 2" in history


@pytest.mark.parametrize("command", [["promote"], ["canary", "--percent", "10"]])
def test_a_good_version_is_checked_and_moved_to(target: Target, builds: list[str], command: list[str]) -> None:
    ok(target.run("publish", builds[0], "--promote"))
    ok(target.run("publish", builds[1]))
    verb, *options = command
    result = target.run(verb, TINY_TEXT, "2", *options)
    moved = ok(result)
    assert "tiny-text version 2: verified (2 files, 1.9 KB); loaded; it has no validation samples" in moved
    assert ("tiny-text: production 2" if verb == "promote" else "tiny-text: production 1; canary 2 takes 10 %") in moved
    assert result.stderr == ""


def test_a_version_failing_its_validation_samples_is_refused(target: Target, tmp_path: Path) -> None:
    # GIVEN a version whose validation samples another build's weights computed
    ok(target.run("publish", str(build_tiny_text(tmp_path / "good", seed=7)), "--promote"))
    wrong = build_tiny_text(tmp_path / "wrong", seed=3)
    add_validation_samples(wrong, ["the cat sat on the mat"], seed=7)
    # WHEN it is published and promoted in one step THEN it is published, but not promoted
    reason = one_red_line(target.run("publish", str(wrong), "--promote"))
    assert "tiny-text version 2 cannot serve: model 'tiny-text' version 2: validation samples (samples.json):" in reason
    assert "output 'embedding' has cosine" in reason
    shown = ok(target.run("show", TINY_TEXT))
    assert "tiny-text: production 1" in shown
    assert "cannot serve" not in ok(target.run("publish", str(wrong)))  # already published as version 2
    # AND verify prints the whole reason, as the functions log it
    assert "output 'embedding' has cosine" in refused(target.run("verify", TINY_TEXT, "2"))


def test_what_this_machine_cannot_load_is_skipped_saying_why(tmp_path: Path) -> None:
    # GIVEN version 2 of a domain not installed here, and version 3 sealed under a key this machine lacks
    target = local_target(tmp_path)
    ok(target.run("publish", str(build_tiny_text(tmp_path / "one")), "--promote"))
    other = build_tiny_text(tmp_path / "two", seed=3)
    write_manifest(other, read_manifest(other).model_copy(update={"domain": "sonar"}))
    ok(target.run("publish", str(other)))
    key = tmp_path / "keys" / "master.key"
    seal_version(build_tiny_text(tmp_path / "three", seed=5), tmp_path / "sealed", LocalKeyProvider.create_or_open(key))
    ok(target.run("publish", str(tmp_path / "sealed")))

    # WHEN they are promoted THEN their files are checked, the loading is skipped with the reason, and they move
    unknown = target.run("promote", TINY_TEXT, "2")
    assert "tiny-text: production 2" in ok(unknown)
    assert unknown.stderr.startswith("tiny-text version 2: verified (2 files, 1.9 KB); not loaded here, so its graph")
    assert "the sonar runtime is not available here: domain 'sonar' is not installed here" in unknown.stderr
    target.env["AIMASS_MASTER_KEY_FILE"] = str(tmp_path / "no-such.key")
    locked = target.run("promote", TINY_TEXT, "3")
    assert "tiny-text: production 3" in ok(locked)
    assert "not loaded here, so its graph and validation samples are unchecked: it cannot be decrypted here:" in (
        locked.stderr
    )
    # AND with the key at hand, the sealed version is loaded as a function would load it
    target.env["AIMASS_MASTER_KEY_FILE"] = str(key)
    assert "tiny-text version 3: verified (2 files, " in ok(target.run("verify", TINY_TEXT, "3"))
    assert "loaded; it has no validation samples" in ok(target.run("verify", TINY_TEXT, "3"))

    # AND files are checked all the same: a damaged file of a version that cannot be loaded here is refused
    target.tamper("2", "tokenizer.json")
    assert "tokenizer.json: size 2 does not match" in one_red_line(target.run("promote", TINY_TEXT, "2"))
