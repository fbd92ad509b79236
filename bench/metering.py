"""What authentication and metering add to a request, on the Lambda handler path, with SQLite locally.

    python bench/metering.py [--store model_store] [--domain rl] [--iterations 2000]
                             [--out bench/records/metering.json] [--explore]

The same V2 request through the domain's real Lambda handler (``functions/<domain>/handler.py``, imported as a
container with that environment imports it) three ways, each a handler module of its own: ``off``
(AIMASS_METERING=off); ``metering+observer``, as deployed with metering on (AIMASS_METERING=sqlite: a key
checked from the cache, the rate bucket, the quota charge and the usage record written to SQLite before the
answer leaves, then the Lambda observer's Powertools log line and EMF metrics); and ``metering``, the same
handler with its observer silenced at import (``aimass.observability.observer_for`` answering a no-op), which
splits the observer's share from the metering's. Calls rotate between the three so machine noise hits all alike.
Target: keys and metering (``metering`` over ``off``) add at most 0.3 ms at p50. Exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.lambda_context import LocalLambdaContext  # noqa: E402
from aimass.settings import Plan, Settings  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import make_console, merge_results, swapped  # noqa: E402
from bench.engine import environment, find_model, handler_env, import_handler  # noqa: E402
from bench.targets import Target, add_explore_flag, at_most, exit_status  # noqa: E402
from bench.workload import api_gateway_event  # noqa: E402

TARGET_MS = 0.3
MODES = ("off", "metering", "metering+observer")
console = make_console()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store")
    parser.add_argument("--domain", default="rl", help="the cheaper the model, the clearer the overhead")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "metering.json")
    add_explore_flag(parser)
    return parser.parse_args(argv)


class _Silent:
    """An observer that reports nothing: the deployed handler less its observer's log line and metrics."""

    def request(self, record: object, *, cold_start: bool) -> None:
        pass


def handlers(domain: str, env: Mapping[str, str], metered: Mapping[str, str]) -> dict[str, Callable[..., Any]]:
    """The domain's real handler module, imported once per mode."""
    import aimass.observability

    def silent(settings: Settings, *, in_lambda: bool | None = None) -> _Silent:
        return _Silent()

    with swapped(aimass.observability, "observer_for", silent):
        quiet = import_handler(domain, metered, variant="metering")
    return {
        "off": import_handler(domain, env, variant="off").handler,
        "metering": quiet.handler,
        "metering+observer": import_handler(domain, metered, variant="metering_observer").handler,
    }


def added(p50: Mapping[str, float]) -> dict[str, float]:
    """What metering adds over the plain handler, and what the observer adds over metering (p50s, ms)."""
    return {
        "added_p50_ms": round(p50["metering"] - p50["off"], 3),
        "observer_added_p50_ms": round(p50["metering+observer"] - p50["metering"], 3),
        "deployed_added_p50_ms": round(p50["metering+observer"] - p50["off"], 3),
    }


def targets(result: Mapping[str, Any]) -> list[Target]:
    return [at_most(f"{result['domain']} metering added_p50_ms", result["added_p50_ms"], TARGET_MS, " ms")]


def measure(store: Path, domain: str, iterations: int) -> dict[str, Any]:
    from aimass.metering.key_admin import create_key
    from aimass.metering.stores.key_factory import open_key_store

    workload = workloads.load(domain)
    artifact = find_model(store, workload)
    plans = {"default": Plan(rate_per_s=1e9, burst=10**9, monthly_units=10**12)}
    with tempfile.TemporaryDirectory(prefix="aimass-metering-") as state:
        env = {**handler_env(store, domain), "AIMASS_ALIAS_CHECK_S": "0"}
        metered = {
            **env,
            "AIMASS_METERING": "sqlite",
            "AIMASS_STATE_DIR": state,
            "AIMASS_PLANS": json.dumps({name: plan.model_dump() for name, plan in plans.items()}),
        }
        # The Lambda observer writes its log line and EMF document to stdout: measured with it going nowhere.
        # Powertools' logger keeps the stream it was made with (stdout at import), so that one stays open;
        # EMF prints at each flush, into the sink below.
        nowhere = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        with contextlib.redirect_stdout(nowhere):
            called = handlers(domain, env, metered)
        with environment(metered):
            settings = Settings()
        issued = create_key(
            open_key_store(settings), tenant="bench", scopes=("invoke",), plan="default", plans=settings.plans,
            now=datetime.now(UTC),
        )  # fmt: skip
        request = workload.v2_request(artifact.manifest, workload.items()[:1])
        plain_event = api_gateway_event(workload.v2_template, request)
        keyed = json.loads(json.dumps(plain_event))
        keyed["headers"]["x-api-key"] = issued.clear_text
        samples: dict[str, list[float]] = {mode: [] for mode in MODES}
        with contextlib.redirect_stdout(io.StringIO()) as sink:
            for round_ in range(iterations + 100):
                for mode in MODES[round_ % 3 :] + MODES[: round_ % 3]:  # rotate the order: no mode always first
                    event = plain_event if mode == "off" else keyed
                    # A fresh gateway request id per call, as API Gateway gives: every call writes a record.
                    event["requestContext"]["requestId"] = f"bench-{mode}-{round_}"
                    started = time.perf_counter()
                    response = called[mode](event, LocalLambdaContext())
                    elapsed = time.perf_counter() - started
                    if response["statusCode"] != 200:
                        raise RuntimeError(f"{mode}: status {response['statusCode']}: {response['body'][:200]}")
                    if round_ >= 100:  # warm-up first
                        samples[mode].append(elapsed * 1e3)
                sink.seek(0)
                sink.truncate()
    p50 = {mode: statistics.median(values) for mode, values in samples.items()}
    result = {
        "domain": domain,
        "model": artifact.manifest.name,
        "handler": f"functions/{domain}/handler.py",
        "iterations": iterations,
        "p50_off_ms": round(p50["off"], 3),
        "p50_metering_ms": round(p50["metering"], 3),
        "p50_metering_observer_ms": round(p50["metering+observer"], 3),
        **added(p50),
        "target_added_ms": TARGET_MS,
        "store": "sqlite (WAL, synchronous=NORMAL)",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    result["passed"] = all(target.met for target in targets(result))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args.store, args.domain, args.iterations)
    merge_results(args.out, args.domain, result)
    verdict = "[green]met[/]" if result["passed"] else "[red]missed[/]"
    console.print(
        f"{args.domain}: p50 {result['p50_off_ms']} ms without metering, {result['p50_metering_ms']} ms with keys, "
        f"rate, quota and the usage record: +{result['added_p50_ms']} ms (target ≤ {TARGET_MS} ms: {verdict}); "
        f"the Lambda observer's log line and metrics add {result['observer_added_p50_ms']} ms more "
        f"(as deployed: +{result['deployed_added_p50_ms']} ms; functions/{args.domain}/handler.py each way)"
    )
    console.print(f"saved to {args.out}")
    return exit_status(targets(result), explore=args.explore, console=console, script="bench/metering.py")


if __name__ == "__main__":
    raise SystemExit(main())
