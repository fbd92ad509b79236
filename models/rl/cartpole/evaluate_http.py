"""Measure the served CartPole policy through the HTTP API: episodes played closed loop against a server.

    python models/rl/cartpole/evaluate_http.py [--store model_store] [--episodes 100] [--via act|v2] [--url URL]

Without ``--url`` it starts the local server over the store (``python -m aimass_tools.cli serve``, the rl domain
only) on a free port, and stops it afterwards. Each time step sends the observations of every episode
still running as ONE request, over one keep-alive connection, and steps each episode's gymnasium
environment with the action answered: 100 episodes of up to 500 steps take at most 500 requests. With
``--via act`` (the default) the request goes to the task endpoint ``POST /v1/rl/act``, which chooses the
(greedy) actions itself; with ``--via v2`` it is ``POST /v2/models/<name>/infer`` and the client takes the
most likely action of the ``probabilities`` returned. The build runs this over the freshly built model and
records the result as the manifest's quality.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import DEFAULT_STORE, BuildError, console, sig  # noqa: E402
from models.rl.cartpole.episodes import play  # noqa: E402
from models.rl.cartpole.spec import ENGINE_INPUT, EPISODES, MIN_MEAN_RETURN, NAME, QUALITY_SEEDS  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Via = Literal["v2", "act"]
READY_TIMEOUT_S = 60.0
MAX_BATCH = 256  # the server's default limit on rows a request (Settings.max_batch_items)


@dataclass(frozen=True)
class HttpEvaluation:
    """Episode returns, in seed order, and what playing them cost on the wire."""

    endpoint: str
    seeds: list[int]
    returns: list[float]
    requests: int
    request_seconds: float

    def quality(self) -> dict[str, Any]:
        return {
            "episodes": len(self.returns),
            "mean_return": sig(sum(self.returns) / len(self.returns)),
            "min_return": min(self.returns),
            "max_return": max(self.returns),
            "episodes_at_500": sum(r >= 500 for r in self.returns),
            "seeds": f"{self.seeds[0]}-{self.seeds[-1]}",
            "measured_through": f"{self.endpoint} on the local server, one request per time step for all episodes",
            "requests": self.requests,
        }


class HttpPolicy:
    """A policy for ``play`` that asks the API, one request for the whole batch of observations."""

    def __init__(self, base_url: str, *, via: Via, model: str = NAME) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise BuildError(f"expected a base URL like http://127.0.0.1:8000, got {base_url!r}")
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        self.path = f"/v2/models/{model}/infer" if via == "v2" else "/v1/rl/act"
        self.via, self.model = via, model
        self.requests, self.seconds = 0, 0.0

    def __call__(self, observations: npt.NDArray[np.float32]) -> list[int]:
        # More episodes than one request may carry (the server's batch limit) take a request per slice.
        actions: list[int] = []
        for start in range(0, len(observations), MAX_BATCH):
            actions += self._actions(observations[start : start + MAX_BATCH])
        return actions

    def _actions(self, observations: npt.NDArray[np.float32]) -> list[int]:
        import numpy as np

        document: dict[str, Any]
        if self.via == "v2":
            document = {
                "inputs": [
                    {
                        "name": ENGINE_INPUT,
                        "datatype": "FP32",
                        "shape": list(observations.shape),
                        "data": observations.ravel().tolist(),
                    }
                ],
                "outputs": [{"name": "probabilities"}],
            }
        else:
            document = {"model": self.model, "observations": observations.tolist(), "deterministic": True}
        answer = self._post(json.dumps(document).encode())
        if self.via == "act":
            chosen: list[int] = answer["outputs"]["actions"]
            return chosen
        from aimass_rl.codecs import choose_actions

        (output,) = answer["outputs"]
        probabilities = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
        greedy: list[int] = choose_actions(probabilities, deterministic=True).tolist()
        return greedy

    def _post(self, body: bytes) -> Any:
        started = time.perf_counter()
        self.connection.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        self.seconds += time.perf_counter() - started
        self.requests += 1
        if response.status != 200:
            raise BuildError(f"POST {self.path} answered {response.status}: {data[:500].decode(errors='replace')}")
        return json.loads(data)

    def close(self) -> None:
        self.connection.close()


def evaluate(base_url: str, *, seeds: Sequence[int] = QUALITY_SEEDS, via: Via = "act") -> HttpEvaluation:
    """Play one episode per seed against the API at ``base_url``; every action comes from the server."""
    from aimass.serving.domains import checkout_domains

    checkout_domains()  # aimass_rl.codecs: the client takes its action choice from the domain's codecs
    seeds = list(seeds)
    policy = HttpPolicy(base_url, via=via)
    try:
        returns = play(policy, seeds)
    finally:
        policy.close()
    return HttpEvaluation(f"POST {policy.path}", seeds, returns, policy.requests, policy.seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def local_server(store: Path, *, domains: Sequence[str] = ("rl",)) -> Iterator[str]:
    """Run ``aimass serve`` over ``store`` on a free port until the block ends; yield its base URL."""
    port = free_port()
    # Metering off: this server lives for one evaluation on a private port, and 50,000 steps would otherwise
    # meet the default plan's rate limit. What is measured is the policy answering through the HTTP API.
    env = {**os.environ, "AIMASS_DOMAINS": json.dumps(list(domains)), "AIMASS_METERING": "off"}
    command = [sys.executable, "-m", "aimass_tools.cli", "serve", "--store", str(store), "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_ready(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise BuildError(f"the server exited ({process.returncode}):\n{log.read().decode(errors='replace')}")
        connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=2)
        try:
            connection.request("GET", "/v2/health/ready")
            response = connection.getresponse()
            body = response.read().decode(errors="replace")
        except OSError:
            time.sleep(0.1)
            continue
        finally:
            connection.close()
        if response.status == 200:
            return
        # Models load before the server listens, so a server that answers but is not ready stays so.
        raise BuildError(f"the server at {base_url} is not ready: {body}")
    raise BuildError(f"the server at {base_url} did not answer within {READY_TIMEOUT_S:.0f} s")


def evaluate_store(store: Path, *, seeds: Sequence[int] = QUALITY_SEEDS, via: Via = "act") -> HttpEvaluation:
    """Start a local server over ``store``, play the episodes through it, stop it."""
    with local_server(store) as base_url:
        return evaluate(base_url, seeds=seeds, via=via)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model store root (default: %(default)s)")
    parser.add_argument("--url", help="an API that is already running, e.g. http://127.0.0.1:8000 (no --store)")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes to play (default: %(default)s)")
    parser.add_argument("--via", choices=["act", "v2"], default="act", help="the endpoint asked (default: %(default)s)")
    args = parser.parse_args(argv)
    seeds = range(QUALITY_SEEDS.start, QUALITY_SEEDS.start + args.episodes)
    try:
        result = (
            evaluate(args.url, seeds=seeds, via=args.via)
            if args.url
            else evaluate_store(args.store, seeds=seeds, via=args.via)
        )
    except BuildError as exc:
        console.print(f"[red]evaluation failed:[/red] {exc}")
        return 1
    print_evaluation(result)
    return 0 if result.quality()["mean_return"] >= MIN_MEAN_RETURN else 1


def print_evaluation(result: HttpEvaluation) -> None:
    quality = result.quality()
    console.print(
        f"{quality['episodes']} episodes through {result.endpoint}: mean return {quality['mean_return']} "
        f"(min {quality['min_return']:.0f}, max {quality['max_return']:.0f}; {quality['episodes_at_500']} at 500), "
        f"{result.requests} requests, {1000 * result.request_seconds / max(result.requests, 1):.2f} ms each"
    )


if __name__ == "__main__":
    sys.exit(main())
