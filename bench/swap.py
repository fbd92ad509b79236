"""Time from promote to the first answer from the new version, per domain, on the Lambda path.

    python bench/swap.py [--domains text ...] [--store model_store] [--out bench/records/swap.json]

For each domain's model: a temporary store holds the built version as 1 and the same files again as 2;
the domain's real Lambda handler (``functions/<domain>/handler.py``, imported with that store and an
alias-check interval of 50 ms in its environment) serves version 1 while a client sends one request after
another. Version 2 is promoted; the next invocation past the alias-check
interval prepares it (fetch, checksums, session, validation samples), swaps, and answers on it. Reported:
seconds from the promote to the first answer labelled 2, how long the invocation that swapped took, and the
p50 latency of the invocations before and after. No target is stated for these numbers: the script exits 0
whatever they are (and 1 on an error, such as an answer that never comes from version 2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.errors import AimassError  # noqa: E402
from aimass.lambda_context import LocalLambdaContext  # noqa: E402
from aimass.store.aliases import promote  # noqa: E402
from aimass.store.local import LocalModelStore  # noqa: E402
from aimass.store.manifest import read_manifest, write_manifest  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import make_console, merge_results  # noqa: E402
from bench.engine import find_model, handler_env, import_handler  # noqa: E402
from bench.workload import api_gateway_event  # noqa: E402

INTERVAL_S = 0.05
console = make_console()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=None, help="domains to measure (default: all built)")
    parser.add_argument("--store", type=Path, default=_REPO / "model_store")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "swap.json")
    return parser.parse_args(argv)


def two_versions(source: Path, scratch: Path) -> tuple[LocalModelStore, str]:
    """A store holding ``source`` as version 1 and, byte for byte the same files, as version 2."""
    manifest = read_manifest(source)
    for version in ("1", "2"):
        target = scratch / manifest.name / version
        shutil.copytree(source, target)
        write_manifest(target, manifest.model_copy(update={"version": version}))
    store = LocalModelStore(scratch)
    store.write_aliases(manifest.name, promote(manifest.name, store.aliases(manifest.name), "1", ["1", "2"]))
    return store, manifest.name


def measure(domain: str, store_root: Path) -> dict[str, Any]:
    workload = workloads.load(domain)
    source = find_model(store_root, workload).directory
    with tempfile.TemporaryDirectory(prefix="aimass-swap-") as scratch:
        store, name = two_versions(source, Path(scratch))
        env = {**handler_env(Path(scratch), domain), "AIMASS_ALIAS_CHECK_S": str(INTERVAL_S)}
        handler = import_handler(domain, env, variant="swap").handler
        manifest = read_manifest(Path(scratch) / name / "1")
        request = workload.v2_request(manifest, workload.items()[:1])
        event = api_gateway_event(workload.v2_template, request)

        def invoke() -> tuple[str, float]:
            started = time.perf_counter()
            response = handler(event, LocalLambdaContext())
            elapsed = time.perf_counter() - started
            if response["statusCode"] != 200:
                raise RuntimeError(f"{domain}: status {response['statusCode']}: {response['body'][:200]}")
            return json.loads(_body(response))["model_version"], elapsed

        before = [invoke()[1] for _ in range(30)]
        store.write_aliases(name, promote(name, store.aliases(name), "2", store.versions(name)))
        promoted = time.perf_counter()
        time.sleep(INTERVAL_S)  # the interval passes, as it would between two invocations in production
        swapping: float | None = None
        while True:
            version, elapsed = invoke()
            if version == "2":
                first_answer = time.perf_counter() - promoted
                swapping = elapsed if swapping is None else swapping
                break
            swapping = elapsed
        after = [invoke()[1] for _ in range(30)]
    return {
        "model": name,
        "handler": f"functions/{domain}/handler.py",
        "model_mb": round(sum(f.size for f in manifest.files) / 1e6, 1),
        "alias_check_s": INTERVAL_S,
        "promote_to_first_answer_s": round(first_answer, 3),
        "swapping_invocation_s": round(swapping, 3),
        "p50_before_ms": round(statistics.median(before) * 1e3, 2),
        "p50_after_ms": round(statistics.median(after) * 1e3, 2),
    }


def _body(response: dict[str, Any]) -> bytes:
    import base64

    raw = str(response["body"])
    return base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from rich.table import Table

    table = Table(
        "domain", "model", "MB", "promote → first answer (s)", "swapping call (s)", "p50 before (ms)", "p50 after (ms)"
    )
    for domain in args.domains or workloads.available():
        try:
            find_model(args.store, workloads.load(domain))
        except AimassError as exc:  # a domain whose model is not built is skipped, saying so
            console.print(f"{domain}: skipped ({exc})")
            continue
        result = measure(domain, args.store)
        merge_results(args.out, domain, result)
        table.add_row(
            domain,
            result["model"],
            str(result["model_mb"]),
            str(result["promote_to_first_answer_s"]),
            str(result["swapping_invocation_s"]),
            str(result["p50_before_ms"]),
            str(result["p50_after_ms"]),
        )
    console.print(table)
    console.print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
