"""How much memory and how long a timeout each domain's Lambda function needs, measured.

    python -m bench.sizing [--domains text vision ...] [--store model_store] [--out bench/records/sizing.json]
                           [--repeats 3] [--explore]

For each domain with a built model and a workload: the p50 of ``runtime.predict`` on one item and on the
largest request the API accepts, with ONNX Runtime at 1 and at 2 intra-op threads (a function at or below
1,769 MB, and one above), and the peak resident memory after loading and after the largest request. Per
domain, three fresh processes: one per thread count reads the memory (so that no other session or arena
sits in it) and times each request's first call; a third loads both thread counts and times them in turns,
so that other work on the machine weighs on both alike. Prints a table, derives ``memory_mb`` and
``timeout_s`` for ``functions/<domain>/function.toml`` by the rules of ``suggest``, and writes both into the
committed, dated record ``bench/records/sizing.json`` (``bench/sizing_record.py``). Exits 1 when a
``function.toml`` disagrees with the record beyond its tolerance (``--explore``: says so, exits 0). See
bench/README.md, "Sizing".
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.contract import API_INTEGRATION_TIMEOUT_S, MB_PER_VCPU  # noqa: E402
from bench import sizing_record, workloads  # noqa: E402
from bench.common import _cpu_times, cpu_busy, machine_info, make_console, write_json  # noqa: E402
from bench.targets import add_explore_flag, exit_status, holds  # noqa: E402
from bench.workload import Array, Workload  # noqa: E402

if TYPE_CHECKING:
    from aimass.serving.registry import ModelRegistry
    from aimass.serving.runtime import ModelRuntime
    from aimass.settings import Settings

THREADS = (1, 2)  # this machine's cores; 2 threads stand in for a function of 1,770 MB or more
# Timeouts are rounded up to one of these, so that run-to-run noise does not move them. 3 s is the least
# infra/config.py accepts (and Lambda's default); API Gateway's REST integration limit (29 s) the most.
TIMEOUT_STEPS_S = (3, 5, 10, 15, 20, API_INTEGRATION_TIMEOUT_S)
RSS_HEADROOM = 1.5  # Lambda kills a function at its memory limit: the peak must stay well below it
TIMEOUT_SAFETY = 10  # a busier or older host, a first request that grows the arena, garbage collection
WORTH_A_SECOND_VCPU = 1.3  # speedup of a one-item request that pays for the memory a second thread costs
TINY_MS = 0.1  # one item's predict below this: the serving stack (0.25 ms, bench/README.md) is the request
FRACTION_MB = 1024  # 0.58 vCPU: a 0.5 ms request still ends within Lambda's 1 ms billing minimum
# What ``suggest`` goes by, recorded beside the numbers.
RULES = {
    "mb_per_vcpu": MB_PER_VCPU,
    "rss_headroom": RSS_HEADROOM,
    "timeout_safety": TIMEOUT_SAFETY,
    "timeout_steps_s": TIMEOUT_STEPS_S,
    "worth_a_second_vcpu": WORTH_A_SECOND_VCPU,
    "tiny_ms": TINY_MS,
    "fraction_mb": FRACTION_MB,
}
ONE_ITEM_RUNS, MIN_SECONDS = 30, 3.0
BUSY_WARNING = 0.1
console = make_console()


@dataclass(frozen=True)
class Case:
    """One request, as ``runtime.predict`` (or a task) gets it."""

    key: str  # "one", "largest", or a domain's own ("classify_limit", "transcribe")
    label: str  # as the table prints it
    items: int
    run: Callable[[], object]


Cases = Callable[[Workload[Any], "ModelRuntime", "Settings"], list[Case]]


# --- The requests each domain is sized for ------------------------------------------------------------


def _predict(workload: Workload[Any], runtime: ModelRuntime, items: Sequence[Any]) -> Callable[[], object]:
    inputs = workload.predict_inputs(runtime.manifest, items)
    return lambda: runtime.predict(inputs)


def windows(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items, cycling through ``items``."""
    return [items[i % len(items)] for i in range(count)]


