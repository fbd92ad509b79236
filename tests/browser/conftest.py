"""The console's browser tests: ``aimass serve`` over a real model of each playground, driven by headless Chromium.

Playwright drives Debian's ``chromium`` (scripts/system-packages.sh): its own browser download is not used. The
console must be built (``make console``; ``make test`` does it first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, build_domain_models
from tests.ports import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BUILT = ROOT / "build" / "console" / "index.html"
SCREENSHOTS = ROOT / "build" / "screenshots"
# The models the console's pages try, one per playground: text, vision, speech, rl and chat.
MODELS = (
    "all-minilm-l6-v2",
    "efficientnet-lite0",
    "sphinx-en-us",
    "speech-commands",
    "cartpole-ppo",
    "smollm2-135m-instruct",
)
DOMAINS = ("text", "vision", "speech", "rl", "llm")


@dataclass(frozen=True)
class Server:
    base: str
    key: str


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``aimass serve`` (one worker) on a free port, over the playgrounds' models, with its own state folder."""
    # `make test` installs the browser and builds the console first: missing, they fail the run, never skip it.
    if not Path(CHROMIUM).is_file():
        pytest.fail("no chromium: run scripts/system-packages.sh --tests (make test does)")
    if not BUILT.is_file():
        pytest.fail("the console is not built: run `make console` (make test does)")
    # This run's screenshots only: a failure's picture from an earlier run would read as this run's.
    for stale in SCREENSHOTS.glob("console-*.png"):
        stale.unlink()
    for domain in DOMAINS:
        store = build_domain_models(domain)  # one store, the repository's: each build is a no-op once done
    # A store of these models alone (links to the built ones): the server starts in seconds, not loading the rest.
    served = tmp_path_factory.mktemp("store")
    for name in MODELS:
        (served / name).symlink_to(store / name, target_is_directory=True)
    state = tmp_path_factory.mktemp("state")
    port = free_port()
    # Metered, as `make serve` is (the test suite turns metering off for its in-process apps).
    env = {**os.environ, "AIMASS_STATE_DIR": str(state), "AIMASS_METERING": "sqlite", "AIMASS_BATCH_WORKERS": "0"}
    command = [str(Path(sys.executable).parent / "aimass"), "serve", "--store", str(served)]
    log = (state / "serve.log").open("wb")
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"aimass serve exited: {(state / 'serve.log').read_text()[-2000:]}"
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "aimass serve was not ready within 60 s"
            time.sleep(0.2)
        yield Server(base, (state / "dev-key").read_text().strip())
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
