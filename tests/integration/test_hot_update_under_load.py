"""Hot update under load: continuous concurrent traffic while versions are published, promoted and rolled back.

The real local server (`aimass serve`, its background alias watcher) answers clients over TCP while the
real CLI publishes and promotes three versions — one good, one whose file is damaged in the store after
publishing, one whose validation samples it cannot reproduce — and then rolls back. The CLI refuses to
promote the two bad ones itself; they are forced past it (``--force``), as a promotion that raced the damage
would be, to show that the server refuses them too. Each version has its own weights, so every answer is
checked against the version it claims: a request answered by a version that should never have served, or
labelled with the wrong one, fails the test as surely as a 5xx.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.test_clients import start_server
from tests.ports import free_port
from tests.tiny_models import TINY_TEXT, add_validation_samples, build_tiny_text, reference_embedding

TEXT = "the cat sat on the mat"
SEEDS = {"1": 7, "2": 8, "3": 9, "4": 10}
WORKERS = 6
MIN_REQUESTS = 500


@dataclass(frozen=True)
class Answer:
    status: int
    version: str
    correct: bool
    at: float


def aimass(store: Path, *args: str, code: int = 0) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "aimass_tools.cli", "models", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == code, (
        f"aimass models {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def built(root: Path, version: str, *, expected_seed: int | None = None) -> Path:
    """A built model folder (not yet in the store) with validation samples from ``expected_seed``'s weights."""
    directory = build_tiny_text(root / version, TINY_TEXT, version, seed=SEEDS[version])
    add_validation_samples(directory, [TEXT, "a red car"], seed=expected_seed or SEEDS[version])
    return directory


class Traffic:
    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(WORKERS)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [TEXT]}]}
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"/v2/models/{TINY_TEXT}/infer", json=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"transport: {exc!r}")
                    continue
                if response.status_code != 200:
                    with self._lock:
                        self.failures.append(f"{response.status_code}: {response.text}")
                    continue
                answer = response.json()
                version = answer["model_version"]
                vector = np.array(answer["outputs"][0]["data"], dtype=np.float32)
                expected = reference_embedding(TEXT, SEEDS[version]) if version in SEEDS else None
                correct = expected is not None and bool(np.allclose(vector, expected, atol=1e-5))
                with self._lock:
                    self.answers.append(Answer(200, version, correct, time.monotonic()))

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_for(self, version: str, timeout: float = 20) -> float:
        """Seconds until the first answer from ``version`` arrives."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with self._lock:
                if any(a.version == version and a.at >= started for a in self.answers):
                    return time.monotonic() - started
            time.sleep(0.02)
        raise AssertionError(f"no answer from version {version} within {timeout} s")

    def steady(self, seconds: float) -> set[str]:
        """The versions answering during the next ``seconds``."""
        started = time.monotonic()
        time.sleep(seconds)
        with self._lock:
            return {a.version for a in self.answers if a.at >= started}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    store = tmp_path / "store"
    aimass(store, "publish", str(built(tmp_path / "builds", "1")))
    port = free_port()
    os.environ["AIMASS_ALIAS_CHECK_S"] = "0.2"
    try:
        process = start_server(store, port)
    finally:
        del os.environ["AIMASS_ALIAS_CHECK_S"]
    yield store, f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_updates_and_rollback_under_continuous_traffic(served: tuple[Path, str], tmp_path: Path) -> None:
    store, base = served
    builds = tmp_path / "builds"
    with Traffic(base) as traffic:
        traffic.wait_for("1")

        # A good version: promoted, validated, swapped in while requests keep coming.
        aimass(store, "publish", str(built(builds, "2")), "--promote")
        traffic.wait_for("2")

        # A version damaged in the store after it was published: refused, version 2 keeps serving.
        aimass(store, "publish", str(built(builds, "3")))
        onnx = store / TINY_TEXT / "3" / "model.onnx"
        damaged = bytearray(onnx.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        onnx.write_bytes(bytes(damaged))
        assert "cannot serve" in aimass(store, "promote", TINY_TEXT, "3", code=1)
        aimass(store, "promote", TINY_TEXT, "3", "--force")
        assert traffic.steady(1.0) == {"2"}

        # A version that cannot reproduce its own validation samples: refused too.
        aimass(store, "publish", str(built(builds, "4", expected_seed=SEEDS["1"])), "--promote", "--force")
        assert traffic.steady(1.0) == {"2"}

        # Rolling back skips the versions that cannot serve and lands on the last good one.
        aimass(store, "rollback", TINY_TEXT)
        while traffic.count() < MIN_REQUESTS:
            time.sleep(0.05)
        final = traffic.steady(0.5)

    index = httpx.post(f"{base}/v2/repository/index", json={}).json()
    assert traffic.failures == []
    assert len(traffic.answers) >= MIN_REQUESTS
    assert all(answer.correct for answer in traffic.answers), "an answer does not match its version's weights"
    assert {answer.version for answer in traffic.answers} == {"1", "2"}
    assert final == {"2"}
    states = {entry["version"]: entry for entry in index if entry["name"] == TINY_TEXT}
    assert states["2"]["state"] == "READY"
    assert (
        states["3"]["state"] == "UNAVAILABLE" and states["3"]["reason"] == "file model.onnx failed its integrity check"
    )
    assert states["4"]["state"] == "UNAVAILABLE" and "validation samples did not match" in states["4"]["reason"]
    aliases = json.loads((store / TINY_TEXT / "aliases.json").read_text())
    assert aliases["production"] == "2"
    shutil.rmtree(builds)