def default_cases(workload: Workload[Any], runtime: ModelRuntime, settings: Settings) -> list[Case]:
    """One item, and as many as a V2 request may carry (``Settings.max_batch_items``)."""
    items, most, noun = workload.items(), settings.max_batch_items, workload.noun
    return [
        Case("one", f"1 {noun}", 1, _predict(workload, runtime, items[:1])),
        Case("largest", f"{most} {noun}s", most, _predict(workload, runtime, windows(items, most))),
    ]


def long_text(sentences: Sequence[str], count_tokens: Callable[[str], int], limit: int) -> str:
    """The fewest leading sentences whose tokens reach ``limit``: the tokenizer truncates longer texts there."""
    for count in range(1, len(sentences) + 1):
        joined = " ".join(sentences[:count])
        if count_tokens(joined) >= limit:
            return joined
    raise ValueError(f"{len(sentences)} sentences hold fewer than {limit} tokens")


def text_cases(workload: Workload[Any], runtime: ModelRuntime, settings: Settings) -> list[Case]:
    """The largest request: as many texts as allowed, each as long as the tokenizer keeps (256 tokens)."""
    from aimass_text.runtime import TextEmbeddingRuntime

    text = cast(TextEmbeddingRuntime, runtime)
    limit, most = text.pre.max_length, settings.max_batch_items
    sentences = list(workload.items())

    def count_tokens(value: str) -> int:
        return len(text.tokenizer.encode(value).ids)

    starts = [i % len(sentences) for i in range(most)]  # texts that begin at different sentences
    texts = [long_text(sentences[i:] + sentences[:i], count_tokens, limit) for i in starts]
    return [
        Case("one", f"1 sentence, {count_tokens(sentences[0])} tokens", 1, _predict(workload, runtime, sentences[:1])),
        Case("largest", f"{most} texts of {limit} tokens", most, _predict(workload, runtime, texts)),
    ]


def vision_cases(workload: Workload[Any], runtime: ModelRuntime, settings: Settings) -> list[Case]:
    """The classify task takes at most MAX_IMAGES; V2 infer takes ``max_batch_items`` images, run as one batch.

    Every image is resized to the network's square, so the network costs the same per image whatever its
    size; the workload's 35 kB JPEG is larger than a 256-image body lets an image be (6 MiB / 256), so its
    decoding makes the largest request an upper bound.
    """
    from aimass_vision.runtime import MAX_IMAGES

    one, largest = default_cases(workload, runtime, settings)
    images = windows(workload.items(), MAX_IMAGES)
    task = Case("classify_limit", f"{MAX_IMAGES} images (classify)", MAX_IMAGES, _predict(workload, runtime, images))
    return [one, task, largest]


