"""Transcription with sphinx-en-us: real-time factor through the Lambda handler against the raw PocketSphinx
decoder, cold start against a floor, peak memory, and the speech function's memory and timeout they call for.

    python bench/transcription.py [--store model_store] [--out bench/records/transcription.json] [--quick] [--explore]

The audio is read English: Harvard sentences (models/speech/sphinx/evaluate.py) spoken by flite's kal16 voice
(models/speech/sphinx/voices.py), joined with short pauses into clips of about 3, 10 and 30 s (the
synchronous limit), each padded with silence to exactly that length. Each clip is posted as a multipart
``POST /v1/audio/transcriptions`` in an API Gateway HTTP API (v2) event made from
tests/events/apigw_http_v2_speech_sphinx_transcriptions.json (its form fields, this clip as the file) to
functions/speech/handler.py's ``handler``; the raw engine is a PocketSphinx decoder made from the same model
files, decoding the PCM the handler hears. Prints tables, merges the model's entry of ``--out``, and exits 1
when a target is missed (``--explore``: 0 whatever the numbers). See bench/README.md, "Transcription".
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script, the repository root is not on sys.path
    sys.path.insert(0, str(_REPO))

from bench.cold_start import PEAK_RSS, PROBES, ColdRun, median_breakdown, run_probe  # noqa: E402
from bench.common import cpu_busy, load_average, machine_info, make_console, merge_results, sample_interleaved, wav_of  # noqa: E402
from bench.probes import sphinx_decode  # noqa: E402
from bench.sizing import RULES, suggest  # noqa: E402
from bench.sizing_record import read_functions  # noqa: E402
from bench.targets import Target, add_explore_flag, at_least, at_most, exit_status, passed  # noqa: E402
from bench.workload import EVENTS, Request, api_gateway_event  # noqa: E402
from models.speech.sphinx.spec import SAMPLE_RATE, SAMPLE_VOICE  # noqa: E402

if TYPE_CHECKING:
    from aimass.store.base import ModelArtifact
    from bench.workload import Workload

MODEL = "sphinx-en-us"
DOMAIN = "speech"
ROUTE = "/v1/audio/transcriptions"
TEMPLATE = "apigw_http_v2_speech_sphinx_transcriptions"
RECORD = _REPO / "bench" / "records" / "transcription.json"
CLIP_SECONDS = (3.0, 10.0, 30.0)  # 30 s: the longest audio a synchronous request may carry
PAUSE_S = 0.3  # silence between two sentences of a clip
TARGET_ADDED_SHARE = 0.05  # the handler adds at most 5 % to the engine's time...
TARGET_CLIP_S = 10.0  # ...on the 10-second clip
HANDLER, FLOOR = "cold-transcribe", "cold-sphinx-floor"  # bench/probes.py
PACKAGES = ("pocketsphinx", "numpy", "soundfile", "fastapi", "starlette", "mangum", "pydantic")
console = make_console()


@dataclass(frozen=True)
class Plan:
    iterations: int  # interleaved timed calls of each path per clip, after the untimed check call
    cold_runs: int  # fresh processes of each kind, after one discarded round


FULL, QUICK = Plan(iterations=7, cold_runs=5), Plan(iterations=2, cold_runs=1)


# --- The arithmetic (pure) -----------------------------------------------------------------------------


def sentences_that_fit(durations: Sequence[float], target_s: float, pause_s: float) -> int:
    """How many leading sentences, ``pause_s`` apart, fit in ``target_s``."""
    total = 0.0
    for count, seconds in enumerate(durations):
        total += seconds + (pause_s if count else 0.0)
        if total > target_s:
            if count == 0:
                raise ValueError(f"the first sentence ({seconds:.2f} s) is longer than a {target_s:g} s clip")
            return count
    return len(durations)


def real_time_factor(seconds: float, audio_s: float) -> float:
    """Seconds of processing per second of audio: below 1 is faster than the speaker."""
    return seconds / audio_s


def compare(handler_ns: Sequence[int], engine_ns: Sequence[int], audio_s: float, clock: str = "") -> dict[str, Any]:
    """Both paths' p50s on one clock (``""``: wall, ``"_cpu"``: the process's CPU), their real-time factors, and
    what the handler adds."""
    handler_ms = float(np.median(handler_ns)) / 1e6
    engine_ms = float(np.median(engine_ns)) / 1e6
    added = handler_ms - engine_ms
    return {
        f"handler{clock}_p50_ms": round(handler_ms, 2),
        f"engine{clock}_p50_ms": round(engine_ms, 2),
        f"handler{clock}_rtf": round(real_time_factor(handler_ms / 1e3, audio_s), 4),
        f"engine{clock}_rtf": round(real_time_factor(engine_ms / 1e3, audio_s), 4),
        f"handler_added{clock}_ms": round(added, 2),
        f"handler_added{clock}_share": round(added / engine_ms, 4),
    }


def clip_summary(wall: Mapping[str, Sequence[int]], cpu: Mapping[str, Sequence[int]], audio_s: float) -> dict[str, Any]:
    """One clip's numbers from interleaved samples (ns by path, ``handler`` and ``engine``) on both clocks."""
    return {
        **compare(wall["handler"], wall["engine"], audio_s),
        **compare(cpu["handler"], cpu["engine"], audio_s, "_cpu"),
        "runs": len(wall["handler"]),
    }


