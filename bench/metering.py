"""What authentication and metering add to a request, on the Lambda handler path, with SQLite locally.

    python bench/metering.py [--store model_store] [--domain rl] [--iterations 2000] [--out bench/metering.json]

The same V2 request through the same handler (Mangum over the shared app) three ways: metering off;
metering on (a key checked from the cache, the rate bucket, the quota charge and the usage record written
to SQLite before the answer leaves); and metering with the Lambda observer (Powertools log line and EMF
metrics). Calls rotate between the three so machine noise hits all alike.
Target: keys and metering add at most 0.3 ms at p50.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.lambda_context import LocalLambdaContext  # noqa: E402
from aimass.settings import Plan, Settings  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import make_console, merge_results  # noqa: E402
from bench.engine import find_model  # noqa: E402
from bench.workload import api_gateway_event  # noqa: E402

TARGET_MS = 0.3
console = make_console()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store")
    parser.add_argument("--domain", default="rl", help="the cheaper the model, the clearer the overhead")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "metering.json")
    return parser.parse_args(argv)


def measure(store: Path, domain: str, iterations: int) -> dict[str, Any]:
    from mangum import Mangum

    from aimass.http import offload
    from aimass.http.app import create_app, metering_from_settings
    from aimass.metering.key_admin import create_key
    from aimass.metering.stores.key_factory import open_key_store
    from aimass.observability import LambdaObserver
    from aimass.serving.boot import load_models

    workload = workloads.load(domain)
    artifact = find_model(store, workload)
    plans = {"default": Plan(rate_per_s=1e9, burst=10**9, monthly_units=10**12)}
    with tempfile.TemporaryDirectory(prefix="aimass-metering-") as state:
        plain = Settings(model_store=store, domains=(domain,), metering="off", alias_check_s=0)
        metered = plain.model_copy(update={"metering": "sqlite", "state_dir": Path(state), "plans": plans})
        registry = load_models(plain)
        service = metering_from_settings(metered)
        assert service is not None

        def handler(settings: Settings, **extra: Any) -> Any:
            app = create_app(registry, settings, offload=offload.inline, in_lambda=True, **extra)
            return Mangum(app, lifespan="off")

        handlers = {
            "off": handler(plain),
            "metering": handler(metered, metering=service),
            # The Lambda observer writes its log line and EMF document to stdout: measured with it going nowhere.
            "metering+observer": handler(metered, metering=service, observer=LambdaObserver(f"aimass-{domain}")),
        }
        issued = create_key(
            open_key_store(metered), tenant="bench", scopes=("invoke",), plan="default", plans=plans,
            now=datetime.now(UTC),
        )  # fmt: skip
        request = workload.v2_request(artifact.manifest, workload.items()[:1])
        plain_event = api_gateway_event(workload.v2_template, request)
        keyed = json.loads(json.dumps(plain_event))
        keyed["headers"]["x-api-key"] = issued.clear_text
        samples: dict[str, list[float]] = {mode: [] for mode in handlers}
        modes = list(handlers)
        with contextlib.redirect_stdout(io.StringIO()) as sink:
            for round_ in range(iterations + 100):
                for mode in modes[round_ % 3 :] + modes[: round_ % 3]:  # rotate the order: no mode always first
                    event = plain_event if mode == "off" else keyed
                    # A fresh gateway request id per call, as API Gateway gives: every call writes a record.
                    event["requestContext"]["requestId"] = f"bench-{mode}-{round_}"
                    started = time.perf_counter()
                    response = handlers[mode](event, LocalLambdaContext())
                    elapsed = time.perf_counter() - started
                    if response["statusCode"] != 200:
                        raise RuntimeError(f"{mode}: status {response['statusCode']}: {response['body'][:200]}")
                    if round_ >= 100:  # warm-up first
                        samples[mode].append(elapsed * 1e3)
                sink.seek(0)
                sink.truncate()
    p50 = {mode: statistics.median(values) for mode, values in samples.items()}
    added = p50["metering"] - p50["off"]
    return {
        "domain": domain,
        "model": artifact.manifest.name,
        "iterations": iterations,
        "p50_off_ms": round(p50["off"], 3),
        "p50_metering_ms": round(p50["metering"], 3),
        "p50_metering_observer_ms": round(p50["metering+observer"], 3),
        "added_p50_ms": round(added, 3),
        "observer_added_p50_ms": round(p50["metering+observer"] - p50["metering"], 3),
        "target_added_ms": TARGET_MS,
        "passed": added <= TARGET_MS,
        "store": "sqlite (WAL, synchronous=NORMAL)",
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = measure(args.store, args.domain, args.iterations)
    merge_results(args.out, args.domain, result)
    verdict = "[green]met[/]" if result["passed"] else "[red]missed[/]"
    console.print(
        f"{args.domain}: p50 {result['p50_off_ms']} ms without metering, {result['p50_metering_ms']} ms with keys, "
        f"rate, quota and the usage record: +{result['added_p50_ms']} ms (target ≤ {TARGET_MS} ms: {verdict}); "
        f"the Lambda observer's log line and metrics add {result['observer_added_p50_ms']} ms more"
    )
    console.print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
