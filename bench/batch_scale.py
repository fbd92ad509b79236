"""Large batches end to end on this machine, with a worker killed mid-batch: exactly once, billed once.

    python bench/batch_scale.py [--store model_store] [--out bench/records/batch_scale.json] [--sentences N]
                                [--images N] [--explore]

* ``text``: N sentences (default 100,000), one a line, to ``/v1/embeddings`` with all-MiniLM-L6-v2;
* ``vision``: N images (default 2,000), four a line, to ``/v1/vision/classify`` with EfficientNet-Lite0.

Each batch is made through the Batch API's service with no worker running; then a worker process
(``python -m aimass.worker``) starts, is SIGKILLed once about a third of the chunks are written, and a second
worker process finishes the batch, resuming the killed one's shard after its lease. Recorded: the wall time and
items per second, where the kill fell, and the checks: one output line per input line, in input order, no
error line, and billed units equal to the sum of the answered lines' own usage (billed once). Those checks are
its targets: it exits 1 when one fails (``--explore``: reports it, exits 0).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.batches.backends import open_batches  # noqa: E402
from aimass.batches.service import BatchService, Endpoints  # noqa: E402
from aimass.files.factory import open_files  # noqa: E402
from aimass.metering.keys import Caller  # noqa: E402
from aimass.metering.stores.usage_factory import open_usage  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from bench.common import machine_info, make_console, merge_results  # noqa: E402
from bench.targets import Target, add_explore_flag, exit_status, holds, passed  # noqa: E402
from bench.workloads.text import SENTENCES  # noqa: E402
from bench.workloads.vision import chelsea_jpeg  # noqa: E402

CALLER = Caller(tenant="bench", key_id="bench", scopes=("invoke",), plan="default")
LEASE_S = 5
KILL_AT = 1 / 3  # of the chunks


def text_lines(count: int) -> tuple[str, str, list[str]]:
    model = "all-minilm-l6-v2"
    lines = [
        json.dumps(
            {
                "custom_id": f"s{n}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": model, "input": f"{SENTENCES[n % len(SENTENCES)]} ({n})"},
            }
        )
        for n in range(count)
    ]
    return "/v1/embeddings", model, lines


def vision_lines(count: int, per_line: int = 4) -> tuple[str, str, list[str]]:
    model = "efficientnet-lite0"
    image = base64.b64encode(chelsea_jpeg()).decode()
    lines = [
        json.dumps(
            {
                "custom_id": f"i{n}",
                "method": "POST",
                "url": "/v1/vision/classify",
                "body": {"model": model, "images": [image] * min(per_line, count - n), "top_k": 1},
            }
        )
        for n in range(0, count, per_line)
    ]
    return "/v1/vision/classify", model, lines


def run(domain: str, store: Path, endpoint: str, model: str, lines: list[str], items: int) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix=f"aimass-scale-{domain}-"))
    shard_lines = max(1, len(lines) // 20)
    env = {
        "AIMASS_MODEL_STORE": str(store.resolve()),
        "AIMASS_DOMAINS": json.dumps([domain]),
        "AIMASS_STATE_DIR": str(state),
        "AIMASS_METERING": "sqlite",
        "AIMASS_ALIAS_CHECK_S": "0",
        "AIMASS_BATCH_SHARD_LINES": str(shard_lines),
        "AIMASS_BATCH_LEASE_S": str(LEASE_S),
    }
    settings = Settings(
        model_store=store, domains=(domain,), state_dir=state, metering="sqlite", batch_shard_lines=shard_lines
    )
    batches, files = open_batches(settings), open_files(settings)
    service = BatchService(batches.store, batches.launcher, files, Endpoints(lambda: {model: domain}), settings)
    content = ("\n".join(lines) + "\n").encode()
    source = files.put(CALLER.tenant, io.BytesIO(content), filename="in.jsonl", purpose="batch", limit=len(content))
    started = time.perf_counter()
    batch = service.create(CALLER, input_file_id=source.id, endpoint=endpoint, completion_window="24h", metadata=None)
    chunks_total = sum(
        -(-min(shard_lines, len(lines) - s * shard_lines) // settings.batch_chunk_lines) for s in range(batch.shards)
    )

    def written() -> int:
        folder = state / "batches" / batch.id
        return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")) if folder.exists() else 0

    worker_env = {**os.environ, **env}
    command = [sys.executable, "-m", "aimass.worker"]
    first = subprocess.Popen(command, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while written() < chunks_total * KILL_AT and first.poll() is None:
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at, killed_s = written(), time.perf_counter() - started
    second = subprocess.Popen(command, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            current = batches.store.get(CALLER.tenant, batch.id)
            assert current is not None
            if current.status not in ("in_progress", "finalizing"):
                break
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    seconds = time.perf_counter() - started
    assert current.output_file_id is not None, current
    opened = files.open(CALLER.tenant, current.output_file_id)
    assert opened is not None
    ids, answered_units = [], 0
    rest = b""
    for chunk in opened[1]:
        rest += chunk
        *rows, rest = rest.split(b"\n")
        for row in rows:
            parsed = json.loads(row)
            ids.append(parsed["custom_id"])
            answered_units += (
                int(parsed["response"]["body"]["usage"].get("prompt_tokens", 0) or 0) if domain == "text" else 0
            )
    expected = [json.loads(line)["custom_id"] for line in lines]
    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    billed = [r for r in usage.query(now - timedelta(days=1), now + timedelta(days=1), CALLER.tenant) if r.billed]
    billed_units = sum(r.units for r in billed)
    checks = {
        "status": current.status,
        "one_output_per_input_in_order": ids == expected,
        "error_lines": current.failed,
        "billed_units": billed_units,
        "billed_once": billed_units == (answered_units if domain == "text" else items),
        "usage_records": len(billed),
    }
    shutil.rmtree(state, ignore_errors=True)
    return {
        "items": items,
        "lines": len(lines),
        "shards": batch.shards,
        "seconds": round(seconds, 1),
        "items_per_s": round(items / seconds, 2),
        "killed": {"after_s": round(killed_s, 1), "chunks_written": killed_at, "chunks_total": chunks_total},
        "checks": checks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=Path("bench/records/batch_scale.json"))
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=2_000)
    add_explore_flag(parser)
    args = parser.parse_args()
    console = make_console()
    judged: list[Target] = []
    for domain, (endpoint, model, lines), items in (
        ("text", text_lines(args.sentences), args.sentences),
        ("vision", vision_lines(args.images), args.images),
    ):
        if not items:
            continue
        result = run(domain, args.store, endpoint, model, lines, items)
        result["machine"] = machine_info(["onnxruntime", "numpy"])
        found = targets(domain, result["checks"])
        result["passed"] = passed(found)
        judged += found
        merge_results(args.out, domain, result)
        console.print(f"[bold]{domain}[/]: {json.dumps({k: v for k, v in result.items() if k != 'machine'})}")
    console.print(f"saved {args.out}")
    return exit_status(judged, explore=args.explore, console=console, script="bench/batch_scale.py")


def targets(domain: str, checks: dict[str, Any]) -> list[Target]:
    """A batch that survived a killed worker: completed, every line once and in order, no error, billed once."""
    return [
        holds(f"{domain} completed", checks["status"] == "completed", f"status {checks['status']}"),
        holds(f"{domain} one output per input, in order", checks["one_output_per_input_in_order"], "checked"),
        holds(f"{domain} no error line", checks["error_lines"] == 0, f"{checks['error_lines']} error lines"),
        holds(f"{domain} billed once", checks["billed_once"], f"{checks['billed_units']} units billed"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