def cold_summary(handler: Sequence[ColdRun], floor: Sequence[ColdRun]) -> dict[str, Any]:
    """Median cold starts of the handler and the floor, their ratio, and each one's phases."""
    ours, least = median_breakdown(handler), median_breakdown(floor)
    return {
        "cold_start_s": round(ours["wall_s"], 3),
        "cold_start_floor_s": round(least["wall_s"], 3),
        "cold_start_ratio": round(ours["wall_s"] / least["wall_s"], 2),
        "cold_start_breakdown": {key: round(value, 3) for key, value in ours.items()},
        "cold_start_floor_breakdown": {key: round(value, 3) for key, value in least.items()},
        "cold_start_runs": len(handler),
    }


def sizing_need(one_ms: float, largest_ms: float, peak_rss_mb: float) -> dict[str, Any]:
    """bench/sizing.py's ``suggest`` for a model that decodes on one thread whatever the vCPUs.

    PocketSphinx keeps the GIL and one core while it decodes (aimass_speech.sphinx), so a second vCPU
    makes no request faster: each time stands for both thread counts.
    """
    return suggest((one_ms, one_ms), (largest_ms, largest_ms), peak_rss_mb)


def judge(entry: Mapping[str, Any]) -> list[Target]:
    """The targets: function.toml covers the need, and the handler adds little to the 10-second clip's decoding."""
    function, need = entry["function_toml"], entry["suggested"]
    share = entry["clips"][f"{TARGET_CLIP_S:g}s"]["handler_added_cpu_share"]
    return [
        at_least("function_memory_mb", function["memory_mb"], need["memory_mb"], " MB"),
        at_least("function_timeout_s", function["timeout_s"], need["timeout_s"], " s"),
        at_most(f"handler_added_cpu_share_{TARGET_CLIP_S:g}s", share, TARGET_ADDED_SHARE),
    ]


# --- The audio ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    key: str  # "3s", "10s", "30s"
    seconds: float
    sentences: tuple[str, ...]
    wav: bytes


