"""What a small request can make a function do, and the per-request work budgets that bound it, measured.

    python bench/budgets.py [--store model_store] [--out bench/records/budgets.json] [--probes NAME ...] [--explore]

Each probe runs in a fresh process, so that no other probe's memory or ONNX Runtime arena sits in its
numbers, and merges its entry into ``bench/records/budgets.json``. The goals below are its targets: it exits 1
when one is missed (``--explore``: reports it, exits 0).

* ``vision_attack``: the vision function's handler (functions/vision/handler.py, the real model) warm, then
  the V2 binary request of 32 copies of one 6 kB 1-bit PNG of 7000x7000 pixels (193 kB on the wire, 1.57
  billion pixels): its answer, wall time, and peak resident memory above the idle process. Goal: the peak
  within 1 GB of idle (6.3 GB over it when a request's images were all decoded before any was resized).
* ``vision_classify_attack``: the same through ``/v1/vision/classify``, with 32 grayscale 7000x7000 PNGs (the
  same goal).
* ``vision_stream``: the request of ``vision_attack`` straight into ``runtime.predict`` with the pixel
  budget lifted: the decoding itself, one image at a time, whatever the request's size.
* ``vision_costs``: decode, crop and resize of one 4000x4000 image per format and mode, in ms per
  megapixel, and what each scan of a progressive JPEG adds; then the slowest request the pixel budget
  lets through (images of the per-image limit, as many as the budget holds, in the slowest format that
  fits a request body): wall time and peak.
* ``speech_costs``: decode and resample, in ms per second of audio, per format, rate and channel count;
  then the most audio ``transcribe`` takes (``max_seconds`` at 192 kHz of MAX_CHANNELS): time and peak.
* ``text_long``: the text function's handler, one 5.9 MB string to ``/v1/embeddings``: its answer and
  wall time (goal: under 1 s; 4.8 s when the whole string was tokenised before truncation); the time
  to tokenise the largest request's strings (256 of 24,000 characters) whole and cut; and the characters
  per token of a few kinds of text, which the character cut is sized from.

Peaks are the kernel's high-water mark (VmHWM), reset just before the request (Linux's clear_refs), so each
is the request's own and not its load's. Other work on the CPUs stretches the times; the machine and how
busy it was are recorded beside them. The budgets these numbers chose are documented in
``functions/<domain>/function.toml``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

_REPO = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path but the repository root (and so the `bench` package) is not.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.common import cpu_busy, machine_info, make_console, merge_results  # noqa: E402
from bench.targets import Target, add_explore_flag, at_most, exit_status, passed  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

ATTACK_SIDE, ATTACK_COPIES = 7000, 32  # what a security probe sent the vision function
TEXT_CHARS = 5_900_000  # the string it sent the text function
COST_SIDE = 4000  # 16 megapixels: long enough a decode to time, small enough to encode quickly
AUDIO_SECONDS = 10
ATTACK_PEAK_OVER_IDLE_MB = 1024  # the goal of the attack probes: a small request's peak within 1 GB of idle
LONG_TEXT_WALL_S = 1.0  # the goal of text_long: the 5.9 MB string answered within a second
BODY_BYTES = 6 << 20  # Lambda's synchronous payload limit, the default max_body_bytes
console = make_console()
Handler = Callable[[dict[str, Any]], dict[str, Any]]


# --- Memory and time ---------------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def measured(run: Callable[[], Any]) -> dict[str, Any]:
    """``run()``'s result, wall time and peak RSS, beside the idle RSS before it."""
    idle = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from the current RSS
    start = time.perf_counter()
    result = run()
    wall = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {
        "result": result,
        "wall_s": round(wall, 3),
        "idle_rss_mb": idle,
        "peak_rss_mb": peak,
        "peak_over_idle_mb": round(peak - idle, 1),
    }


def best_of(run: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls, in seconds: the one least disturbed by other work."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


# --- Requests -------------------------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def blank(mode: str, side: int) -> Image.Image:
    """A plain image: the most pixels per encoded byte, what a small request that costs much is made of."""
    from PIL import Image

    return Image.new(mode, (side, side))


def v2_binary(items: Sequence[bytes]) -> tuple[bytes, dict[str, str]]:
    """A V2 body with the binary tensor extension: a JSON header, then each image length-prefixed."""
    blob = b"".join(len(item).to_bytes(4, "little") + item for item in items)
    tensor = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [len(items)],
        "parameters": {"binary_data_size": len(blob)},
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header))}


