"""``aimass cost``'s answer as data (what ``bench/records/cost.json`` holds) and as tables."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from aimass_tools.cost import prices
from aimass_tools.cost.model import cheapest, lambda_costs, sagemaker_costs
from aimass_tools.cost.records import Priced

ASSUMPTIONS = (
    "Warm requests, one at a time per environment; Lambda's CPU share follows memory (1 vCPU at 1,769 MB); "
    "below it the stack and engine stretch by 1,769/memory, at or above it the engine runs as fast as on "
    "floor(memory/1,769) whole cores, at most the 2 measured. Prices: us-east-1, x86, on demand "
    "(aimass_tools/cost/prices.py). Per request on AI Mass: the function, API Gateway REST and the key "
    "authorizer (1 ms at its function.toml size). SageMaker Serverless Inference on paper, at the same warm "
    "duration for the same memory, without its data charge "
    f"(${prices.SAGEMAKER_DATA_PER_GB} per GB in and out) or cold starts."
)


def priced(records: Priced, *, latency_ms: float) -> dict[str, Any]:
    domains: dict[str, Any] = {}
    for measured in records.measured:
        table = lambda_costs(measured, authorizer_mb=records.authorizer_mb)
        best = cheapest(table, latency_ms, lambda size: size.total_per_million)
        paper = sagemaker_costs(measured)
        paper_best = cheapest(paper, latency_ms, lambda size: size.endpoint_per_million)
        domains[measured.domain] = {
            "model": measured.model,
            "measured_at": records.measured_at[measured.domain],
            "measured": asdict(measured),
            "lambda": [asdict(size) for size in table],
            "cheapest": asdict(best) if best else None,
            "sagemaker_serverless": [asdict(size) for size in paper],
            "sagemaker_cheapest": asdict(paper_best) if paper_best else None,
        }
    return {
        "latency_bound_ms": latency_ms,
        "assumptions": ASSUMPTIONS,
        "prices": {
            "lambda_per_gb_second": prices.LAMBDA_PER_GB_SECOND,
            "lambda_per_million_requests": prices.LAMBDA_PER_MILLION_REQUESTS,
            "api_gateway_rest_per_million": prices.API_GATEWAY_REST_PER_MILLION,
            "sagemaker_serverless_per_second": {
                str(mb): price for mb, price in prices.SAGEMAKER_SERVERLESS_PER_SECOND.items()
            },
            "sagemaker_data_per_gb": prices.SAGEMAKER_DATA_PER_GB,
        },
        "domains": domains,
        "skipped": records.skipped,
    }


def tables(answer: dict[str, Any]) -> list[Table]:
    shown = []
    bound = answer["latency_bound_ms"]
    for domain, entry in answer["domains"].items():
        best = entry["cheapest"]
        table = Table(
            "memory MB", "fits", "warm ms", "billed ms", "function $/M", "with API Gateway $/M",
            title=f"{domain} ({entry['model']}, measured {entry['measured_at']})",
            caption=(
                f"cheapest within {bound:g} ms: {best['memory_mb']} MB, ${best['total_per_million']:.2f} per million"
                if best
                else f"no size answers within {bound:g} ms"
            ),
        )  # fmt: skip
        for size in entry["lambda"]:
            marker = "*" if best and size["memory_mb"] == best["memory_mb"] else ""
            table.add_row(
                f"{size['memory_mb']}{marker}", "yes" if size["fits"] else "no", f"{size['warm_ms']:.2f}",
                str(size["billed_ms"]), f"{size['lambda_per_million']:.2f}", f"{size['total_per_million']:.2f}",
            )  # fmt: skip
        shown.append(table)
        paper = Table("memory MB", "fits", "warm ms", "endpoint $/M", "with API Gateway $/M",
                      title=f"{domain} on SageMaker Serverless Inference, on paper")  # fmt: skip
        for size in entry["sagemaker_serverless"]:
            paper.add_row(
                str(size["memory_mb"]), "yes" if size["fits"] else "no", f"{size['warm_ms']:.2f}",
                f"{size['endpoint_per_million']:.2f}", f"{size['behind_api_gateway_per_million']:.2f}",
            )  # fmt: skip
        shown.append(paper)
    return shown