def pcm_of(wav: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    with wave.open(io.BytesIO(wav)) as reader:
        if (reader.getnchannels(), reader.getsampwidth()) != (1, 2):
            raise ValueError("expected 16-bit mono speech")
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def make_clips(seconds: Sequence[float]) -> list[Clip]:
    """Each length's clip: the leading Harvard sentences that fit, spoken, paused, padded with silence."""
    from models.speech.sphinx.evaluate import SENTENCES
    from models.speech.sphinx.voices import Voice, speak

    voice = Voice("flite", SAMPLE_VOICE)
    spoken: list[np.ndarray[Any, np.dtype[np.int16]]] = []
    clips = []
    for target in seconds:
        while sum(len(s) for s in spoken) < target * SAMPLE_RATE and len(spoken) < len(SENTENCES):
            spoken.append(pcm_of(speak(voice, SENTENCES[len(spoken)])))
        count = sentences_that_fit([len(s) / SAMPLE_RATE for s in spoken], target, PAUSE_S)
        pause = np.zeros(round(PAUSE_S * SAMPLE_RATE), dtype=np.int16)
        joined = np.concatenate([part for s in spoken[:count] for part in (pause, s)][1:])
        padded = np.concatenate([joined, np.zeros(round(target * SAMPLE_RATE) - len(joined), dtype=np.int16)])
        clips.append(Clip(f"{target:g}s", target, tuple(SENTENCES[:count]), wav_of(padded, SAMPLE_RATE)))
    return clips


def heard_pcm(wav: bytes, max_seconds: float) -> bytes:
    """The 16 kHz PCM the runtime hands PocketSphinx for ``wav``: decoded, resampled and converted as it does."""
    from aimass_speech.audio import decode, resample
    from aimass_speech.sphinx import SAMPLE_RATE, pcm16

    samples, rate = decode(wav, max_seconds=max_seconds)
    return pcm16(resample(samples, rate, SAMPLE_RATE)).astype("<i2").tobytes()


# --- The request and the two paths ------------------------------------------------------------------------


def template_form(event: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The recorded request's multipart boundary and its text fields, in order (its file part left out)."""
    boundary = str(event["headers"]["content-type"]).split("boundary=", 1)[1]
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else str(event["body"]).encode()
    fields = []
    for part in body.split(b"--" + boundary.encode())[1:]:
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is None or b"filename=" in head:
            continue
        fields.append((name.group(1).decode(), value.removesuffix(b"\r\n").decode()))
    return boundary, fields


def multipart(boundary: str, fields: Sequence[tuple[str, str]], filename: str, data: bytes) -> bytes:
    """A multipart/form-data body: the fields, then the file."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
    parts.append(f"{head}Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def transcription_event(wav: bytes) -> dict[str, Any]:
    """The recorded transcription event with this clip as its file, for this model."""
    boundary, fields = template_form(json.loads((EVENTS / f"{TEMPLATE}.json").read_text()))
    fields = [(k, MODEL if k == "model" else v) for k, v in fields]
    body = multipart(boundary, fields, "speech.wav", wav)
    request = Request(ROUTE, body, content_type=f"multipart/form-data; boundary={boundary}", binary=True)
    return api_gateway_event(TEMPLATE, request)


def decoder_config(directory: Path, file: str, parts: Mapping[str, str]) -> dict[str, Any]:
    """PocketSphinx's configuration for a version's files, as aimass_speech.sphinx makes it."""
    paths = {key: str(directory / path) for key, path in parts.items()}
    return {"hmm": None, "loglevel": "FATAL", **paths, "lm": str(directory / file)}


def artifact_config(artifact: ModelArtifact) -> dict[str, Any]:
    engine = artifact.manifest.engine
    return decoder_config(artifact.directory, engine.file, engine.parts)


def answered_text(response: Mapping[str, Any]) -> str:
    if response["statusCode"] != 200:
        raise RuntimeError(f"the handler answered {response['statusCode']}: {str(response['body'])[:500]}")
    return str(json.loads(response["body"])["text"])


# --- In process: the warm paths ------------------------------------------------------------------------


def on_cpu(call: Callable[[], object], samples: list[int]) -> Callable[[], None]:
    """``call``, adding the CPU time the process spent in it to ``samples``.

    The wall clock times a call and whatever else this machine's cores ran meanwhile: on 2 shared cores that
    swings by more than the 5 % being judged (in a busy run the handler came out 12 % faster than the decoder).
    The process's CPU time is the work itself, which a Lambda vCPU, shared with nothing, turns into wall time.
    Every thread counts: the app may run a route on a worker thread.
    """

    def run() -> None:
        start = time.process_time_ns()
        call()
        samples.append(time.process_time_ns() - start)

    return run


def warm(clips: Sequence[Clip], artifact: ModelArtifact, plan: Plan) -> dict[str, Any]:
    """Each clip's interleaved p50s through the handler and the raw decoder, once their transcripts agree."""
    import pocketsphinx  # type: ignore[import-untyped]

    from bench.engine import load_handler
    from bench.probes import LocalLambdaContext

    handler = load_handler(DOMAIN).handler
    decoder = pocketsphinx.Decoder(pocketsphinx.Config(**artifact_config(artifact)))
    context, found = LocalLambdaContext(), {}
    for clip in clips:
        event, pcm = transcription_event(clip.wav), heard_pcm(clip.wav, clip.seconds)
        started = time.perf_counter()
        text = answered_text(handler(event, context))  # the first call: checked, timed on its own, not sampled
        first_ms = (time.perf_counter() - started) * 1e3
        engine_text = " ".join(sphinx_decode(decoder, pcm))
        if text != engine_text:
            raise RuntimeError(f"{clip.key}: the handler heard {text!r}, the decoder {engine_text!r}")
        cpu: dict[str, list[int]] = {"handler": [], "engine": []}
        paths = {
            "handler": on_cpu(lambda event=event: handler(event, context), cpu["handler"]),  # type: ignore[misc]
            "engine": on_cpu(lambda pcm=pcm: sphinx_decode(decoder, pcm), cpu["engine"]),  # type: ignore[misc]
        }
        wall = sample_interleaved(paths, iterations=plan.iterations, warmup=0)
        summary = clip_summary(wall, cpu, clip.seconds)
        found[clip.key] = {
            "audio_s": clip.seconds,
            "sentences": len(clip.sentences),
            "words": len(text.split()),
            "transcript": text,
            "handler_first_ms": round(first_ms, 2),
            **summary,
        }
        console.print(
            f"  {clip.key}: RTF handler {summary['handler_rtf']:.3f}, engine {summary['engine_rtf']:.3f}; "
            f"the handler adds {summary['handler_added_cpu_ms']:.1f} ms of CPU"
        )
    return found


def model_files(store: Path) -> ModelArtifact:
    """The catalogued version of the model, every file's sha256 verified."""
    from bench.engine import find_model

    # find_model reads a workload's domain and model only.
    return find_model(store, cast("Workload[Any]", SimpleNamespace(domain=DOMAIN, model=MODEL)))


# --- Fresh processes: cold start and peak memory ----------------------------------------------------------


def probe_env(store: Path) -> dict[str, str]:
    from bench.engine import handler_env

    return {**os.environ, **handler_env(store, DOMAIN)}


def write_specs(clips: Sequence[Clip], artifact: ModelArtifact, scratch: Path) -> dict[str, Path]:
    """The probes' specs: the shortest clip for the cold starts, the longest for the peaks."""
    from bench.engine import handler_file

    short, longest = clips[0], clips[-1]
    for clip in (short, longest):
        (scratch / f"{clip.key}.pcm").write_bytes(heard_pcm(clip.wav, clip.seconds))
    handler = {"domain": DOMAIN, "handler_dir": str(handler_file(DOMAIN).parent)}
    floor = {"config": artifact_config(artifact)}
    specs = {
        HANDLER: {**handler, "event": transcription_event(short.wav)},
        FLOOR: {**floor, "pcm": str(scratch / f"{short.key}.pcm")},
        # peak-rss serves `event` (warm-up) then `batch_event`, and reads the peak after the load and at the end.
        PEAK_RSS: {
            **handler,
            "event": transcription_event(short.wav),
            "batch_event": transcription_event(longest.wav),
            "warmup": 1,
            "batches": 2,
        },
        "engine-rss": {**floor, "pcm": str(scratch / f"{longest.key}.pcm")},
    }
    paths = {}
    for name, spec in specs.items():
        paths[name] = scratch / f"{name}.json"
        paths[name].write_text(json.dumps(spec))
    return paths


def cold_run(kind: str, spec: Path, env: dict[str, str], scratch: Path) -> tuple[ColdRun, dict[str, Any]]:
    popened, answered, stamps = run_probe(kind, spec, env, scratch)
    run = ColdRun(
        wall_s=answered - popened,
        interpreter_s=stamps["started"] - popened,
        imports_s=stamps["imported"] - stamps["started"],
        model_load_s=stamps["loaded"] - stamps["imported"],
        first_run_s=stamps["answered"] - stamps["loaded"],
        head=[],
    )
    return run, stamps


def cold_starts(specs: Mapping[str, Path], env: dict[str, str], scratch: Path, runs: int) -> dict[str, Any]:
    """Handler and floor in turns, after one discarded round that warms the page cache; the same words."""
    for kind in (HANDLER, FLOOR):
        cold_run(kind, specs[kind], env, scratch)
    found: dict[str, list[ColdRun]] = {HANDLER: [], FLOOR: []}
    texts: dict[str, set[str]] = {HANDLER: set(), FLOOR: set()}
    for _ in range(runs):
        for kind in (HANDLER, FLOOR):
            run, stamps = cold_run(kind, specs[kind], env, scratch)
            found[kind].append(run)
            texts[kind].add(stamps["text"])
    if len(texts[HANDLER] | texts[FLOOR]) != 1:
        raise RuntimeError(f"cold handler and floor heard different words: {texts}")
    return cold_summary(found[HANDLER], found[FLOOR])


# A child starts with its parent's ru_maxrss (Linux carries the peak across fork and exec): a probe started
# by this process, which holds the handler and a decoder, would read this process's peak. A small Python
# process in between starts each memory probe, so that what it reads is its own.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def memory_probe(kind: str, spec: Path, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-c", LAUNCHER, sys.executable, str(PROBES), kind, str(spec)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"probe {kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    payload: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return payload


def peaks(specs: Mapping[str, Path], env: dict[str, str]) -> dict[str, float]:
    """Peak RSS of a handler process after its load and after the longest clip; of the decoder alone."""
    handler = memory_probe(PEAK_RSS, specs[PEAK_RSS], env)
    engine = memory_probe(FLOOR, specs["engine-rss"], env)
    return {
        "handler_after_load_mb": round(handler["peak_rss_after_load_mb"], 1),
        "handler_after_longest_mb": round(handler["peak_rss_mb"], 1),
        "handler_rss_after_requests_mb": round(handler["rss_after_requests_mb"], 1),
        "engine_after_load_mb": round(engine["peak_rss_after_load_mb"], 1),
        "engine_after_longest_mb": round(engine["peak_rss_mb"], 1),
    }


# --- The entry, the tables, the runner ----------------------------------------------------------------------


def assemble(
    clips: Mapping[str, dict[str, Any]],
    cold: Mapping[str, Any],
    memory: Mapping[str, float],
    function: Mapping[str, int],
) -> dict[str, Any]:
    """The model's entry of the results file, from the measured parts: the sizing and the verdicts derived here."""
    shortest, longest = next(iter(clips.values())), list(clips.values())[-1]
    slowest_ms = max(longest["handler_p50_ms"], longest["handler_first_ms"])
    need = sizing_need(shortest["handler_p50_ms"], slowest_ms, memory["handler_after_longest_mb"])
    entry: dict[str, Any] = {
        "clips": dict(clips),
        **cold,
        "peak_rss_mb": dict(memory),
        "suggested": need,
        "function_toml": {**function, "timeout_headroom": round(function["timeout_s"] / (slowest_ms / 1e3), 1)},
        "rules": RULES,
    }
    judged = judge(entry)
    entry["targets"] = {target.name: target.detail for target in judged}
    entry["passed"] = passed(judged)
    entry["function_toml"]["covers"] = entry["passed"]["function_memory_mb"] and entry["passed"]["function_timeout_s"]
    return entry


def print_tables(entry: Mapping[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{MODEL}: transcription through the handler and the raw decoder (p50; CPU: the process's)")
    columns = ("clip", "words", "handler s", "engine s", "handler RTF", "engine RTF", "added ms", "CPU RTF h/e")
    for column in (*columns, "CPU added ms", "CPU added"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    for key, clip in entry["clips"].items():
        table.add_row(
            key,
            str(clip["words"]),
            f"{clip['handler_p50_ms'] / 1e3:.3f}",
            f"{clip['engine_p50_ms'] / 1e3:.3f}",
            f"{clip['handler_rtf']:.3f}",
            f"{clip['engine_rtf']:.3f}",
            f"{clip['handler_added_ms']:.1f}",
            f"{clip['handler_cpu_rtf']:.3f} / {clip['engine_cpu_rtf']:.3f}",
            f"{clip['handler_added_cpu_ms']:.1f}",
            f"{clip['handler_added_cpu_share']:.1%}",
        )
    console.print(table)
    memory, need = entry["peak_rss_mb"], entry["suggested"]
    console.print(
        f"cold start {entry['cold_start_s']:.2f} s, floor {entry['cold_start_floor_s']:.2f} s "
        f"({entry['cold_start_ratio']:.2f}x); peak RSS: handler {memory['handler_after_load_mb']:.0f} MB loaded, "
        f"{memory['handler_after_longest_mb']:.0f} MB after the longest clip; decoder alone "
        f"{memory['engine_after_load_mb']:.0f} / {memory['engine_after_longest_mb']:.0f} MB"
    )
    console.print(
        f"needs {need['memory_mb']} MB and {need['timeout_s']} s "
        f"(largest request {need['largest_s_at_memory']:.2f} s); "
        f"function.toml gives {entry['function_toml']['memory_mb']} MB and {entry['function_toml']['timeout_s']} s"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store directory")
    parser.add_argument("--out", type=Path, default=RECORD, help="results file")
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke run, noisier numbers")
    add_explore_flag(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store, out, plan = args.store.resolve(), args.out.resolve(), QUICK if args.quick else FULL
    from aimass.errors import AimassError

    try:
        artifact = model_files(store)
    except AimassError as exc:
        console.print(f"[red]{exc.message}[/]")
        return 2
    os.environ.update(probe_env(store))  # the handler reads its settings from the environment, as in Lambda
    busy, load = cpu_busy(), load_average()
    console.print(f"[bold]{MODEL}[/] ({'quick' if args.quick else 'full'}): {busy:.0%} of the CPUs busy before")
    clips = make_clips(CLIP_SECONDS)
    measured = warm(clips, artifact, plan)
    with tempfile.TemporaryDirectory(prefix="bench-transcription-") as folder:
        scratch = Path(folder)
        specs, env = write_specs(clips, artifact, scratch), probe_env(store)
        cold = cold_starts(specs, env, scratch, plan.cold_runs)
        memory = peaks(specs, env)
    function = read_functions()[DOMAIN]
    entry = assemble(measured, cold, memory, {"memory_mb": function.memory_mb, "timeout_s": function.timeout_s})
    entry |= {
        "model": f"{artifact.manifest.name}/{artifact.manifest.version}",
        "voice": f"flite:{SAMPLE_VOICE}",
        "route": ROUTE,
        "mode": "quick" if args.quick else "full",
        "iterations": plan.iterations,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            **machine_info(PACKAGES),
            "cpu_busy_before": busy,
            "load_average_start": load,
            "load_average_end": load_average(),
        },
    }
    print_tables(entry)
    merge_results(out, MODEL, entry)
    console.print(f"wrote {out} ({MODEL})")
    return exit_status(judge(entry), explore=args.explore, console=console, script="bench/transcription.py")


if __name__ == "__main__":
    raise SystemExit(main())
