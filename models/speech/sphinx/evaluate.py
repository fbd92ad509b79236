"""Measure sphinx-en-us through the API: word error rate on synthesized and real read English, and speed.

    python models/speech/sphinx/evaluate.py [--out models/speech/sphinx/quality.json]

The model is built into a scratch store, served by the app every function runs (``aimass.http.app``), and
every file is posted to ``/v1/audio/transcriptions`` as a client would post it:

- **Synthesized**: the first two Harvard sentence lists (IEEE 1969, phonetically balanced read English),
  spoken by ten voices of three synthesizers (``voices.py``).
- **Real**: the human recordings with transcripts that the pocketsphinx source distribution on PyPI ships
  as its test data (its wheel ships none): five LibriVox utterances of *Sense and Sensibility* read by one
  speaker, five utterances of playing-card names and the CMU test sentence "go forward ten meters". The
  source distribution of the installed version is fetched with pip into ``build/eval/``.

Speed is the real-time factor: the time a request takes, end to end, over the seconds of audio it carries.
The build (``build.py``) copies ``quality.json`` into the manifest, and refuses it once the model files
differ from those measured here. Takes about two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import console, publish  # noqa: E402
from models.speech.sphinx.score import error_rate  # noqa: E402
from models.speech.sphinx.spec import FILES, NAME, SAMPLE_RATE, VERSION  # noqa: E402

QUALITY_FILE = Path(__file__).resolve().parent / "quality.json"
SOURCES = _REPO / "build" / "eval"
# Harvard sentences, lists 1 and 2 (IEEE Recommended Practice for Speech Quality Measurements, 1969).
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "Large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
)


@dataclass(frozen=True)
class Recording:
    collection: str
    name: str
    wav: bytes
    text: str


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=QUALITY_FILE, help="where to write the measurement")
    args = parser.parse_args(argv)
    from importlib import metadata

    from aimass.store.manifest import sha256_file
    from models.speech.sphinx import build, voices

    version = metadata.version("pocketsphinx")
    with tempfile.TemporaryDirectory(prefix="sphinx-eval-") as scratch:
        directory = publish(Path(scratch) / "store", NAME, VERSION, lambda work: build.assemble(work, measured=False))
        files = {path: sha256_file(directory / path) for path in FILES}
        with _client(Path(scratch)) as client:
            synthetic = _synthetic(client)
            real = _real(client, real_recordings(version))
    timings = [t for group in (synthetic, real) for t in group.pop("_timings")]
    quality: dict[str, Any] = {
        "measured_with": {"pocketsphinx": version, **voices.versions()},
        "synthetic": synthetic,
        "real": real,
        "real_time_factor": _speed(timings),
        "files": files,
    }
    quality["summary"] = (
        f"WER {synthetic['all']['wer']:.1%} synthesized ({len(voices.VOICES)} voices), "
        f"{real['all']['wer']:.1%} real ({real['all']['recordings']} recordings); "
        f"real-time factor {quality['real_time_factor']['overall']:.3f}"
    )
    import json

    args.out.write_text(json.dumps(quality, indent=2) + "\n")
    console.print(quality["summary"])
    console.print(f"wrote {args.out}")
    return 0


def _client(scratch: Path) -> Any:
    import logging

    from fastapi.testclient import TestClient

    from aimass.http.app import build_app
    from aimass.settings import Settings

    settings = Settings(model_store=scratch / "store", domains=("speech",), metering="off", state_dir=scratch / "state")
    client = TestClient(build_app(settings))
    for name in ("httpx", "httpx2"):  # one line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    return client


def _transcribe(client: Any, wav: bytes) -> tuple[str, float, float]:
    """The text the API answers for ``wav``, the request's seconds, and the audio's seconds."""
    started = time.perf_counter()
    response = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.wav", wav, "audio/wav")},
        data={"model": NAME, "response_format": "verbose_json"},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    return str(body["text"]), elapsed, float(body["duration"])


def _synthetic(client: Any) -> dict[str, Any]:
    from models.speech.sphinx.voices import VOICES, speak

    by_voice: dict[str, list[tuple[str, str]]] = {}
    timings: list[tuple[float, float]] = []
    for voice in VOICES:
        pairs = by_voice.setdefault(voice.label, [])
        for sentence in SENTENCES:
            text, elapsed, audio = _transcribe(client, speak(voice, sentence))
            pairs.append((sentence, text))
            timings.append((elapsed, audio))
        console.print(f"  {voice.label}: WER {error_rate(pairs)['wer']:.1%}")
    synthesizers = sorted({label.split(":")[0] for label in by_voice})
    return {
        "sentences": len(SENTENCES),
        "voices": {label: error_rate(pairs) for label, pairs in by_voice.items()},
        "synthesizers": {
            name: error_rate([p for label, pairs in by_voice.items() if label.startswith(name + ":") for p in pairs])
            for name in synthesizers
        },
        "all": error_rate([p for pairs in by_voice.values() for p in pairs]),
        "_timings": timings,
    }


def _real(client: Any, recordings: list[Recording]) -> dict[str, Any]:
    collections: dict[str, list[tuple[str, str]]] = {}
    heard: list[dict[str, str]] = []
    timings: list[tuple[float, float]] = []
    for recording in recordings:
        text, elapsed, audio = _transcribe(client, recording.wav)
        collections.setdefault(recording.collection, []).append((recording.text, text))
        heard.append({"recording": f"{recording.collection}/{recording.name}", "said": recording.text, "heard": text})
        timings.append((elapsed, audio))
    for name, pairs in collections.items():
        console.print(f"  {name}: WER {error_rate(pairs)['wer']:.1%}")
    return {
        "source": "test data of the pocketsphinx source distribution on PyPI (test/data/)",
        "collections": {name: {**error_rate(pairs), "recordings": len(pairs)} for name, pairs in collections.items()},
        "all": {**error_rate([p for pairs in collections.values() for p in pairs]), "recordings": len(recordings)},
        "transcripts": heard,
        "_timings": timings,
    }


def _speed(timings: list[tuple[float, float]]) -> dict[str, Any]:
    factors = [elapsed / audio for elapsed, audio in timings]
    return {
        "overall": round(sum(e for e, _ in timings) / sum(a for _, a in timings), 4),
        "median": round(statistics.median(factors), 4),
        "worst": round(max(factors), 4),
        "requests": len(timings),
        "audio_seconds": round(sum(a for _, a in timings), 1),
        "what": "request time over audio time, through the API, one request at a time on 2 CPU cores",
    }


def real_recordings(version: str) -> list[Recording]:
    """The read English with transcripts in the pocketsphinx source distribution's test data."""
    archive = _source_distribution(version)
    prefix = f"pocketsphinx-{version}/test/data/"
    with tarfile.open(archive) as tar:

        def read(path: str) -> bytes:
            member = tar.extractfile(prefix + path)
            assert member is not None, path
            return member.read()

        found: list[Recording] = []
        for collection, listing, folder in (
            ("librivox", "librivox/transcription", "librivox/"),
            ("cards", "cards/cards.transcription", "cards/"),
        ):
            for line in read(listing).decode().splitlines():
                text, _, name = line.rpartition("(")
                text = text.replace("<s>", "").replace("</s>", "").strip()
                name = name.rstrip(") ")
                found.append(Recording(collection, name, read(f"{folder}{name}.wav"), text))
        # 16 kHz 16-bit mono PCM without a header: the sentence of the package's own examples and tests.
        found.append(Recording("goforward", "goforward", _wav(read("goforward.raw")), "go forward ten meters"))
    return found


def _source_distribution(version: str) -> Path:
    folder = SOURCES / f"pocketsphinx-{version}"
    archive = folder / f"pocketsphinx-{version}.tar.gz"
    if not archive.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*command, f"pocketsphinx=={version}", "-d", str(folder)], check=True, capture_output=True)
    return archive


def _wav(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
