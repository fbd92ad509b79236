"""What the API Gateway authorizer costs each request: its decision, its cold start, its price.

    python bench/authorizer.py [--iterations 5000] [--out bench/records/authorizer.json]

The authorizer (functions/authorizer/handler.py) runs before every metered request, uncached by API Gateway
(a key may come in either of two headers; see aimass.metering.authorizer). Measured here:

* the decision through the handler for a recorded REQUEST authorizer event: a key found in the in-process
  cache (what nearly every request pays: one lookup per key per AIMASS_KEY_CACHE_S) and a key read from the
  store on every call (SQLite here; on AWS a DynamoDB GetItem, a network round trip not measured here);
* the cold start: a fresh interpreter importing the handler configured for DynamoDB (boto3's client made),
  before the first decision;
* the price per million requests at the function's memory, from Lambda's list prices, beside API
  Gateway's own price for REST requests.

API Gateway's own time to invoke the authorizer is not measurable without AWS and is not included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.common import make_console, merge_results  # noqa: E402

HANDLER = _REPO / "functions" / "authorizer" / "handler.py"
EVENT = _REPO / "tests" / "events" / "apigw_authorizer_request.json"
FUNCTION_TOML = _REPO / "functions" / "authorizer" / "function.toml"
# List prices, us-east-1, x86_64 (aws.amazon.com/lambda/pricing, aws.amazon.com/api-gateway/pricing).
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_PER_GB_SECOND = 0.0000166667
API_GATEWAY_REST_PER_MILLION = 3.50  # the first 333 million requests a month
console = make_console()

COLD = r"""
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"import_s": time.perf_counter() - started}))
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "authorizer.json")
    return parser.parse_args(argv)


def decisions(iterations: int) -> dict[str, float]:
    """p50 and p99 (ms) of one decision through the handler, cached and uncached."""
    from aimass.metering.key_admin import create_key
    from aimass.metering.stores.keys_sqlite import SqliteKeyStore
    from aimass.settings import DEFAULT_PLANS, get_settings

    event: dict[str, Any] = json.loads(EVENT.read_text())
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="aimass-authorizer-") as state:
        issued = create_key(
            SqliteKeyStore(Path(state) / "metering.db"), tenant="bench", scopes=["invoke"], plan="default",
            plans=DEFAULT_PLANS, now=datetime.now(UTC),
        )  # fmt: skip
        event["headers"]["Authorization"] = f"Bearer {issued.clear_text}"
        for label, cache_s in (("cached", "30"), ("store_read", "0")):
            os.environ.update({"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": state, "AIMASS_KEY_CACHE_S": cache_s})
            get_settings.cache_clear()
            handler = _import_handler()
            samples = []
            for round_ in range(iterations + 200):
                started = time.perf_counter()
                response = handler(event, None)
                elapsed = time.perf_counter() - started
                if response["policyDocument"]["Statement"][0]["Effect"] != "Allow":
                    raise RuntimeError(f"the bench key was denied: {response['context']}")
                if round_ >= 200:
                    samples.append(elapsed * 1e3)
            results[f"{label}_p50_ms"] = round(statistics.median(samples), 4)
            results[f"{label}_p99_ms"] = round(statistics.quantiles(samples, n=100)[98], 4)
    return results


def cold_start(runs: int) -> float:
    """Median seconds for a fresh interpreter to import the handler configured for DynamoDB."""
    env = {**os.environ, "AIMASS_METERING": "dynamodb", "AIMASS_KEYS_TABLE": "aimass-keys",
           "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(_REPO / "layers")}  # fmt: skip
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", COLD, str(HANDLER)], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(json.loads(done.stdout.strip().splitlines()[-1])["import_s"]))
    return round(statistics.median(times), 3)


def price_per_million(memory_mb: int, billed_ms: int) -> float:
    return LAMBDA_PER_MILLION_REQUESTS + 1e6 * (memory_mb / 1024) * (billed_ms / 1000) * LAMBDA_PER_GB_SECOND


def _import_handler() -> Any:
    spec = importlib.util.spec_from_file_location("authorizer_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    memory_mb = int(tomllib.loads(FUNCTION_TOML.read_text())["memory_mb"])
    result: dict[str, Any] = {**decisions(args.iterations), "cold_import_s": cold_start(args.cold_starts)}
    # Lambda bills whole milliseconds, at least one: a cached decision is billed 1 ms.
    price = price_per_million(memory_mb, max(1, int(result["cached_p99_ms"]) + 1))
    result.update(
        memory_mb=memory_mb,
        usd_per_million_requests=round(price, 4),
        api_gateway_usd_per_million_requests=API_GATEWAY_REST_PER_MILLION,
        added_cost_share=round(price / API_GATEWAY_REST_PER_MILLION, 4),
    )
    merge_results(args.out, "authorizer", result)
    console.print(
        f"authorizer: decision p50 {result['cached_p50_ms']} ms with the key cached (p99 {result['cached_p99_ms']}), "
        f"{result['store_read_p50_ms']} ms reading the key store (SQLite); cold import {result['cold_import_s']} s; "
        f"${result['usd_per_million_requests']} per million requests at {memory_mb} MB "
        f"({result['added_cost_share']:.1%} of API Gateway's ${API_GATEWAY_REST_PER_MILLION})"
    )
    console.print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