def speech_cases(workload: Workload[Any], runtime: ModelRuntime, settings: Settings) -> list[Case]:
    """V2 infer: the 1-second windows a binary body holds; transcribe: the longest file at the highest rate."""
    import soundfile  # type: ignore[import-untyped]

    from aimass_speech.audio import MAX_RATE
    from aimass_speech.runtime import SpeechCommandsRuntime, TranscribeRequest
    from aimass_speech.words import cut_words

    speech = cast(SpeechCommandsRuntime, runtime)
    clips, pre = workload.items(), speech.pre
    most = min(settings.max_batch_items, v2_binary_windows(settings.max_body_bytes, pre.clip_samples))
    seconds = int(pre.max_seconds)
    recording = windows(clips, seconds * pre.sample_rate // pre.clip_samples)
    spans, _ = cut_words(np.concatenate(recording).astype(np.float32), pre.sample_rate, pre.clip_samples)
    # FLAC: 30 s at 192 kHz fits the body limit (as WAV it would not). Written a clip at a time, so that
    # making it sets no memory peak of its own.
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", MAX_RATE, 1, format="FLAC", subtype="PCM_16") as out:
        for clip in recording:
            out.write(upsampled(clip, pre.sample_rate, MAX_RATE))
    file = base64.b64encode(buffer.getvalue()).decode()
    assert len(file) < settings.max_body_bytes, "the transcribe file does not fit a request body"
    request = TranscribeRequest.model_validate({"file": file})
    transcribe = f"transcribe {seconds} s, {MAX_RATE // 1000} kHz FLAC"
    return [
        Case("one", "1 clip", 1, _predict(workload, runtime, clips[:1])),
        Case("largest", f"{most} clips (binary V2)", most, _predict(workload, runtime, windows(clips, most))),
        Case("transcribe", transcribe, len(spans), lambda: speech.transcribe(request)),
    ]


def v2_binary_windows(max_body_bytes: int, clip_samples: int) -> int:
    """Windows of FP32 samples a binary V2 body holds, a kilobyte left for its JSON header."""
    return (max_body_bytes - 1024) // (4 * clip_samples)


def upsampled(samples: Array, rate: int, target: int) -> Array:
    """Linear interpolation: enough for a test signal that the runtime resamples back."""
    count = len(samples) * target // rate
    values = np.interp(np.arange(count) * (rate / target), np.arange(len(samples)), samples)
    return np.asarray(values, dtype=np.float32)


CASES: dict[str, Cases] = {"text": text_cases, "vision": vision_cases, "speech": speech_cases}


# --- The probes, each in a fresh process ------------------------------------------------------------------


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


@dataclass(frozen=True)
class Loaded:
    """A domain's model as its function loads it."""

    workload: Workload[Any]
    registry: ModelRegistry
    runtime: ModelRuntime
    settings: Settings

    def cases(self) -> list[Case]:
        return CASES.get(self.workload.domain, default_cases)(self.workload, self.runtime, self.settings)


def load(domain: str, threads: int, store: Path) -> Loaded:
    from aimass.serving.registry import ModelRegistry
    from aimass.serving.session import SessionFactory
    from aimass.settings import Settings
    from aimass.store.local import LocalModelStore
    from bench.engine import find_model

    workload = workloads.load(domain)
    manifest = find_model(store, workload).manifest
    settings = Settings(model_store=store, domains=(domain,), intra_op_threads=threads)
    registry = ModelRegistry(LocalModelStore(store), SessionFactory(settings), domains=(domain,))
    registry.load_all()
    return Loaded(workload, registry, registry.get(manifest.name, manifest.version), settings)


def memory_probe(domain: str, threads: int, store: Path, calls: int) -> dict[str, Any]:
    """Peak RSS after the load (and the web stack), and after ``calls`` of each request, smallest first.

    Also the time of each request's first call, which grows ONNX Runtime's arena to its shape: what a
    container's first such request pays.
    """
    from aimass.http.app import build_app

    loaded = load(domain, threads, store)
    # FastAPI, pydantic and the routes sit in the function's memory too.
    build_app(loaded.settings, in_lambda=True, registry=loaded.registry)
    after_load = peak_rss_mb()
    cases = loaded.cases()
    after_inputs = peak_rss_mb()
    first: dict[str, Any] = {}
    for case in cases:
        start = time.perf_counter()
        case.run()
        elapsed = time.perf_counter() - start
        for _ in range(calls - 1):  # the arena keeps growing over the first few calls of a large shape
            case.run()
        first[case.key] = {"first_ms": round(elapsed * 1e3, 3), "peak_rss_mb": peak_rss_mb()}
    manifest = loaded.runtime.manifest
    return {
        "model": f"{manifest.name}/{manifest.version}",
        "rss_after_load_mb": after_load,
        "rss_after_inputs_mb": after_inputs,
        "cases": first,
    }


def timing_probe(domain: str, store: Path, repeats: int) -> dict[str, Any]:
    """p50 of every request at each thread count, the counts taking turns call by call."""
    cases = {n: load(domain, n, store).cases() for n in THREADS}
    busy_before, own_before = _cpu_times(), _own_cpu()
    timings: dict[str, Any] = {}
    for index, case in enumerate(cases[THREADS[0]]):
        runs = {n: cases[n][index].run for n in THREADS}
        samples = interleaved(runs, max(repeats, ONE_ITEM_RUNS) if case.items == 1 else repeats)
        p50 = {f"p50_ms_{n}t": round(float(np.median(samples[n])) * 1e3, 3) for n in THREADS}
        timings[case.key] = {"label": case.label, "items": case.items, **p50, "runs": len(samples[THREADS[0]])}
    (busy, total), own = _cpu_times(), _own_cpu()
    others = (busy - busy_before[0]) / os.sysconf("SC_CLK_TCK") - (own - own_before)
    elapsed = (total - busy_before[1]) / os.sysconf("SC_CLK_TCK")
    return {"cases": timings, "others_cpu_share": round(max(0.0, others / max(elapsed, 1e-9)), 3)}


def interleaved(runs: dict[int, Callable[[], object]], count: int) -> dict[int, list[float]]:
    """Seconds per call of each run, alternating (and alternating which goes first), after one warm-up each."""
    for run in runs.values():
        run()
    samples: dict[int, list[float]] = {n: [] for n in runs}
    order, deadline = list(runs), time.perf_counter() + MIN_SECONDS
    while len(samples[order[0]]) < count or time.perf_counter() < deadline:
        order.reverse()
        for n in order:
            start = time.perf_counter()
            runs[n]()
            samples[n].append(time.perf_counter() - start)
    return samples


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- From the numbers to function.toml --------------------------------------------------------------------


def memory_floor_mb(peak_rss_mb: float) -> int:
    """The least memory for a function with this peak: RSS_HEADROOM times it, rounded up to 64 MB."""
    return 64 * math.ceil(peak_rss_mb * RSS_HEADROOM / 64)


def seconds_at(memory_mb: int, one_thread_s: float, two_threads_s: float) -> float:
    """A request's time at ``memory_mb``: stretched below one vCPU; at one thread's pace up to two vCPUs."""
    vcpus = memory_mb / MB_PER_VCPU
    if vcpus < 1:
        return one_thread_s / vcpus
    return two_threads_s if vcpus >= 2 else one_thread_s


def cpu_memory_mb(one_item_ms: float, speedup: float) -> int:
    """The memory that buys the CPU a one-item request needs (its time at one thread, and at two)."""
    if speedup >= WORTH_A_SECOND_VCPU:
        return 2 * MB_PER_VCPU
    return FRACTION_MB if one_item_ms < TINY_MS else MB_PER_VCPU


def timeout_s(largest_s: float) -> int:
    """TIMEOUT_SAFETY times the largest request, rounded up to a step; the last step at most."""
    needed = largest_s * TIMEOUT_SAFETY
    return next((step for step in TIMEOUT_STEPS_S if step >= needed), TIMEOUT_STEPS_S[-1])


def suggest(one_ms: tuple[float, float], largest_ms: tuple[float, float], peak_rss_mb: float) -> dict[str, Any]:
    """memory_mb and timeout_s from (1-thread, 2-thread) times in ms and the peak RSS.

    Memory: at least ``memory_floor_mb``, and at least the CPU a one-item request (what most requests are)
    is worth: two full vCPUs when a second thread makes it WORTH_A_SECOND_VCPU times faster; FRACTION_MB
    when it takes under TINY_MS, for such requests bill Lambda's 1 ms minimum either way; else one full
    vCPU, since CPU-bound work costs the same GB-seconds on a fraction of a core, only more slowly.
    Timeout: the largest request at that memory (the slower of its first call and its p50),
    TIMEOUT_SAFETY times over.
    """
    speedup = one_ms[0] / one_ms[1]
    memory = max(memory_floor_mb(peak_rss_mb), cpu_memory_mb(one_ms[0], speedup))
    largest_s = seconds_at(memory, *largest_ms) / 1e3
    return {
        "memory_mb": memory,
        "timeout_s": timeout_s(largest_s),
        "memory_floor_mb": memory_floor_mb(peak_rss_mb),
        "one_item_speedup": round(speedup, 2),
        "largest_s_at_memory": round(largest_s, 3),
        "timeout_headroom": round(timeout_s(largest_s) / largest_s, 1),
    }


def summarise(memory: dict[int, dict[str, Any]], timing: dict[str, Any]) -> dict[str, Any]:
    """A domain's entry of sizing.json: every request's numbers, the peaks, and the suggested settings."""
    cases: dict[str, Any] = {}
    for key, timed in timing["cases"].items():
        first = {f"first_ms_{n}t": memory[n]["cases"][key]["first_ms"] for n in THREADS}
        speedup = round(timed["p50_ms_1t"] / timed["p50_ms_2t"], 2)
        cases[key] = {**timed, **first, "speedup": speedup, "peak_rss_mb": memory[1]["cases"][key]["peak_rss_mb"]}
    slowest = max(cases, key=lambda key: cases[key]["p50_ms_1t"])
    worst = tuple(max(cases[slowest][f"p50_ms_{n}t"], cases[slowest][f"first_ms_{n}t"]) for n in THREADS)
    peak = max(max(c["peak_rss_mb"] for c in m["cases"].values()) for m in memory.values())
    return {
        "model": memory[1]["model"],
        "rss_after_load_mb": max(m["rss_after_load_mb"] for m in memory.values()),
        "rss_after_inputs_mb": max(m["rss_after_inputs_mb"] for m in memory.values()),
        "peak_rss_mb": peak,
        "peak_rss_mb_by_threads": {str(n): max(c["peak_rss_mb"] for c in memory[n]["cases"].values()) for n in THREADS},
        "cases": cases,
        "slowest_case": slowest,
        "others_cpu_share": timing["others_cpu_share"],
        "suggested": suggest(
            (cases["one"]["p50_ms_1t"], cases["one"]["p50_ms_2t"]), cast(tuple[float, float], worst), peak
        ),
    }


# --- The runner ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", metavar="DOMAIN", help="domains to size (default: every one built)")
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store directory")
    parser.add_argument("--out", type=Path, default=sizing_record.RECORD, help="the sizing record")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each large request (p50 of them)")
    # A child process's part: --probe memory --threads N, or --probe timing.
    parser.add_argument("--probe", choices=("memory", "timing"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true", help="print the record as bench/README.md's table only")
    add_explore_flag(parser)
    return parser.parse_args(argv)


def built_domains(store: Path) -> list[str]:
    """Domains with a workload whose catalogued model is in the store, but those sized otherwise."""
    from aimass.errors import AimassError
    from bench.engine import find_model

    found = []
    for domain in workloads.available():
        if domain in sizing_record.SIZED_OTHERWISE:
            console.print(f"{domain}: not sized here, {sizing_record.SIZED_OTHERWISE[domain].by} sizes it")
            continue
        try:
            find_model(store, workloads.load(domain))
        except AimassError as exc:
            console.print(f"[yellow]{domain}: skipped, {exc.message}[/]")
        else:
            found.append(domain)
    return found


def child(domain: str, store: Path, *options: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--domains", domain, "--store", str(store), *options]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def function_models(domain: str) -> list[str]:
    """Every catalogued model the domain's function serves."""
    from models.catalogue import catalogue

    return [entry.name for entry in catalogue() if entry.domain == domain]


def size_domain(domain: str, store: Path, repeats: int) -> dict[str, Any]:
    busy = cpu_busy(0.5)
    console.print(f"[bold]{domain}[/]: {'unknown' if busy is None else f'{busy:.0%}'} of the CPUs busy before")
    memory = {n: child(domain, store, "--probe", "memory", "--threads", str(n)) for n in THREADS}
    timing = child(domain, store, "--probe", "timing", "--repeats", str(repeats))
    context = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "repeats": repeats,
        "cpu_busy_before": busy,
        "rules": RULES,
        "machine": machine_info(("onnxruntime", "numpy", "tokenizers", "pillow")),
    }
    entry = summarise(memory, timing)
    # The function's other models, which this run does not time: where their numbers come from instead.
    entry["timed_elsewhere"] = sizing_record.timed_elsewhere(function_models(domain), entry["model"].split("/")[0])
    return {**entry, **context}


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def print_table(domains: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="runtime.predict p50 (ms) at 1 and 2 intra-op threads; peak RSS (MB)")
    columns = ("domain", "request", "1 thread", "2 threads", "speedup", "1st call, 1 thread")
    for column in (*columns, "RSS loaded", "peak RSS", "suggested"):
        table.add_column(column, justify="left" if column in ("domain", "request", "suggested") else "right")
    for domain, entry in domains.items():
        suggested = entry["suggested"]
        head = (
            f"{entry['rss_after_load_mb']:.0f}",
            f"{entry['peak_rss_mb']:.0f}",
            f"{suggested['memory_mb']} MB, {suggested['timeout_s']} s",
        )
        for index, case in enumerate(entry["cases"].values()):
            first = index == 0
            table.add_row(
                domain if first else "",
                case["label"],
                _ms(case["p50_ms_1t"]),
                _ms(case["p50_ms_2t"]),
                f"{case['speedup']:.2f}x",
                _ms(case["first_ms_1t"]),
                *(head if first else ("", "", "")),
                end_section=index == len(entry["cases"]) - 1,
            )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = args.store.resolve()
    if args.probe == "memory":
        print(json.dumps(memory_probe(args.domains[0], args.threads, store, max(3, args.repeats))))
        return 0
    if args.probe == "timing":
        print(json.dumps(timing_probe(args.domains[0], store, args.repeats)))
        return 0
    if args.table:
        record = json.loads(args.out.resolve().read_text())
        print(sizing_record.markdown_table(record, sizing_record.read_functions()))
        return 0
    domains = list(dict.fromkeys(args.domains)) if args.domains else built_domains(store)
    unknown = [d for d in domains if d not in workloads.available()]
    if unknown:
        console.print(f"[red]no workload for {unknown}: add bench/workloads/<domain>.py[/]")
        return 2
    entries = {domain: size_domain(domain, store, args.repeats) for domain in domains}
    print_table(entries)
    for domain, entry in entries.items():
        if entry["others_cpu_share"] > BUSY_WARNING:
            console.print(f"[yellow]{domain}: other work took {entry['others_cpu_share']:.0%} of the CPUs: rerun it[/]")
    out = args.out.resolve()
    previous = json.loads(out.read_text()) if out.is_file() else None
    machine = machine_info(("onnxruntime", "numpy", "tokenizers", "pillow"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = sizing_record.merged(previous, entries, measured_at=stamp, machine=machine)
    write_json(out, record)  # other domains' entries are kept
    console.print(f"wrote {out} ({', '.join(entries)})")
    return stale_sizes(record, args.explore)


def stale_sizes(record: dict[str, Any], explore: bool) -> int:
    """The target: every function.toml agrees with the record (a stale size is a miss)."""
    functions, elsewhere = sizing_record.read_functions(), sizing_record.measured_elsewhere()
    problems = sizing_record.disagreements(record, functions, elsewhere)
    judged = [holds("function.toml", False, problem) for problem in problems] or [
        holds("function.toml", True, "every function.toml agrees with the sizing record")
    ]
    return exit_status(judged, explore=explore, console=console, script="bench/sizing.py")


if __name__ == "__main__":
    raise SystemExit(main())
