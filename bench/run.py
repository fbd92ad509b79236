"""Measure what the serving stack adds over the bare engine, for every domain (or the ones named).

    python bench/run.py [--domains text vision ...] [--store model_store] [--out bench/records/results.json]
                        [--quick] [--explore]

For each domain: warm latency of one item through the Lambda handler, the local HTTP server and the raw
ONNX Runtime session; cold start against a raw-engine floor; throughput at batch 1, 8 and 32; peak memory.
Prints tables and merges the domain's entry of the results file. Each domain runs in a process of its own,
one after another. Exits 1 when a domain misses a target (bench/report.py: the handler's added p50, the cold
start's ratio to the floor), naming each miss; ``--explore`` reports them and exits 0. See bench/README.md for
what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.errors import AimassError  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from aimass.store.base import ModelArtifact  # noqa: E402
from bench import workloads  # noqa: E402
from bench.common import cpu_busy, load_average, machine_info, make_console, merge_results  # noqa: E402
from bench.engine import find_model, handler_env  # noqa: E402
from bench.measure import FULL, QUICK, Plan, measure_all  # noqa: E402
from bench.report import assemble, domain_targets, print_report, print_summary  # noqa: E402
from bench.targets import Target, add_explore_flag, exit_status  # noqa: E402
from bench.workload import Workload  # noqa: E402
from models.catalogue import domains as catalogued_domains  # noqa: E402

BUSY_WARNING = 0.1  # share of the CPUs already busy before the start that makes the numbers suspect
PACKAGES = ("onnxruntime", "numpy", "tokenizers", "pillow", "fastapi", "starlette", "mangum", "pydantic")
SCRIPT = "bench/run.py"
console = make_console()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", metavar="DOMAIN", help="domains to measure (default: every one ready)")
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store directory")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "results.json", help="results file")
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a smoke run, noisier numbers")
    add_explore_flag(parser)
    return parser.parse_args(argv)


def ready_domains() -> tuple[list[str], list[str]]:
    """Domains with a catalogued model, a handler and a workload module; and why the others are left out."""
    catalogued, with_workload = set(catalogued_domains()), set(workloads.available())
    handlers = {path.parent.name for path in _REPO.glob("functions/*/handler.py")}
    ready, notes = [], []
    for domain in sorted(catalogued | with_workload | handlers):
        needs = {
            f"a catalogued model (models/{domain}/<model>/build.py)": domain in catalogued,
            f"functions/{domain}/handler.py": domain in handlers,
            f"bench/workloads/{domain}.py": domain in with_workload,
        }
        missing = [what for what, present in needs.items() if not present]
        if missing:
            notes.append(f"{domain}: skipped, no {' and no '.join(missing)}")
        else:
            ready.append(domain)
    return ready, notes


def run_context(quick: bool, plan: Plan, artifact: ModelArtifact, settings: Settings) -> dict[str, Any]:
    return {
        "mode": "quick" if quick else "full",
        "iterations": plan.iterations,
        "cold_start_runs": plan.cold_runs,
        "throughput_seconds_per_batch": plan.throughput_s,
        "intra_op_threads": settings.intra_op_threads,
        "inter_op_threads": settings.inter_op_threads,
        "model": f"{artifact.manifest.name}/{artifact.manifest.version}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def run_domain(workload: Workload[Any], store: Path, out: Path, quick: bool, explore: bool) -> int:
    """Measure one domain in this process, print its tables, merge its entry of the results file."""
    plan = QUICK if quick else FULL
    try:
        artifact = find_model(store, workload)  # verifies every file's sha256 once, up front
    except AimassError as exc:
        console.print(f"[red]{exc.message}[/]")
        return 2
    # The handler reads its settings from the environment, as in Lambda; every process here inherits it.
    os.environ.update(handler_env(store, workload.domain))
    settings = Settings()
    busy, load = cpu_busy(), load_average()
    busy_text = "unknown" if busy is None else f"{busy:.0%}"
    console.print(
        f"[bold]{workload.domain} bench[/] ({'quick' if quick else 'full'}): {artifact.manifest.name} "
        f"v{artifact.manifest.version}, {os.cpu_count()} CPUs, {busy_text} busy before the start"
    )
    measured = measure_all(workload, artifact, settings, store, plan, console)
    context = run_context(quick, plan, artifact, settings)
    context["machine"] = {
        **machine_info(PACKAGES),
        "cpu_busy_before": busy,
        "load_average_start": load,
        "load_average_end": load_average(),
    }
    results = assemble(workload, measured, context)
    print_report(console, workload, results, measured.warm)
    if busy is not None and busy > BUSY_WARNING:
        console.print(f"[yellow]the CPUs were {busy_text} busy before the start: expect noisier numbers[/]")
    merge_results(out, workload.domain, results)
    console.print(f"wrote {out} ({workload.domain})")
    return exit_status(domain_targets(workload.domain, results), explore=explore, console=console, script=SCRIPT)


def judged(document: dict[str, Any], domains: Sequence[str], failed: Sequence[str]) -> list[Target]:
    """The targets of every domain this run measured, from its entry of the results file."""
    measured = [domain for domain in domains if domain not in failed and isinstance(document.get(domain), dict)]
    return [target for domain in measured for target in domain_targets(domain, document[domain])]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store, out = args.store.resolve(), args.out.resolve()
    if args.domains:
        domains = list(dict.fromkeys(args.domains))
        unknown = [d for d in domains if d not in workloads.available()]
        if unknown:
            console.print(f"[red]no workload for {unknown}: add bench/workloads/<domain>.py[/]")
            return 2
    else:
        domains, notes = ready_domains()
        for note in notes:
            console.print(f"[yellow]{note}[/]")
    if len(domains) == 1:
        return run_domain(workloads.load(domains[0]), store, out, args.quick, args.explore)
    # One process per domain: a domain's models, threads and memory never sit beside another's numbers. Each
    # child only reports its targets; this process judges them all at the end, beside the summary.
    failed = []
    for domain in domains:
        command = [sys.executable, str(Path(__file__).resolve()), "--domains", domain, "--store", str(store)]
        command += ["--out", str(out), "--explore", *(["--quick"] if args.quick else [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(domain)
    document = json.loads(out.read_text()) if out.is_file() else {}
    print_summary(console, document, domains)
    status = exit_status(judged(document, domains, failed), explore=args.explore, console=console, script=SCRIPT)
    if failed:
        console.print(f"[red]failed to measure: {', '.join(failed)}[/]")
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