def bytes_tensor(items: Sequence[bytes]) -> npt.NDArray[np.object_]:
    import numpy as np

    tensor = np.empty(len(items), dtype=object)
    tensor[:] = list(items)
    return tensor


def answer(response: dict[str, Any]) -> dict[str, Any]:
    """A handler response's status, and its error message or billed usage."""
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    document = json.loads(body)
    error = document.get("error")
    return {
        "status": response["statusCode"],
        "error": error.get("message") if isinstance(error, dict) else error,
        "usage": document.get("parameters") or document.get("usage"),
    }


def handler(domain: str, store: Path) -> Handler:
    """functions/<domain>/handler.py as a fresh Lambda container imports it, with a context."""
    from aimass.lambda_context import LocalLambdaContext
    from bench.engine import handler_env, load_handler

    os.environ.update(handler_env(store, domain))
    loaded, context = load_handler(domain).handler, LocalLambdaContext()
    return lambda event: loaded(event, context)


def event(path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event: JSON, or binary when there are V2 binary headers."""
    from bench.workload import Request, api_gateway_event

    if headers:
        request = Request(path, body, "application/octet-stream", headers, binary=True)
        return api_gateway_event("apigw_http_v2_vision_infer_binary", request)
    return api_gateway_event("apigw_http_v2_vision_classify", Request(path, body))


def model_of(domain: str, store: Path) -> str:
    from bench import workloads
    from bench.engine import find_model

    return find_model(store, workloads.load(domain)).manifest.name


# --- Vision ---------------------------------------------------------------------------------------------------


def probe_vision_attack(store: Path) -> dict[str, Any]:
    call, path = handler("vision", store), f"/v2/models/{model_of('vision', store)}/infer"
    warm = answer(call(event(path, *v2_binary([encoded(blank("RGB", 64), "PNG")]))))
    image = encoded(blank("1", ATTACK_SIDE), "PNG")
    body, headers = v2_binary([image] * ATTACK_COPIES)
    attack = event(path, body, headers)
    return {
        "request": f"V2 binary, {ATTACK_COPIES} x a {len(image)} B 1-bit PNG of {ATTACK_SIDE}x{ATTACK_SIDE}",
        "body_bytes": len(body),
        "warm_status": warm["status"],
        **measured(lambda: answer(call(attack))),
    }


def probe_vision_classify_attack(store: Path) -> dict[str, Any]:
    call, model = handler("vision", store), model_of("vision", store)

    def classify(*images: bytes) -> dict[str, Any]:
        listed = [base64.b64encode(image).decode() for image in images]
        return event("/v1/vision/classify", json.dumps({"model": model, "images": listed}).encode())

    warm = answer(call(classify(encoded(blank("RGB", 64), "PNG"))))
    image = encoded(blank("L", ATTACK_SIDE), "PNG")
    attack = classify(*[image] * ATTACK_COPIES)
    return {
        "request": f"classify, {ATTACK_COPIES} x a {len(image)} B grayscale PNG of {ATTACK_SIDE}x{ATTACK_SIDE}",
        "body_bytes": len(attack["body"]),
        "warm_status": warm["status"],
        **measured(lambda: answer(call(attack))),
    }


def vision_runtime(store: Path) -> Any:
    """The vision model as its function loads it (one ONNX Runtime thread), after one small request."""
    from bench.sizing import load

    runtime = load("vision", 1, store).runtime
    runtime.predict({"image": bytes_tensor([encoded(blank("RGB", 64), "PNG")])})
    return runtime


def probe_vision_stream(store: Path) -> dict[str, Any]:
    runtime = vision_runtime(store)
    runtime.pre = runtime.pre.model_copy(update={"max_request_pixels": 10**12})  # the budget lifted
    inputs = {"image": bytes_tensor([encoded(blank("1", ATTACK_SIDE), "PNG")] * ATTACK_COPIES)}
    result = measured(lambda: runtime.predict(inputs).usage)
    megapixels = ATTACK_COPIES * ATTACK_SIDE**2 / 1e6
    return {
        "request": f"runtime.predict, {ATTACK_COPIES} x a 1-bit PNG of {ATTACK_SIDE}x{ATTACK_SIDE}, budget lifted",
        **result,
        "ms_per_megapixel": round(result["wall_s"] * 1e3 / megapixels, 2),
    }


def cost_images(side: int) -> dict[str, bytes]:
    """One image per format and mode a client may send: plain ones, and photo-like ones where that is slower."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 8, side, dtype=np.float32)
    waves = 127 + 120 * np.sin(ramp[None, :, None] + ramp[:, None, None] * np.array([1.0, 1.3, 0.7]))
    photo = Image.fromarray(waves.astype(np.uint8))
    return {
        "PNG 1-bit": encoded(blank("1", side), "PNG"),
        "PNG grayscale": encoded(blank("L", side), "PNG"),
        "PNG grayscale+alpha": encoded(blank("LA", side), "PNG"),
        "PNG palette": encoded(blank("P", side), "PNG"),
        "PNG RGB": encoded(blank("RGB", side), "PNG"),
        "PNG RGBA": encoded(blank("RGBA", side), "PNG"),
        "PNG 16-bit": encoded(blank("I;16", side), "PNG"),
        "PNG RGB photo": encoded(photo, "PNG"),
        "JPEG RGB": encoded(blank("RGB", side), "JPEG", quality=1),
        "JPEG CMYK": encoded(blank("CMYK", side), "JPEG", quality=1),
        "JPEG RGB photo": encoded(photo, "JPEG", quality=90),
        "WebP lossy": encoded(blank("RGB", side), "WEBP", quality=1),
        "WebP lossless RGBA": encoded(blank("RGBA", side), "WEBP", lossless=True),
        "WebP photo": encoded(photo, "WEBP", quality=80),
        "GIF": encoded(blank("P", side), "GIF"),
    }


def progressive_jpeg(side: int, scans: int) -> bytes:
    """A plain progressive JPEG (6 scans) with its first AC scan repeated up to ``scans``: 31 bytes each."""
    head, *parts = encoded(blank("L", side), "JPEG", progressive=True).split(b"\xff\xda")
    parts[-1] = parts[-1].removesuffix(b"\xff\xd9")
    parts += [parts[1]] * (scans - len(parts))
    return head + b"".join(b"\xff\xda" + part for part in parts) + b"\xff\xd9"


def probe_vision_costs(store: Path) -> dict[str, Any]:
    from aimass_vision.codecs import MAX_JPEG_SCANS, VisionPreprocessing, preprocess

    runtime = vision_runtime(store)
    pre: VisionPreprocessing = runtime.pre
    roomy = pre.model_copy(update={"max_image_bytes": 1 << 30})

    def prepare(data: bytes) -> Callable[[], object]:
        return lambda: preprocess(data, roomy, where="image")

    formats: dict[str, Any] = {}
    for name, data in cost_images(COST_SIDE).items():
        seconds = best_of(prepare(data))
        per_megapixel = seconds * 1e3 / (COST_SIDE**2 / 1e6)
        formats[name] = {"bytes": len(data), "ms": round(seconds * 1e3, 1), "ms_per_megapixel": round(per_megapixel, 2)}
    # A progressive JPEG's scans are each a pass over every pixel: its own few, and as many as accepted.
    scans = {count: progressive_jpeg(COST_SIDE, count) for count in (6, MAX_JPEG_SCANS)}
    scan_s = {count: best_of(prepare(data)) for count, data in scans.items()}
    per_scan = (scan_s[MAX_JPEG_SCANS] - scan_s[6]) / (MAX_JPEG_SCANS - 6)
    # Images of the per-image limit, as many as the budget holds, in the slowest format whose images fit the
    # per-image byte limit and, that many, a request body.
    side = int(min(pre.max_pixels, pre.max_request_pixels) ** 0.5)
    count = max(1, pre.max_request_pixels // side**2)

    def fits(name: str) -> bool:
        scaled: float = formats[name]["bytes"] * side**2 / COST_SIDE**2
        return scaled < pre.max_image_bytes and count * scaled < BODY_BYTES

    slowest = max(filter(fits, formats), key=lambda name: formats[name]["ms_per_megapixel"])
    image = cost_images(side)[slowest]
    inputs = {"image": bytes_tensor([image] * count)}
    worst = measured(lambda: runtime.predict(inputs).usage)
    return {
        "image_megapixels": COST_SIDE**2 / 1e6,
        "formats": formats,
        "jpeg_scans": {
            "image": f"grayscale progressive JPEG of {COST_SIDE}x{COST_SIDE}",
            **{f"ms_at_{count}_scans": round(seconds * 1e3, 1) for count, seconds in scan_s.items()},
            "ms_per_scan_per_megapixel": round(per_scan * 1e3 / (COST_SIDE**2 / 1e6), 4),
        },
        "max_pixels": pre.max_pixels,
        "max_request_pixels": pre.max_request_pixels,
        "slowest_request": {
            "images": f"{count} x {slowest} of {side}x{side}",
            "body_bytes": count * len(image),
            **worst,
            "ms_per_megapixel": round(worst["wall_s"] * 1e3 / (count * side**2 / 1e6), 2),
        },
    }


# --- Speech ---------------------------------------------------------------------------------------------------


def probe_speech_costs(store: Path) -> dict[str, Any]:
    import numpy as np
    import soundfile  # type: ignore[import-untyped]

    from aimass_speech.audio import MAX_CHANNELS, MAX_RATE, decode, resample
    from aimass_speech.runtime import TranscribeRequest
    from bench.sizing import load

    speech: Any = load("speech", 1, store).runtime
    target, rng = speech.pre.sample_rate, np.random.default_rng(0)
    codecs = [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III")]
    costs: dict[str, Any] = {}
    for fmt, subtype in codecs:
        # What each codec carries: Opus is 48 kHz, MP3 at most 48 kHz and stereo.
        rates = (48000,) if subtype == "OPUS" else (16000, 48000) if fmt == "MP3" else (16000, 48000, MAX_RATE)
        for rate in rates:
            for channels in (1, 2 if fmt == "MP3" else MAX_CHANNELS):
                noise = (rng.standard_normal((AUDIO_SECONDS * rate, channels)) * 0.1).astype(np.float32)
                out = io.BytesIO()
                soundfile.write(out, noise, rate, format=fmt, subtype=subtype)
                data = out.getvalue()

                def run(data: bytes = data) -> None:
                    samples, got = decode(data, max_seconds=AUDIO_SECONDS + 1)
                    resample(samples, got, target)

                per_second = best_of(run) * 1e3 / AUDIO_SECONDS
                key = f"{fmt} {subtype} {rate // 1000} kHz x{channels}"
                costs[key] = {"bytes_per_second": len(data) // AUDIO_SECONDS, "ms_per_second": round(per_second, 2)}
    # The most audio transcribe takes, as Vorbis (it fits a request body); written a second at a time
    # (libvorbis crashed here encoding 30 s at 192 kHz in one call).
    longest, out = speech.pre.max_seconds, io.BytesIO()
    with soundfile.SoundFile(out, "w", MAX_RATE, MAX_CHANNELS, format="OGG", subtype="VORBIS") as stream:
        for _ in range(int(longest)):
            stream.write((rng.standard_normal((MAX_RATE, MAX_CHANNELS)) * 0.01).astype(np.float32))
    request = TranscribeRequest.model_validate({"file": base64.b64encode(out.getvalue()).decode()})
    return {
        "costs": costs,
        "slowest": max(costs, key=lambda key: costs[key]["ms_per_second"]),
        "max_seconds": longest,
        "max_channels": MAX_CHANNELS,
        "longest_file": {
            "file": f"{longest:g} s, {MAX_RATE // 1000} kHz, {MAX_CHANNELS} channels, Vorbis",
            "bytes": len(out.getvalue()),
            **measured(lambda: speech.transcribe(request).usage),
        },
    }


# --- Text -----------------------------------------------------------------------------------------------------


CORPORA = {
    "English prose (README.md)": _REPO / "README.md",
    "Python source (bench/sizing.py)": _REPO / "bench" / "sizing.py",
    "JSON (tests/events)": _REPO / "tests" / "events",
}


def corpus(path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(path.glob("*.json"))) if path.is_dir() else path.read_text()


def probe_text_long(store: Path) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from aimass_text.runtime import head
    from bench.sizing import load

    call, model = handler("text", store), model_of("text", store)
    sentence = "A man is playing a guitar on the corner of a busy street. "
    text = (sentence * (TEXT_CHARS // len(sentence) + 1))[:TEXT_CHARS]

    def embeddings(value: str) -> dict[str, Any]:
        return event("/v1/embeddings", json.dumps({"model": model, "input": value}).encode())

    warm = answer(call(embeddings(sentence)))
    long = embeddings(text)
    request = measured(lambda: answer(call(long)))

    text_runtime: Any = load("text", 1, store).runtime
    whole = Tokenizer.from_str(text_runtime.tokenizer.to_str())  # a copy that does not truncate
    whole.no_truncation()
    ratios = {}
    for name, path in CORPORA.items():
        words = corpus(path)
        ratios[name] = round(len(words) / len(whole.encode(words, add_special_tokens=False).ids), 2)
    # The largest request's strings: as many as allowed, as long as a body lets them be.
    prose = corpus(CORPORA["English prose (README.md)"])
    strings = [(prose * 10)[i * 100 :][:24_000] for i in range(256)]
    tokenizer, limit = text_runtime.tokenizer, text_runtime.pre.max_length * text_runtime.pre.chars_per_token
    whole_s = best_of(lambda: tokenizer.encode_batch(strings), repeats=1)
    cut_s = best_of(lambda: tokenizer.encode_batch([head(s, limit) for s in strings]))
    return {
        "request": f"/v1/embeddings, one string of {len(text):,} characters",
        "warm_status": warm["status"],
        **request,
        "cut_at_chars": limit,
        "tokenise_256_strings_of_24000_chars_s": {"whole": round(whole_s, 3), "cut": round(cut_s, 3)},
        "chars_per_token": ratios,
    }


PROBES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "vision_attack": probe_vision_attack,
    "vision_classify_attack": probe_vision_classify_attack,
    "vision_stream": probe_vision_stream,
    "vision_costs": probe_vision_costs,
    "speech_costs": probe_speech_costs,
    "text_long": probe_text_long,
}


# --- The runner ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=_REPO / "model_store", help="model store directory")
    parser.add_argument("--out", type=Path, default=_REPO / "bench" / "records" / "budgets.json", help="results file")
    parser.add_argument("--probes", nargs="+", choices=list(PROBES), default=list(PROBES), help="probes to run")
    parser.add_argument("--child", choices=list(PROBES), help=argparse.SUPPRESS)  # one probe, in this process
    add_explore_flag(parser)
    return parser.parse_args(argv)


def child(probe: str, store: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", probe, "--store", str(store)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def targets(probe: str, result: dict[str, Any]) -> list[Target]:
    """The probe's goals (see the docstring), judged on its entry."""
    if probe in ("vision_attack", "vision_classify_attack"):
        peak = result["peak_over_idle_mb"]
        return [at_most(f"{probe} peak_over_idle_mb", peak, ATTACK_PEAK_OVER_IDLE_MB, " MB")]
    if probe == "text_long":
        return [at_most(f"{probe} wall_s", result["wall_s"], LONG_TEXT_WALL_S, " s")]
    return []


def summary(probe: str, result: dict[str, Any]) -> str:
    """One line per probe: what the budgets are judged by."""
    if "peak_over_idle_mb" in result and "wall_s" in result:
        outcome = result["result"]
        said = f"{outcome.get('status', '')} " if isinstance(outcome, dict) and "status" in outcome else ""
        return (
            f"{result['request']}: {said}in {result['wall_s']} s, peak {result['peak_rss_mb']} MB = idle "
            f"{result['idle_rss_mb']} MB + {result['peak_over_idle_mb']} MB"
        )
    if probe == "vision_costs":
        slowest, worst = (
            max(result["formats"].items(), key=lambda item: item[1]["ms_per_megapixel"]),
            result["slowest_request"],
        )
        return (
            f"slowest format {slowest[0]}: {slowest[1]['ms_per_megapixel']} ms/MP; slowest request within "
            f"{result['max_request_pixels']:,} pixels ({worst['images']}): {worst['wall_s']} s, "
            f"+{worst['peak_over_idle_mb']} MB"
        )
    longest = result["longest_file"]
    return (
        f"slowest audio {result['slowest']}: {result['costs'][result['slowest']]['ms_per_second']} ms per second; "
        f"longest file ({longest['file']}): {longest['wall_s']} s, +{longest['peak_over_idle_mb']} MB"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = args.store.resolve()
    if args.child:
        from aimass.serving.domains import checkout_domains

        checkout_domains()
        print(json.dumps(PROBES[args.child](store)))
        return 0
    context = {"machine": machine_info(["numpy", "Pillow", "onnxruntime", "tokenizers", "soundfile"])}
    judged: list[Target] = []
    for probe in args.probes:
        busy = cpu_busy(0.5)
        result = child(probe, store)
        console.print(f"[bold]{probe}[/]: {summary(probe, result)}")
        stamp = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu_busy_before": busy}
        found = targets(probe, result)
        verdict = {"passed": passed(found)} if found else {}
        merge_results(args.out, probe, {**result, **verdict, **stamp, **context})
        judged += found
    console.print(f"wrote {args.out}")
    return exit_status(judged, explore=args.explore, console=console, script="bench/budgets.py")


if __name__ == "__main__":
    raise SystemExit(main())
